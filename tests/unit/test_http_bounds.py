"""The HTTP listener's request framing tracker and connection caps (bridge/adapters/http_bounds.py)."""

from __future__ import annotations

import asyncio

import pytest

from bridge.adapters.http_bounds import HttpGuard, HttpLimits, RequestFraming


def feed_bytewise(framing: RequestFraming, data: bytes) -> list[str]:
    phases: list[str] = []
    for i in range(len(data)):
        framing.feed(data[i:i + 1])
        phases.append(framing.phase)
    return phases


def test_head_then_idle_one_byte_at_a_time() -> None:
    framing = RequestFraming()
    assert framing.phase == "head"
    phases = feed_bytewise(framing, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert phases[:-1] == ["head"] * (len(phases) - 1) and phases[-1] == "idle"
    assert framing.requests == 1


def test_content_length_body_and_pipelined_next_request() -> None:
    framing = RequestFraming()
    framing.feed(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
    assert framing.phase == "body"
    framing.feed(b"cdeGET /b HTTP/1.1\r\n")
    assert framing.phase == "head" and framing.requests == 1
    framing.feed(b"\r\n")
    assert framing.phase == "idle" and framing.requests == 2


def test_chunked_body_ends_after_the_last_chunk_and_trailers() -> None:
    framing = RequestFraming()
    framing.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert framing.phase == "body"
    # a chunk whose data looks like a terminator does not end the body
    phases = feed_bytewise(framing, b"7\r\n\r\n0\r\n\r\n\r\n")
    assert set(phases) == {"body"}
    framing.feed(b"0\r\nX-Trailer: 1\r\n")
    assert framing.phase == "body"
    framing.feed(b"\r\n")
    assert framing.phase == "idle"


def test_upgrade_stops_tracking() -> None:
    framing = RequestFraming()
    framing.feed(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello")
    assert framing.phase == "upgraded"


class FakeTransport(asyncio.Transport):
    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer = peer
        self.written = b""
        self.closed = self.aborted = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.peer, 1234) if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class Inner(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.made = self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made = True

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


def test_caps_total_and_per_source_with_exempt_proxy() -> None:
    async def run() -> None:
        guard = HttpGuard(HttpLimits(max_connections=4, max_connections_per_source=2, exempt=("10.0.0.0/8",)))
        inners: list[Inner] = []

        def make() -> Inner:
            inners.append(Inner())
            return inners[-1]

        factory = guard.protocol_factory(make)
        protos, transports = [], []
        for peer in ("1.1.1.1", "1.1.1.1", "1.1.1.1", "10.0.0.1", "10.0.0.1", "10.0.0.1"):
            proto, transport = factory(), FakeTransport(peer)
            proto.connection_made(transport)
            protos.append(proto)
            transports.append(transport)
        # third from 1.1.1.1 refused (per source), the proxy's three pass the per-source cap but
        # the last one meets the total cap
        refused = [t.written.startswith(b"HTTP/1.1 503") and t.closed for t in transports]
        assert refused == [False, False, True, False, False, True]
        assert len(inners) == 4 and guard.stats()["open"] == 4
        assert guard.counts["refused_source"] == 1 and guard.counts["refused_total"] == 1
        protos[2].connection_lost(None)       # a refused one leaving changes nothing
        protos[0].connection_lost(None)
        assert inners[0].lost and guard.stats()["open"] == 3
        again, transport = factory(), FakeTransport("1.1.1.1")
        again.connection_made(transport)
        assert not transport.closed and guard.stats()["open"] == 4
        for proto in protos:
            proto.connection_lost(None)
        again.connection_lost(None)
        assert guard.stats()["open"] == 0 and guard.by_source == {}

    asyncio.run(run())


@pytest.mark.parametrize("slow_body", [False, True])
def test_header_and_body_timeouts(slow_body: bool) -> None:
    async def run() -> None:
        guard = HttpGuard(HttpLimits(header_timeout_s=0.2, body_timeout_s=0.3, body_min_rate=0))
        inner = Inner()
        proto, transport = guard.protocol_factory(lambda: inner)(), FakeTransport("1.2.3.4")
        proto.connection_made(transport)
        if slow_body:
            proto.data_received(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n")
        for _ in range(10):          # a byte every 0.1 s: the head (or body) never completes
            await asyncio.sleep(0.1)
            if transport.aborted:
                break
            proto.data_received(b"x")
        assert transport.aborted
        assert guard.counts["body_timeout" if slow_body else "header_timeout"] == 1
        assert inner.data.endswith(b"x")        # aiohttp saw every byte meanwhile

    asyncio.run(run())


def test_fast_requests_and_idle_keepalive_are_not_timed_out() -> None:
    async def run() -> None:
        guard = HttpGuard(HttpLimits(header_timeout_s=0.15, body_timeout_s=0.15))
        proto, transport = guard.protocol_factory(Inner)(), FakeTransport("1.2.3.4")
        proto.connection_made(transport)
        proto.data_received(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        await asyncio.sleep(0.4)     # between requests: aiohttp's keep-alive timer, not ours
        assert not transport.aborted
        proto.data_received(b"GET / HTTP/1.1\r\n\r\n")
        await asyncio.sleep(0.3)
        assert not transport.aborted and guard.counts["header_timeout"] == 0

    asyncio.run(run())


def test_body_deadline_grows_with_honest_progress() -> None:
    async def run() -> None:
        guard = HttpGuard(HttpLimits(body_timeout_s=0.2, body_min_rate=100))
        proto, transport = guard.protocol_factory(Inner)(), FakeTransport("1.2.3.4")
        proto.connection_made(transport)
        proto.data_received(b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(8):           # 50 bytes every 0.1 s = 500 B/s, above the 100 B/s floor
            await asyncio.sleep(0.1)
            proto.data_received(b"y" * 50)
        assert not transport.aborted

    asyncio.run(run())



def test_bare_lf_header_block_ends_the_head() -> None:
    framing = RequestFraming()
    framing.feed(b"POST / HTTP/1.1\nContent-Length: 2\n\nok")
    assert framing.phase == "idle" and framing.requests == 1
