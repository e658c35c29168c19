"""Routes for the end-to-end tests only, present when ``TUTTI_TEST_HOOKS=1`` is in the environment.

``POST /test/media-clock/stall?seconds=N`` stops the media clock for N seconds (0.1-10) without
blocking the loop, so a test can watch ``/readyz`` report the stall. Never set the variable in
production: the route needs no token.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("bridge.testhooks")
ENV = "TUTTI_TEST_HOOKS"


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


def test_routes(clock: Callable[[], Any]) -> Callable[[web.Application], None]:
    """``clock()``: the app's MediaClock (it exists only once the app has started)."""

    async def stall(request: web.Request) -> web.Response:
        try:
            seconds = float(request.query.get("seconds", "1"))
        except ValueError:
            seconds = -1.0
        if not 0.1 <= seconds <= 10:
            return web.json_response({"error": "bad_request", "message": "seconds: 0.1-10"}, status=400)
        media_clock = clock()
        await media_clock.stop()
        log.warning("test hook: media clock stalled for %.1f s", seconds)
        asyncio.get_running_loop().call_later(seconds, media_clock.start)
        return web.json_response({"stalled_s": seconds})

    def add(app: web.Application) -> None:
        log.warning("%s=1: test hooks are enabled (never in production)", ENV)
        app.router.add_post("/test/media-clock/stall", stall)

    return add
