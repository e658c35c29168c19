"""A real HTTP webhook receiver on 127.0.0.1 for tests, with switchable misbehaviour.

Modes: ``ok`` (200), ``fail`` (500), ``hang`` (accepts, reads the request, never answers until the
test ends), and ``down()`` (the listening socket is closed: connections are refused) /
``up()`` (listens again on the same port). Every request is recorded; ``accepted`` holds the
ones answered 2xx, in arrival order.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = field(default_factory=time.monotonic)


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.mode = "ok"
        self.requests: list[Received] = []
        self.accepted: list[Received] = []
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.mode == "hang":
            self.requests.append(Received(request.path, dict(request.headers), body, 0))
            await self._release.wait()
            return web.Response(status=503)
        status = 200 if self.mode == "ok" else 500
        got = Received(request.path, dict(request.headers), body, status)
        self.requests.append(got)
        if status == 200:
            self.accepted.append(got)
        self._changed.set()
        return web.Response(status=status, text="ok" if status == 200 else "nope")

    async def up(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        return self

    async def down(self) -> None:
        if self._runner is not None:
            self._release.set()
            await self._runner.cleanup()
            self._runner = None
            self._release = asyncio.Event()

    async def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` requests were accepted (bounded); True if they were."""
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        return True


class ThreadedReceiver:
    """A ``Receiver`` on its own event loop in a thread, for synchronous e2e tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.receiver: Receiver = asyncio.run_coroutine_threadsafe(self._make(), self.loop).result(10)

    async def _make(self) -> Receiver:
        return await Receiver().up()

    def wait_for(self, count: int, timeout: float) -> bool:
        return asyncio.run_coroutine_threadsafe(self.receiver.wait_for(count, timeout), self.loop).result(timeout + 5)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.down(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
