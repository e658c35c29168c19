"""Composition root: build the cores and adapters from the config, run, shut down.

Shutdown (SIGTERM/SIGINT): every leg gets a BYE, we wait briefly for the BYE
transactions to finish (or time out), then exit; the whole thing is bounded
by ``SHUTDOWN_GRACE`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

from bridge.adapters.http_api import build_http_app
from bridge.adapters.media_clock import MediaClock
from bridge.adapters.rtp_transport import PortAllocator
from bridge.adapters.sip_transport import SipTransport
from bridge.adapters.storage import ConferenceStore
from bridge.adapters.call_io import CallAdapter, TickStats
from bridge.config import Config
from bridge.control.events import EventBus, log_subscriber
from bridge.control.model import Conference
from bridge.control.service import ConferenceService
from bridge.webhooks.adapters.wiring import start_webhooks
from bridge.sip.endpoint import SipEndpoint
from bridge.vendors.freeclimb.adapters.routes import add_freeclimb_routes
from bridge.vendors.telnyx.adapters.routes import telnyx_routes

log = logging.getLogger("bridge")

SHUTDOWN_GRACE = 3.0
# Seconds between 'media ticks' log lines while calls are up (the benchmarks shorten it).
STATS_INTERVAL = float(os.environ.get("TUTTI_STATS_INTERVAL", "10"))


class BridgeApp:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stopping = asyncio.Event()
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        data_dir = Path(cfg.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)

        contact_host = cfg.sip.advertise_host or (cfg.sip.host if cfg.sip.host not in ("0.0.0.0", "::") else "127.0.0.1")
        self.endpoint = SipEndpoint(contact_host=contact_host, contact_port=cfg.sip.port, user_agent=cfg.sip.user_agent)
        self.sip = SipTransport(self.endpoint, self._drain_sip, loop)
        self.store = ConferenceStore(data_dir / "bridge.sqlite3")
        self.bus = EventBus(lambda: datetime.now(timezone.utc))
        self.calls = CallAdapter(
            cfg,
            self.endpoint,
            directory=self,
            allocator=PortAllocator(cfg.rtp.host, cfg.rtp.port_min, cfg.rtp.port_max),
            bus=self.bus,
            loop=loop,
            pump_sip=self.sip.pump,
        )
        self.service = ConferenceService(
            self.store, cfg, self.calls, clock=lambda: datetime.now(timezone.utc), bus=self.bus
        )
        self.bus.subscribe("status", self.service.on_event)
        self.bus.subscribe("log", log_subscriber)
        self.webhooks = await start_webhooks(self.bus, self.service, self.store, cfg)

        await self.sip.start(cfg.sip.host, cfg.sip.port, cfg.sip.transports)
        vendor_routes = [add_freeclimb_routes, telnyx_routes(self.calls)]  # /freeclimb/apiserver, /telnyx/v2
        http_app = build_http_app(self.service, config=cfg, extra_routes=[self.webhooks.add_routes, *vendor_routes])
        self.runner = web.AppRunner(http_app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, cfg.http.host, cfg.http.port).start()

        self.clock = MediaClock(self.calls.tick)
        self.clock.start()
        self._housekeeping = loop.create_task(self._housekeep())
        log.info(
            "bridge up: SIP %s:%d (%s), HTTP %s:%d, RTP %d-%d, rooms: %s",
            cfg.sip.host, cfg.sip.port, "/".join(cfg.sip.transports), cfg.http.host, cfg.http.port,
            cfg.rtp.port_min, cfg.rtp.port_max, ", ".join(r.name for r in cfg.rooms) or "(none)",
        )

    def _drain_sip(self) -> None:
        self.calls.on_sip_events()

    def resolve_dial(self, user: str) -> Conference | None:
        """The core's conference directory (the service is built after the core)."""
        return self.service.resolve_dial(user)

    async def _housekeep(self) -> None:
        loop = asyncio.get_running_loop()
        next_stats = loop.time() + STATS_INTERVAL
        while True:
            await asyncio.sleep(1.0)
            try:
                self.calls.housekeeping(loop.time())
                if loop.time() >= next_stats and self.calls.calls:
                    log.info("%s over the last %.0f s", self.calls.tick_stats.summary(), STATS_INTERVAL)
                    self.calls.tick_stats = TickStats()
                    next_stats = loop.time() + STATS_INTERVAL
                for conf in self.service.expire_due(datetime.now(timezone.utc)):
                    self.calls.end_conference(conf.id, "time_exceeded")
            except Exception:
                log.exception("housekeeping failed")

    async def shutdown(self) -> None:
        log.info("shutting down: sending BYE to %d call(s)", self.calls.calls)
        self.calls.hangup_all()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE
        # Keep the SIP adapter alive until our BYEs are answered or time out.
        while self.endpoint.active_calls() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        self._housekeeping.cancel()
        await self.clock.stop()
        self.sip.close()
        if self.runner is not None:
            await self.runner.cleanup()
        self.bus.drain()
        await self.webhooks.close()
        self.store.close()

    async def run(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.stopping.wait()
        await self.shutdown()
