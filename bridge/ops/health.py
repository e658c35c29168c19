"""``/healthz``, ``/readyz`` and ``/metrics`` on the REST port (README "Health", "Metrics").

``/healthz`` says the process answers. ``/readyz`` checks what a call needs: the SIP sockets
listening, the database writable (a write transaction begun and rolled back, in a thread with
a timeout: a slow disk must not stall the loop), the media clock ticking on time, and the
webhook sender running. Neither route needs a token (load balancers and orchestrators probe
them); ``/metrics`` neither (Prometheus scrapes it): none of them shows an id, PIN or token.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from ..adapters.media_clock import MAX_LAG_TICKS
from .metrics import CONTENT_TYPE, BridgeMetrics

DB_TIMEOUT_S = 2.0


@dataclass
class HealthSources:
    sip_down: Callable[[], list[str]]     # SIP transports not listening
    db_path: Path
    clock: Any                            # bridge.adapters.media_clock.MediaClock
    now: Callable[[], float]              # the loop's time
    sender_alive: Callable[[], bool]      # the webhook dispatcher's tasks are running


def _db_write_check(path: Path) -> None:
    db = sqlite3.connect(path, timeout=1.0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")   # takes the write lock: fails on a read-only or broken database
        db.execute("ROLLBACK")
    finally:
        db.close()


class Readiness:
    def __init__(self, sources: HealthSources) -> None:
        self.sources = sources

    def clock_problem(self) -> str | None:
        clock = self.sources.clock
        if clock is None or not clock.running:
            return "media clock not running"
        if clock.last_tick is None:
            return "media clock has not ticked yet"
        # The clock itself calls a lag of more than MAX_LAG_TICKS periods a stall.
        age = self.sources.now() - clock.last_tick
        if age > MAX_LAG_TICKS * clock.period:
            return f"media clock last ticked {age * 1000:.0f} ms ago"
        return None

    async def db_problem(self) -> str | None:
        try:
            await asyncio.wait_for(asyncio.to_thread(_db_write_check, self.sources.db_path), DB_TIMEOUT_S)
        except asyncio.TimeoutError:
            return f"database not writable within {DB_TIMEOUT_S:.0f} s"
        except (sqlite3.Error, OSError) as err:
            return f"database not writable: {err}"
        return None

    async def check(self) -> tuple[dict[str, str], list[str]]:
        """Each check's verdict ("ok" or the problem) and the list of problems."""
        checks: dict[str, str] = {}
        clock = self.clock_problem()   # before awaiting anything: the loop's view right now
        down = self.sources.sip_down()
        checks["sip"] = "ok" if not down else f"SIP not listening on {', '.join(down)}"
        checks["database"] = await self.db_problem() or "ok"
        checks["media_clock"] = clock or "ok"
        checks["event_sender"] = "ok" if self.sources.sender_alive() else "webhook sender stopped"
        return checks, [v for v in checks.values() if v != "ok"]


def add_ops_routes(app: web.Application, readiness: Readiness, metrics: BridgeMetrics) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        checks, problems = await readiness.check()
        if problems:
            return web.json_response({"status": "not_ready", "reasons": problems, "checks": checks}, status=503)
        return web.json_response({"status": "ready", "checks": checks})

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/metrics", scrape, allow_head=False)
