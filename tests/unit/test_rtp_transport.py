"""RTP socket adapter on 127.0.0.1: every receive path delivers, sends, and releases its ports."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from bridge.adapters import rtp_transport as rt


@pytest.fixture(params=rt.RECV_MODES)
def recv_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(rt, "RECV_MODE", request.param)
    return str(request.param)


def _free_range() -> tuple[int, int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    lo = port & ~1
    return lo, lo + 40


async def test_receive_send_close(recv_mode: str) -> None:
    loop = asyncio.get_running_loop()
    lo, hi = _free_range()
    alloc = rt.PortAllocator("127.0.0.1", lo, hi)
    got_rtp: list[tuple[bytes, Any]] = []
    got_rtcp: list[tuple[bytes, Any]] = []
    leg = rt.LegSockets(alloc)
    port = await leg.open(loop, lambda d, a: got_rtp.append((d, a)), lambda d, a: got_rtcp.append((d, a)))
    assert port % 2 == 0 and lo <= port < hi and leg.port == port

    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    for i in range(3):
        peer.sendto(b"rtp%d" % i, ("127.0.0.1", port))
    peer.sendto(b"rtcp", ("127.0.0.1", port + 1))
    for _ in range(200):
        if len(got_rtp) == 3 and got_rtcp:
            break
        await asyncio.sleep(0.005)
    assert [d for d, _ in got_rtp] == [b"rtp0", b"rtp1", b"rtp2"]
    assert got_rtp[0][1][:2] == peer.getsockname()
    assert got_rtcp[0][0] == b"rtcp"

    leg.send_rtp(b"out", peer.getsockname())
    data, addr = peer.recvfrom(100)
    assert data == b"out" and addr == ("127.0.0.1", port)
    leg.send_rtcp(b"report", peer.getsockname())
    data, addr = peer.recvfrom(100)
    assert data == b"report" and addr == ("127.0.0.1", port + 1)

    leg.close()
    await asyncio.sleep(0)
    assert leg.port == 0 and port not in alloc.in_use
    leg.send_rtp(b"after close", peer.getsockname())  # a no-op, not an error
    # The ports are free again.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
    peer.close()


async def test_oversized_datagram_is_truncated_not_fatal(recv_mode: str) -> None:
    if recv_mode == "asyncio-256k":
        pytest.skip("the stock 256 KiB buffer does not truncate")
    loop = asyncio.get_running_loop()
    lo, hi = _free_range()
    got: list[bytes] = []
    leg = rt.LegSockets(rt.PortAllocator("127.0.0.1", lo, hi))
    port = await leg.open(loop, lambda d, a: got.append(d), lambda d, a: None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.sendto(bytes(5000), ("127.0.0.1", port))
        peer.sendto(b"next", ("127.0.0.1", port))
        for _ in range(200):
            if len(got) == 2:
                break
            await asyncio.sleep(0.005)
    leg.close()
    assert len(got[0]) == rt.RTP_MAX_DATAGRAM and got[1] == b"next"


def test_port_range_exhausted() -> None:
    lo, _ = _free_range()
    alloc = rt.PortAllocator("127.0.0.1", lo, lo + 2)
    rtp, rtcp, port = alloc.bind_pair()
    try:
        with pytest.raises(rt.PortRangeExhausted):
            alloc.bind_pair()
    finally:
        rtp.close()
        rtcp.close()
    alloc.release(port)
    assert port not in alloc.in_use
