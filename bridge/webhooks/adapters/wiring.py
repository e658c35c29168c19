"""``start_webhooks``: the one call the composition root makes to switch webhooks on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

from ...config import Config
from ...control.events import EventBus, RecordingSaved
from ...control.model import Conference
from ..routing import Router
from ..urls import AddressPolicy
from .dispatcher import Dispatcher
from .keystore import load_or_create_keys
from .outbox_store import OutboxStore
from .routes import WebhookRoutes
from .sender import Sender

log = logging.getLogger("bridge.webhooks")


class _Lookup(Protocol):
    def get(self, conf_id: str) -> Conference | None: ...


class _HasPath(Protocol):
    @property
    def path(self) -> Path: ...


class WebhooksHandle:
    """What ``start_webhooks`` returns: routes to add to the HTTP app, stats, and ``close``."""

    def __init__(self, dispatcher: Dispatcher | None) -> None:
        self.dispatcher = dispatcher
        self._routes = WebhookRoutes(dispatcher) if dispatcher is not None else None

    @property
    def add_routes(self) -> Callable[[web.Application], None]:
        if self._routes is None:
            return lambda app: None
        return self._routes.add_routes

    def stats(self) -> dict[str, int]:
        return self.dispatcher.stats() if self.dispatcher is not None else {}

    def alive(self) -> bool:
        """Delivery tasks are running (True when webhooks are disabled: nothing to send)."""
        return self.dispatcher.alive() if self.dispatcher is not None else True

    async def close(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.close()


async def start_webhooks(
    bus: EventBus, service: _Lookup, store: _HasPath, config: Config,
    recording_urls: Callable[[RecordingSaved], dict[str, str]] | None = None,
) -> WebhooksHandle:
    """Subscribe the outbox to ``bus`` and start delivering (pending rows from before a restart first).

    ``service.get(conf_id)`` is the conference lookup; ``store.path`` is the SQLite database the
    outbox table goes into. Returns a handle whose ``add_routes`` goes to ``build_http_app`` and
    whose ``close()`` goes into shutdown. ``recording_urls`` signs a saved recording's download links.
    """
    wcfg = config.webhooks
    if not wcfg.enabled:
        log.info("webhooks: disabled in config.yaml")
        return WebhooksHandle(None)
    keys = await asyncio.to_thread(load_or_create_keys, config)
    outbox = await asyncio.to_thread(OutboxStore, store.path)
    policy = AddressPolicy.from_config(wcfg.allow_networks)
    router = Router({a.account: a for a in wcfg.accounts}, service.get, recording_urls)
    dispatcher = Dispatcher(wcfg, router, outbox, Sender(wcfg, policy), keys)
    await dispatcher.start()
    bus.subscribe("webhooks", dispatcher.on_event)
    return WebhooksHandle(dispatcher)
