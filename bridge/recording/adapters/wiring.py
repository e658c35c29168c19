"""``RecordingWiring``: what the composition root builds to switch recording on.

Order in ``BridgeApp.start``: build it before the call adapter (its ``setup`` goes into the
call core), ``attach`` the conference service and the live rooms, hand ``urls_for`` to the
webhooks, then ``start`` (catalog, recovery of crashed recordings, retention) once the
webhooks listen, so recovered recordings are announced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ...config import Config
from ...control.events import EventBus, RecordingSaved
from ..control import RecordingSetup
from ..model import RecordingOptions
from ..service import Conferences, LiveRecording, RecordingService
from .routes import RecordingRoutes
from .store import RecordingStore

log = logging.getLogger("bridge.recording")


class RecordingWiring:
    def __init__(self, config: Config, bus: EventBus, loop: asyncio.AbstractEventLoop) -> None:
        rcfg = config.recording
        self.config = config
        self.defaults = RecordingOptions(format=rcfg.default_format, channels=rcfg.channels,
                                         multitrack=rcfg.multitrack, pause_behavior=rcfg.pause_behavior)
        self.store: RecordingStore | None = None
        self.setup: RecordingSetup | None = None
        if rcfg.enabled:
            directory = Path(rcfg.directory) if rcfg.directory else Path(config.data_dir) / "recordings"
            self.store = RecordingStore(directory, rcfg, bus, loop)
            self.setup = RecordingSetup(self.store, self.defaults, rcfg.announcement or None,
                                        max_queue_ticks=int(rcfg.max_queue_s * 50))
        self.routes: RecordingRoutes | None = None
        self.service: RecordingService | None = None    # after attach(); the Telnyx routes use it too
        self._retention: asyncio.Task[None] | None = None

    def attach(self, conferences: Conferences, live: Callable[[str], LiveRecording | None]) -> None:
        service = self.service = RecordingService(conferences, live, self.store, self.defaults)
        self.routes = RecordingRoutes(service, self.store, self.config)

    def add_routes(self, app: web.Application) -> None:
        if self.routes is not None:
            self.routes.add_routes(app)

    def urls_for(self, event: RecordingSaved) -> dict[str, str]:
        """A saved recording's signed links as Telnyx keys them: by format (dual: the two-channel file)."""
        if self.routes is None or self.store is None:
            return {}
        info = self.store.get(event.recording_id)
        kind = "dual" if event.channels == "dual" else "mix"
        if info is None or kind not in info.files:
            return {}
        ext = info.files[kind].rsplit(".", 1)[-1]
        return {ext: self.routes.signed_urls(info.id, [kind])[kind]}

    async def start(self) -> None:
        if self.store is not None:
            await self.store.start()
            self._retention = asyncio.get_running_loop().create_task(self.store.retention_loop())

    async def close(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
        if self.store is not None:
            await self.store.close()
