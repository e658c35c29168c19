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
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from bridge.adapters.browser_routes import BrowserGateway, browser_routes
from bridge.adapters.http_api import build_http_app
from bridge.adapters.http_bounds import GuardedSite, HttpGuard, HttpLimits
from bridge.adapters.invite_routes import invite_routes
from bridge.adapters.leftovers import remove_leftover_temp_files
from bridge.adapters.media_clock import MediaClock
from bridge.adapters.resources import admission_limits, call_capacity, pin_limits, raise_fd_limit
from bridge.adapters.rtp_transport import PortAllocator
from bridge.adapters.sip_transport import SipTransport, server_tls_context
from bridge.adapters.storage import ConferenceStore
from bridge.adapters.call_io import CallAdapter, TickStats
from bridge.call.live import LiveConference
from bridge.config import Config, ConfigError
from bridge.control.events import ConferenceCreated, EventBus, log_subscriber
from bridge.control.model import Conference, ConferenceRepository, LiveRooms
from bridge.control.pin_guard import PinGuard
from bridge.control.service import ConferenceService
from bridge.ops import metrics as metrics_mod
from bridge.ops import testhooks
from bridge.ops.health import HealthSources, Readiness, add_ops_routes
from bridge.ops.logs import context_filter
from bridge.ops.metrics import BridgeMetrics, Sources
from bridge.ops.reload import Reloader, ReloadResult, merge, reload_routes, restart_needed
from bridge.recording.adapters.wiring import RecordingWiring
from bridge.webhooks.adapters.wiring import start_webhooks
from bridge.sip.admission import Admission, SipGate
from bridge.sip.endpoint import SipEndpoint
from bridge.vendors.freeclimb.adapters.routes import add_freeclimb_routes
from bridge.vendors.telnyx.adapters.routes import telnyx_routes

if TYPE_CHECKING:
    from bridge.cluster.wiring import Cluster

log = logging.getLogger("bridge")

SHUTDOWN_GRACE = 3.0
# Seconds between 'media ticks' log lines while calls are up (the benchmarks shorten it).
STATS_INTERVAL = float(os.environ.get("TUTTI_STATS_INTERVAL", "10"))


DEMO_TOKEN = "demo-token-change-me"      # the account token published in config.yaml


def demo_token_active(cfg: Config) -> bool:
    return any(DEMO_TOKEN in a.all_tokens() for a in cfg.accounts) or DEMO_TOKEN in cfg.admin.all_tokens()


def api_host(cfg: Config) -> str:
    """Where the HTTP API listens: loopback while the published demo token is active, since
    anyone who read the README could otherwise drive the bridge from the network."""
    if not demo_token_active(cfg):
        return cfg.http.host
    log.warning("!!! The API accepts the published demo token %r: anyone who has read config.yaml "
                "controls the bridge. Change accounts[].tokens before exposing it. !!!", DEMO_TOKEN)
    if cfg.http.host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("!!! HTTP API bound to 127.0.0.1 instead of %s until the demo token is replaced !!!",
                    cfg.http.host)
        return "127.0.0.1"
    return cfg.http.host


def http_limits(cfg: Config) -> HttpLimits:
    h = cfg.http
    return HttpLimits(h.header_timeout_s, h.body_timeout_s, h.body_min_rate, h.max_connections,
                      h.max_connections_per_source, exempt=cfg.security.trusted_proxies)


class BridgeApp:
    def __init__(self, config: Config, load: Callable[[], Config] | None = None) -> None:
        """``load``: reads the configuration file again for a reload (None: reload unavailable)."""
        self.config = config
        self.load = load
        self.stopping = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.browsers: BrowserGateway | None = None
        self.metrics = BridgeMetrics()
        self.http_guard = HttpGuard(http_limits(config))
        self._tasks: set[asyncio.Task[object]] = set()
        self.cluster: Cluster | None = None     # cluster mode (README "Running several nodes")

    async def start(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        # Everything the bridge writes (database, recordings, uploads) is the operator's alone.
        os.umask(0o077)
        data_dir = Path(cfg.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o700)
        remove_leftover_temp_files(data_dir)

        contact_host = cfg.sip.advertise_host or (cfg.sip.host if cfg.sip.host not in ("0.0.0.0", "::") else "127.0.0.1")
        self.endpoint = SipEndpoint(contact_host=contact_host, contact_port=cfg.sip.port, user_agent=cfg.sip.user_agent)
        self.endpoint.ack_wait_s = cfg.security.ack_timeout_s
        self.fd_limit = raise_fd_limit()
        self.max_calls = cfg.security.max_calls or call_capacity(self.fd_limit)
        self.admission = Admission(admission_limits(cfg.security, self.max_calls))
        gate = SipGate(self.admission, user_agent=cfg.sip.user_agent,
                       contact_uri=f"<sip:{contact_host}:{cfg.sip.port}>")
        self.sip = SipTransport(self.endpoint, self._drain_sip, loop, observer=self.metrics.sip, gate=gate,
                                calls_in_progress=lambda: len(self.calls.core.legs_by_call),
                                idle_timeout_s=cfg.sip.tcp_idle_timeout_s,
                                max_connections=cfg.sip.max_tcp_connections)
        self.store = ConferenceStore(data_dir / "bridge.sqlite3")
        for db_file in data_dir.glob("bridge.sqlite3*"):
            db_file.chmod(0o600)       # a database made by an older version was world-readable
        self.bus = EventBus(lambda: datetime.now(timezone.utc))
        self.recordings = RecordingWiring(cfg, self.bus, loop)
        self.calls = CallAdapter(
            cfg,
            self.endpoint,
            directory=self,
            allocator=PortAllocator(cfg.rtp.host, cfg.rtp.port_min, cfg.rtp.port_max),
            bus=self.bus,
            loop=loop,
            pump_sip=self.sip.pump,
            on_leg_closed=self.metrics.retire_session,
            on_tick_seconds=self.metrics.tick_seconds.observe,
            recording=self.recordings.setup,
        )
        conferences: ConferenceRepository = self.store
        live: LiveRooms = self.calls
        if cfg.cluster.enabled:
            from bridge.cluster.wiring import Cluster   # the Redis client loads in cluster mode only

            self.cluster = await Cluster.connect(cfg, self.bus, self.calls, lambda cid: self.service.get(cid))
            conferences, live = self.cluster.store, self.cluster.rooms
            self.cluster.node.is_part = self.calls.core.cascade.is_part
        self.service = ConferenceService(
            conferences, cfg, live, clock=lambda: datetime.now(timezone.utc), bus=self.bus
        )
        if self.cluster is not None:
            await self.cluster.start(self.service, self.bus, self.calls.prefetch_hold_music)
        self.pins = PinGuard(pin_limits(cfg.security))
        self.calls.core.lobby.pin_guard = self.pins
        self.calls.core.lobby.publish = self.bus.publish
        self.bus.subscribe("status", self.service.on_event)
        self.bus.subscribe("log", log_subscriber)
        self.bus.subscribe("metrics", self.metrics.events.on_event)
        self.bus.subscribe("telnyx-dialed", self.calls.dialed.on_event)
        self.bus.subscribe("hold-prefetch", lambda e: self.calls.prefetch_hold_music(
            self.service.get(e.conference_id) if isinstance(e, ConferenceCreated) else None))
        self.recordings.attach(self.service, self._recording_room)
        self.webhooks = await start_webhooks(self.bus, self.service, self.store, cfg,
                                             recording_urls=self.recordings.urls_for)
        await self.recordings.start()      # after the webhooks: recovered recordings are announced
        self.clock = MediaClock(self.calls.tick, on_lateness=self.metrics.tick_lateness.observe)
        self._wire_ops(loop)

        await self.sip.start(cfg.sip.host, cfg.sip.port, cfg.sip.transports)
        if cfg.sip.tls is not None:
            self.endpoint.tls_port = cfg.sip.tls.port
            await self.sip.start_tls(cfg.sip.host, cfg.sip.tls.port,
                                     server_tls_context(cfg.sip.tls.cert, cfg.sip.tls.key))
        routes = [self.webhooks.add_routes, self.recordings.add_routes, self._ops_routes,
                  reload_routes(self.reloader, lambda: self.service.config.admin.all_tokens()),
                  add_freeclimb_routes,                                  # /freeclimb/apiserver
                  telnyx_routes(self.cluster.call_control(self.calls) if self.cluster else self.calls,
                                lambda: self.recordings.service),                     # /telnyx/v2
                  invite_routes(self.service, lambda: self.service.config.smtp)]   # e-mail invitations
        self.browsers = BrowserGateway(cfg, self.calls, self.service, self.pins, self.bus)
        routes.append(browser_routes(self.browsers))                            # the join page, WebRTC
        if self.cluster is not None:
            routes.append(self.cluster.add_http_routes)     # join pages of rooms live on other nodes
        if testhooks.enabled():
            routes.append(testhooks.test_routes(lambda: self.clock))
        http_app = build_http_app(self.service, config=cfg, extra_routes=routes)
        self.runner = web.AppRunner(http_app, access_log=None, keepalive_timeout=cfg.http.keepalive_timeout_s)
        await self.runner.setup()
        http_host = api_host(cfg)
        https = server_tls_context(cfg.http.tls.cert, cfg.http.tls.key) if cfg.http.tls else None
        await GuardedSite(self.runner, http_host, cfg.http.port, self.http_guard, https).start()

        self.clock.start()
        self._housekeeping = loop.create_task(self._housekeep())
        log.info(
            "bridge up: SIP %s:%d (%s), HTTP%s %s:%d, RTP %d-%d, rooms: %s; open files %d, up to %d calls",
            cfg.sip.host, cfg.sip.port, "/".join(cfg.sip.transports), "S" if https else "", http_host,
            cfg.http.port,
            cfg.rtp.port_min, cfg.rtp.port_max, ", ".join(r.name for r in cfg.rooms) or "(none)",
            self.fd_limit, self.max_calls,
        )

    def _wire_ops(self, loop: asyncio.AbstractEventLoop) -> None:
        """Metrics read live state at scrape time; readiness probes; reload; log context."""
        core = self.calls.core
        webhooks = self.webhooks
        metrics_mod.use(self.metrics)
        self.metrics.attach(Sources(
            legs=lambda: core.legs_by_call.values(), rooms=lambda: core.rooms,
            conferences=self.service.conferences, clock=self.clock, now=loop.time,
            webhooks=webhooks.stats, sip_internal_errors=lambda: self.endpoint.internal_errors,
            leg_faults=lambda: core.leg_faults, security=lambda: self._security_stats(loop.time()),
            rtp_worker=self.calls.rtp_worker_stats,
        ))
        readiness = Readiness(HealthSources(
            sip_down=lambda: self.sip.bound(self.config.sip.transports + (("tls",) if self.config.sip.tls else ())),
            db_path=self.store.path,
            clock=self.clock, now=loop.time, sender_alive=webhooks.alive,
        ))
        self._ops_routes = lambda app: add_ops_routes(app, readiness, self.metrics)
        on_result = lambda result: self.metrics.config_reloads.labels(result).inc()  # noqa: E731
        self.reloader = Reloader(self.load, self.apply_config, on_result) if self.load is not None else None
        context = context_filter()
        if context is not None:
            context.lookup = self._leg_ids

    def _security_stats(self, now: float) -> dict[str, object]:
        adm = self.admission
        counts = {k: v for k, v in adm.counts.items() if k not in ("bans",)}
        return {"admission": counts, "bans": adm.counts.get("bans", 0), "banned": adm.banned(now),
                "unconfirmed": adm.unconfirmed, "max_calls": self.max_calls, "fd_limit": self.fd_limit,
                "pin": dict(self.pins.counts), "pin_locked": self.pins.locked(now),
                "http": self.http_guard.stats()}

    def _leg_ids(self, participant_id: str) -> tuple[str, str] | None:
        for leg in self.calls.core.legs_by_call.values():
            if leg.leg_id == participant_id:
                return leg.conf_id, leg.call.call_id
        return None

    def apply_config(self, new: Config) -> ReloadResult:
        """Switch to ``new``'s reloadable parts (raises ConfigError, changing nothing, if they
        do not fit the running rest); the rest waits for a restart."""
        merged = merge(self.config, new)
        restart = restart_needed(self.config, new)
        accounts_changed = merged.accounts != self.config.accounts or merged.admin != self.config.admin
        self.config = merged
        self.calls.core.config = merged
        rooms = self.service.reload_rooms(merged)   # live changes go through the CallAdapter
        logging.getLogger().setLevel(merged.log_level.upper())
        return ReloadResult(rooms, accounts_changed, restart)

    def _on_sighup(self) -> None:
        if self.reloader is None:
            log.warning("SIGHUP: no configuration file to reload")
            return
        task = asyncio.get_running_loop().create_task(self._reload_quietly())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_quietly(self) -> None:
        assert self.reloader is not None
        try:
            await self.reloader.reload("SIGHUP")
        except ConfigError:
            pass   # logged by the reloader; the running configuration stays

    def _drain_sip(self) -> None:
        self.calls.on_sip_events()

    def resolve_dial(self, user: str) -> Conference | None:
        """The core's conference directory (the service is built after the core)."""
        return self.service.resolve_dial(user)

    def _recording_room(self, conf_id: str) -> LiveConference | None:
        """The live room the recording API acts on; a room mixed on another node answers 409 naming it."""
        if self.cluster is not None:
            self.cluster.rooms.here_only(conf_id, "record")
        return self.calls.core.rooms.get(conf_id)

    def redirect(self, conf_id: str, user: str) -> str | None:
        return None if self.cluster is None else self.cluster.redirect(conf_id, user)

    def part_nodes(self) -> Sequence[str]:
        """cascade.part_nodes when listed, else (cluster mode) every other live node."""
        static = self.config.cascade.part_nodes
        return static if static or self.cluster is None else self.cluster.node.part_nodes()

    async def _housekeep(self) -> None:
        loop = asyncio.get_running_loop()
        next_stats = loop.time() + STATS_INTERVAL
        next_demo_warning = loop.time() + 600
        while True:
            await asyncio.sleep(1.0)
            try:
                self.calls.housekeeping(loop.time())
                if loop.time() >= next_stats and self.calls.calls:
                    log.info("%s over the last %.0f s", self.calls.tick_stats.summary(), STATS_INTERVAL)
                    self.calls.tick_stats = TickStats()
                    next_stats = loop.time() + STATS_INTERVAL
                if loop.time() >= next_demo_warning and demo_token_active(self.config):
                    log.warning("!!! the published demo token is still active: replace accounts[].tokens !!!")
                    next_demo_warning = loop.time() + 600
                for conf in self.service.expire_due(datetime.now(timezone.utc)):
                    if self.cluster is None:
                        self.calls.end_conference(conf.id, "time_exceeded")
                    else:
                        await self.cluster.end_expired(conf.id)
            except Exception:
                log.exception("housekeeping failed")

    async def shutdown(self) -> None:
        log.info("shutting down: sending BYE to %d call(s)", self.calls.calls)
        self.calls.hangup_all()
        if self.browsers is not None:
            await self.browsers.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE
        # Keep the SIP adapter alive until our BYEs are answered or time out.
        while self.endpoint.active_calls() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        self._housekeeping.cancel()
        await self.clock.stop()
        self.calls.close()                 # the RTP IO worker exits
        await self.recordings.close()      # the writers finish their files
        self.bus.drain()
        self.sip.close()
        if self.runner is not None:
            await self.runner.cleanup()
        self.bus.drain()
        if self.cluster is not None:
            await self.cluster.close()      # our leases released, out of the registry
        await self.webhooks.close()
        self.store.close()

    async def run(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        await self.stopping.wait()
        await self.shutdown()
