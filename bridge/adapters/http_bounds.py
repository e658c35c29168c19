"""Resource bounds for the HTTP API's listener (slowloris, connection floods).

aiohttp has no clock on a request being received: a client that sends its headers one byte at
a time holds its connection (and a file descriptor) for as long as it likes. ``HttpGuard`` wraps
aiohttp's per-connection protocol: it caps connections in total and per source address (beyond
them it answers ``503`` with ``Retry-After`` and closes), and it follows each request's framing
(``RequestFraming``) so that the header block must arrive within ``header_timeout_s`` and the
body within ``body_timeout_s`` (extended by one second per ``body_min_rate`` bytes received, as
Apache's mod_reqtimeout does, so a large upload over a slow but honest link still completes).
A connection between requests is aiohttp's keep-alive business; a protocol upgrade is left alone.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from aiohttp import web

log = logging.getLogger("bridge.http")

Phase = Literal["head", "body", "idle", "upgraded"]
HEAD_MAX = 64 * 1024        # aiohttp refuses far smaller header blocks; we only stop looking
LINE_MAX = 4096             # a chunk-size line
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n"
           b"Content-Type: text/plain\r\nContent-Length: 20\r\n\r\ntoo many connections")


class RequestFraming:
    """Sans-IO: which part of an HTTP/1.1 request the bytes fed so far have reached. Only the
    framing is followed (Content-Length, chunked, Upgrade); aiohttp parses and validates for real,
    so a malformed request just ends our tracking (``idle``) and aiohttp answers 400."""

    def __init__(self) -> None:
        self.phase: Phase = "head"
        self.requests = 0            # header blocks completed
        self._head = bytearray()
        self._remaining = 0          # Content-Length bytes, or chunk bytes + CRLF, still due
        self._chunked = False
        self._line = bytearray()     # chunk-size or trailer line being read
        self._trailer = False

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.phase != "upgraded":
            if self.phase == "idle":
                self.phase = "head"
            view = self._head_bytes(view) if self.phase == "head" else self._body_bytes(view)

    def _head_bytes(self, view: memoryview) -> memoryview:
        before = len(self._head)
        self._head += view[: max(0, HEAD_MAX - before)]   # past HEAD_MAX only the clock matters
        # CRLF CRLF ends a header block; a bare LF LF too, as lenient parsers take it
        found = [(i, n) for i, n in ((self._head.find(b"\r\n\r\n", max(0, before - 3)), 4),
                                     (self._head.find(b"\n\n", max(0, before - 1)), 2)) if i >= 0]
        if not found:
            return view[len(view):]
        end, size = min(found)
        head = bytes(self._head[: end + size])
        self._head.clear()
        self.requests += 1
        self._start_body(head)
        return view[end + size - before:]

    def _start_body(self, head: bytes) -> None:
        length: int | None = None
        chunked = upgrade = False
        for line in head.split(b"\n")[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    length = None
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"upgrade":
                upgrade = True
        if upgrade:
            self.phase = "upgraded"
        elif chunked:
            self.phase, self._chunked, self._trailer = "body", True, False
            self._remaining = 0
        elif length:
            self.phase, self._chunked, self._remaining = "body", False, max(length, 0)
        else:
            self.phase = "idle"

    def _body_bytes(self, view: memoryview) -> memoryview:
        if self._remaining:
            take = min(self._remaining, len(view))
            self._remaining -= take
            if not self._remaining and not self._chunked:
                self.phase = "idle"
            return view[take:]
        # chunked: a size line (or a trailer line), CRLF-terminated
        nl = bytes(view).find(b"\n")
        if nl < 0:
            if len(self._line) + len(view) > LINE_MAX:
                self.phase = "idle"        # not HTTP as we know it: aiohttp will refuse it
            self._line += view
            return view[len(view):]
        line = bytes(self._line + view[:nl]).strip()
        self._line.clear()
        rest = view[nl + 1:]
        if self._trailer:
            if not line:
                self.phase = "idle"
            return rest
        try:
            size = int(line.split(b";")[0], 16)
        except ValueError:
            self.phase = "idle"
            return rest
        if size == 0:
            self._trailer = True
        else:
            self._remaining = size + 2
        return rest


@dataclass(frozen=True)
class HttpLimits:
    header_timeout_s: float = 10.0     # 0: no limit
    body_timeout_s: float = 30.0       # 0: no limit
    body_min_rate: int = 1000          # bytes a second that extend the body deadline by a second
    max_connections: int = 1000        # 0: no cap
    max_connections_per_source: int = 100  # 0: no cap
    exempt: tuple[str, ...] = ()       # networks without the per-source cap (trusted proxies)


class HttpGuard:
    """Counts and limits the API's connections; ``protocol_factory`` wraps aiohttp's."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self.open = 0
        self.by_source: dict[str, int] = {}
        self.counts = {"accepted": 0, "refused_total": 0, "refused_source": 0,
                       "header_timeout": 0, "body_timeout": 0}
        self._exempt = [ipaddress.ip_network(n, strict=False) for n in limits.exempt]

    def protocol_factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _GuardedProtocol(self, inner)

    def admit(self, source: str) -> bool:
        lim = self.limits
        if lim.max_connections and self.open >= lim.max_connections:
            self.counts["refused_total"] += 1
            return False
        per = self.by_source.get(source, 0)
        if lim.max_connections_per_source and per >= lim.max_connections_per_source \
                and not self._exempted(source):
            self.counts["refused_source"] += 1
            return False
        self.open += 1
        self.by_source[source] = per + 1
        self.counts["accepted"] += 1
        return True

    def release(self, source: str) -> None:
        self.open -= 1
        left = self.by_source.get(source, 1) - 1
        if left > 0:
            self.by_source[source] = left
        else:
            self.by_source.pop(source, None)

    def stats(self) -> dict[str, int]:
        return {**self.counts, "open": self.open}

    def _exempted(self, source: str) -> bool:
        try:
            addr = ipaddress.ip_address(source)
        except ValueError:
            return False
        return any(addr in net for net in self._exempt)


class _GuardedProtocol(asyncio.Protocol):
    """Stands between the event loop and aiohttp's RequestHandler for one connection."""

    def __init__(self, guard: HttpGuard, inner: Callable[[], asyncio.Protocol]) -> None:
        self.guard = guard
        self._make_inner = inner
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.source = ""
        self.framing = RequestFraming()
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._phase: Phase = "idle"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)    # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        self.source = str(peer[0]) if isinstance(peer, tuple) else ""
        if not self.guard.admit(self.source):
            self.transport.write(REFUSAL)
            self.transport.close()
            return
        self.inner = self._make_inner()
        self.inner.connection_made(transport)
        self._track()

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        if self.framing.phase != "upgraded":
            self.framing.feed(data)
            if self._phase == "body" and self.framing.phase == "body" and self.guard.limits.body_min_rate:
                self._extend(len(data) / self.guard.limits.body_min_rate)
            self._track()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self.inner is not None:
            self.guard.release(self.source)
            inner, self.inner = self.inner, None
            inner.connection_lost(exc)

    def _track(self) -> None:
        """Start the clock when a header block or a body begins; stop it when it is complete."""
        phase = self.framing.phase
        if phase == self._phase:
            return
        self._phase = phase
        self._cancel()
        limits = self.guard.limits
        budget = {"head": limits.header_timeout_s, "body": limits.body_timeout_s}.get(phase, 0.0)
        if budget > 0:
            loop = asyncio.get_running_loop()
            self._deadline = loop.time() + budget
            self._timer = loop.call_at(self._deadline, self._expired)

    def _extend(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._deadline += seconds
            self._timer = asyncio.get_running_loop().call_at(self._deadline, self._expired)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        phase = "header" if self._phase == "head" else "body"
        self.guard.counts[f"{phase}_timeout"] += 1
        log.info("HTTP connection from %s closed: %s not received in time", self.source, phase)
        if self.transport is not None:
            self.transport.abort()


class GuardedSite(web.BaseSite):
    """``web.TCPSite`` with every connection passed through an ``HttpGuard`` (and, with an SSL
    context, a TLS handshake bounded by the header timeout)."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: HttpGuard,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self.guard = guard

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        handshake = self.guard.limits.header_timeout_s or 60.0
        self._server = await asyncio.get_running_loop().create_server(
            self.guard.protocol_factory(server), self._host, self._port, ssl=self._ssl_context,
            ssl_handshake_timeout=handshake if self._ssl_context else None, reuse_address=True, backlog=128)
