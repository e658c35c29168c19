"""The recordings on disk: the writer threads, the catalog, recovery, retention, signed links.

``<recordings dir>/<recording id>/`` holds one recording: ``recording.json`` (its metadata,
the catalog reads them all at start), the finished files, or the ``.part`` files of one
being written. At start every directory whose ``recording.json`` says it was still being
written is recovered (in a thread, then announced with ``RecordingSaved``, ``recovered``);
a recovery that fails marks the recording failed, once: there is no retry loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from ...config import RecordingConfig
from ..control import saved_event
from ...control import events as ev
from ..model import RecordingInfo, info_from_dict, info_to_dict
from ..tap import Tap
from .writer import Writer, recover, write_json

log = logging.getLogger("bridge.recording")

IN_PROGRESS = ("recording", "paused", "stopped")
CODECS = {"opus": "libopus", "flac": "flac"}


class RecordingStore:
    """``Recorder`` for the live conferences and the catalog for the API."""

    def __init__(self, directory: Path, config: RecordingConfig, bus: ev.EventBus,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.directory = directory
        self.config = config
        self.bus = bus
        self.loop = loop
        self.catalog: dict[str, RecordingInfo] = {}
        self.threads: dict[str, threading.Thread] = {}
        self.usable = True
        try:
            directory.mkdir(parents=True, exist_ok=True)
            key_path = directory / ".url-key"
            if not key_path.exists():
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(32))
            self._key = key_path.read_bytes()
        except OSError as exc:          # the recordings fail one by one with an event; the bridge runs
            log.error("recordings directory %s unusable: %s", directory, exc)
            self.usable = False
            self._key = secrets.token_bytes(32)

    # ------------------------------------------------------------------ Recorder

    def begin(self, info: RecordingInfo, tap: Tap, finished: Callable[[RecordingInfo], None]) -> None:
        self.catalog[info.id] = info

        def report(result: RecordingInfo) -> None:     # the writer thread's last words
            self.loop.call_soon_threadsafe(self._done, result, finished)

        writer = Writer(self.directory / info.id, info, tap, CODECS[self.config.multitrack_codec], report)
        thread = threading.Thread(target=writer.run, name=f"rec-{info.id}", daemon=True)
        self.threads[info.id] = thread
        thread.start()

    def _done(self, result: RecordingInfo, finished: Callable[[RecordingInfo], None]) -> None:
        self.threads.pop(result.id, None)
        self.catalog[result.id] = result
        finished(result)

    async def close(self, timeout: float = 30.0) -> None:
        """Shutdown: let the writers finish their files (bounded)."""
        deadline = time.monotonic() + timeout
        for thread in list(self.threads.values()):
            await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ start-up

    def load(self) -> list[tuple[Path, dict[str, object]]]:
        """Read the catalog (blocking: run in a thread); returns what needs recovering."""
        pending: list[tuple[Path, dict[str, object]]] = []
        if not self.usable:
            return pending
        for meta_path in sorted(self.directory.glob("*/recording.json")):
            try:
                meta = json.loads(meta_path.read_text())
                info = info_from_dict(meta)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("recording catalog: skipping %s: %s", meta_path, exc)
                continue
            if info.state in IN_PROGRESS:
                pending.append((meta_path.parent, meta))
            self.catalog[info.id] = info
        return pending

    def recover_all(self, pending: list[tuple[Path, dict[str, object]]]) -> list[RecordingInfo]:
        out = []
        for directory, meta in pending:
            try:
                info = recover(directory, CODECS[self.config.multitrack_codec], meta)
                log.info("recording %s recovered (%.1f s)", info.id, info.duration_s)
            except Exception as exc:
                info = info_from_dict(meta)
                info.state, info.error, info.recovered = "failed", f"recovery failed: {exc!r}", True
                log.warning("recording %s could not be recovered: %r", info.id, exc)
                try:
                    write_json(directory / "recording.json", info_to_dict(info))
                except OSError:
                    pass
            out.append(info)
        return out

    async def start(self) -> None:
        pending = await asyncio.to_thread(self.load)
        if pending:
            for info in await asyncio.to_thread(self.recover_all, pending):
                self.catalog[info.id] = info
                if info.state == "saved":
                    self.bus.publish(saved_event(info))
                else:
                    self.bus.publish(ev.RecordingFailed(info.conference_id, recording_id=info.id,
                                                        error=info.error or ""))
            # Nothing else drains the bus while no call is up.
            self.bus.drain()

    # ------------------------------------------------------------------ catalog

    def get(self, recording_id: str) -> RecordingInfo | None:
        return self.catalog.get(recording_id)

    def path(self, info: RecordingInfo, kind: str) -> Path | None:
        name = info.files.get(kind)
        return None if name is None else self.directory / info.id / name

    def delete(self, info: RecordingInfo) -> None:
        self.catalog.pop(info.id, None)
        shutil.rmtree(self.directory / info.id, ignore_errors=True)

    def sweep(self, now: datetime) -> list[str]:
        """Retention: finished recordings older than ``retention_days``, then the oldest ones
        while the total is over ``max_disk_mb``. Blocking (file removal): run in a thread."""
        done = sorted((i for i in self.catalog.values() if i.state in ("saved", "failed")),
                      key=lambda i: i.started_at)
        gone = []
        days = self.config.retention_days
        if days is not None:
            for info in done:
                if (now - info.started_at).total_seconds() > days * 86400:
                    gone.append(info)
        limit = self.config.max_disk_mb
        if limit is not None:
            total = sum(sum(i.sizes.values()) for i in done if i not in gone)
            for info in done:
                if total <= limit * 1024 * 1024:
                    break
                if info not in gone:
                    gone.append(info)
                    total -= sum(info.sizes.values())
        for info in gone:
            self.delete(info)
        return [i.id for i in gone]

    async def retention_loop(self, every_s: float = 60.0) -> None:
        while True:
            try:
                removed = await asyncio.to_thread(self.sweep, datetime.now(timezone.utc))
                if removed:
                    log.info("recordings retention: removed %d: %s", len(removed), ", ".join(removed))
            except Exception:
                log.exception("recordings retention failed")
            await asyncio.sleep(every_s)

    # ------------------------------------------------------------------ signed links

    def signature(self, recording_id: str, kind: str, expires: int) -> str:
        msg = f"{recording_id}|{kind}|{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def signed_query(self, recording_id: str, kind: str, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.config.url_ttl_s)
        return f"file={kind}&expires={expires}&signature={self.signature(recording_id, kind, expires)}"

    def check_signature(self, recording_id: str, kind: str, expires: str, signature: str) -> bool:
        try:
            at = int(expires)
        except ValueError:
            return False
        good = hmac.compare_digest(self.signature(recording_id, kind, at), signature)
        return good and at >= time.time()
