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
    receiver = rt.BatchReceiver()   # used by the tick mode, idle otherwise
    leg = rt.LegSockets(alloc, receiver)
    port = await leg.open(loop, lambda d, a: got_rtp.append((d, a)), lambda d, a: got_rtcp.append((d, a)))
    assert port % 2 == 0 and lo <= port < hi and leg.port == port

    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    for i in range(3):
        peer.sendto(b"rtp%d" % i, ("127.0.0.1", port))
    peer.sendto(b"rtcp", ("127.0.0.1", port + 1))
    for _ in range(200):
        receiver.drain()             # the media tick's job
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
    assert leg.port == 0 and port not in alloc.in_use and len(receiver) == 0
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
    receiver = rt.BatchReceiver()
    leg = rt.LegSockets(rt.PortAllocator("127.0.0.1", lo, hi), receiver)
    port = await leg.open(loop, lambda d, a: got.append(d), lambda d, a: None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.sendto(bytes(5000), ("127.0.0.1", port))
        peer.sendto(b"next", ("127.0.0.1", port))
        for _ in range(200):
            receiver.drain()
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


async def test_batch_receiver_reads_every_socket_once_per_round_and_bounds_a_flood(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The tick mode: nothing is read until drain(); a drain reads every socket's queue
    (one datagram per socket per epoll round), but at most MAX_ROUNDS from a flooded one."""
    monkeypatch.setattr(rt, "RECV_MODE", "tick")
    loop = asyncio.get_running_loop()
    lo, hi = _free_range()
    alloc = rt.PortAllocator("127.0.0.1", lo, hi)
    receiver = rt.BatchReceiver()
    got: dict[int, list[bytes]] = {}
    legs = []
    for i in range(3):
        leg = rt.LegSockets(alloc, receiver)
        await leg.open(loop, lambda d, a, i=i: got.setdefault(i, []).append(d), lambda d, a: None)
        legs.append(leg)
    assert len(receiver) == 3
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.sendto(b"a0", ("127.0.0.1", legs[0].port))
        for k in range(2):
            peer.sendto(b"b%d" % k, ("127.0.0.1", legs[1].port))
        flood = rt.BatchReceiver.MAX_ROUNDS + 5
        for k in range(flood):
            peer.sendto(b"c%d" % k, ("127.0.0.1", legs[2].port))
        await asyncio.sleep(0.05)          # the event loop runs, yet reads nothing: not registered
        assert got == {}
        assert receiver.drain() == 1 + 2 + rt.BatchReceiver.MAX_ROUNDS
        assert got[0] == [b"a0"] and got[1] == [b"b0", b"b1"]
        assert got[2] == [b"c%d" % k for k in range(rt.BatchReceiver.MAX_ROUNDS)]
        assert receiver.drain() == 5       # the rest of the flood, next tick
        assert receiver.drain() == 0
    legs[1].close()
    assert len(receiver) == 2
    for leg in (legs[0], legs[2]):
        leg.close()
    assert len(receiver) == 0
    receiver.close()


class _Session:
    """Stands in for RtpSession: records what the port feeds it, builds trivial packets."""

    def __init__(self, remote: tuple[str, int] | None) -> None:
        self.remote_addr = remote
        self.received: list[bytes] = []
        self.jitter = self           # the port pops the session's jitter buffer directly
        self._rx_lane = None         # in no receive lane (bridge/rtp/lanes.py)

    def receive(self, data: bytes, addr: Any, now: float) -> list[Any]:
        self.received.append(data)
        return []

    def pop(self) -> Any:
        return self.received[-1] if self.received else None

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        return b"H" + payload


async def test_leg_port_reads_before_the_tick_and_sends_after_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The room's tick touches no socket: ``receive`` reads one datagram per leg before it,
    ``packetize`` only queues, ``transmit`` sends after it, ``drain`` reads the rest."""
    monkeypatch.setattr(rt, "RECV_MODE", "tick")
    loop = asyncio.get_running_loop()
    lo, hi = _free_range()
    receiver = rt.BatchReceiver()
    sockets = rt.LegSockets(rt.PortAllocator("127.0.0.1", lo, hi), receiver)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(2)
        session = _Session(peer.getsockname())
        port_no = await sockets.open(loop, lambda d, a: session.receive(d, a, 0.0), lambda d, a: None)
        port = rt.LegPort(session, sockets)
        peer.sendto(b"one", ("127.0.0.1", port_no))
        peer.sendto(b"two", ("127.0.0.1", port_no))
        await asyncio.sleep(0.02)
        assert port.pop_frame() is None            # popping reads nothing
        assert receiver.receive() == 1
        assert port.pop_frame() == b"one"          # exactly one datagram read before the tick
        assert receiver.drain() == 1 and session.received == [b"one", b"two"]
        assert port.packetize(b"audio", 160) == b"Haudio"
        with pytest.raises(TimeoutError):          # queued, not sent, in the tick
            peer.settimeout(0.05)
            peer.recvfrom(100)
        assert receiver.transmit() == 1
        peer.settimeout(2)
        assert peer.recvfrom(100) == (b"Haudio", ("127.0.0.1", port_no))
        session.remote_addr = ("0.0.0.0", 9)       # c=0.0.0.0 hold: built, not sent
        assert port.packetize(b"held", 160) == b"Hheld"
        assert receiver.transmit() == 0
        sockets.close()
        assert port.packetize(b"after close", 160) == b"Hafter close"   # dropped, no error
        receiver.transmit()
        with pytest.raises(TimeoutError):
            peer.settimeout(0.05)
            peer.recvfrom(100)
    receiver.close()


async def test_held_sockets_are_read_ahead_for_the_lane_and_handed_back_when_it_lets_go(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt, "RECV_MODE", "tick")
    loop = asyncio.get_running_loop()
    lo, hi = _free_range()
    receiver = rt.BatchReceiver()
    sockets = rt.LegSockets(rt.PortAllocator("127.0.0.1", lo, hi), receiver)
    got: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        port_no = await sockets.open(loop, lambda d, a: got.append(d), lambda d, a: None)
        reader = sockets.batched
        assert reader is not None
        reader.held = True                        # what RxLane.acquire does
        for data in (b"one", b"two", b"three"):
            peer.sendto(data, ("127.0.0.1", port_no))
        await asyncio.sleep(0.02)
        assert receiver.receive() == 2            # two a tick for a lane, none delivered
        assert got == [] and reader.ready
        buf = bytearray(16)
        assert reader.recvfrom_into(buf)[0] == 3 and bytes(buf[:3]) == b"one"   # the lane's read
        assert receiver.transmit() == 0 and got == []      # still held: kept for the lane
        reader.held = False                       # RxLane.release
        receiver.transmit()
        assert got == [b"two"]                    # handed to the session, in order
        assert receiver.drain() == 1 and got == [b"two", b"three"]
        sockets.close()
    receiver.close()
