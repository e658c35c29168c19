"""Room.tick does no IO (issue 16, must-show 3): a room of G.711 (or Opus) legs on the socket adapter's
ports, read and sent through the steady lanes, ticks while every socket call and the epoll
set raise. The adapter reads before the tick (``BatchReceiver.receive``) and sends what the
tick queued after it (``transmit``); the callers still hear the talker and not themselves."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import numpy as np
import pytest
from bridge_codecs import make_decoder, make_encoder

from bridge.adapters import rtp_transport as rt
from bridge.media.room import Room
from bridge.rtp.lanes import RxLane
from bridge.rtp.session import RtpSession

LEGS = 6
TONE = 700.0


class _Tripwire:
    armed = False
    calls: list[str] = []       # the room contains a failing port: record, not only raise

    @classmethod
    def check(cls, what: str) -> None:
        if cls.armed:
            cls.calls.append(what)
            raise AssertionError(f"{what} called inside Room.tick")


class _GuardedSocket(socket.socket):
    """A real UDP socket whose every IO method fails while the tripwire is armed."""

    def recvfrom(self, *args: Any) -> Any:
        _Tripwire.check("recvfrom")
        return super().recvfrom(*args)

    def recvfrom_into(self, *args: Any) -> Any:
        _Tripwire.check("recvfrom_into")
        return super().recvfrom_into(*args)

    def recv(self, *args: Any) -> Any:
        _Tripwire.check("recv")
        return super().recv(*args)

    def recv_into(self, *args: Any) -> Any:
        _Tripwire.check("recv_into")
        return super().recv_into(*args)

    def sendto(self, *args: Any) -> Any:
        _Tripwire.check("sendto")
        return super().sendto(*args)

    def send(self, *args: Any) -> Any:
        _Tripwire.check("send")
        return super().send(*args)


class _GuardedEpoll:
    def __init__(self, epoll: Any) -> None:
        self._epoll = epoll

    def __getattr__(self, name: str) -> Any:
        _Tripwire.check(f"epoll.{name}")
        return getattr(self._epoll, name)


class _GuardedAllocator(rt.PortAllocator):
    socket_class = _GuardedSocket


def _free_range() -> tuple[int, int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    lo = port & ~1
    return lo, lo + 4 * LEGS


def _tone_ratio(pcm: np.ndarray, rate: int = 8000) -> float:
    """Energy at TONE over total energy (Goertzel)."""
    x = pcm.astype(np.float64)
    n = np.arange(x.size)
    ref = np.exp(-2j * np.pi * TONE * n / rate)
    at = abs(np.dot(x, ref)) ** 2 * 2 / x.size
    total = float(np.dot(x, x)) + 1e-9
    return float(at / total)


@pytest.mark.parametrize(("rate", "codec"), [(8000, "PCMU"), (16000, "PCMU"), (48000, "opus")])
async def test_room_tick_touches_no_socket_with_lanes(monkeypatch: pytest.MonkeyPatch, rate: int,
                                                      codec: str) -> None:
    monkeypatch.setattr(rt, "RECV_MODE", "tick")
    monkeypatch.setattr(rt, "LANES", True)
    loop = asyncio.get_running_loop()
    lo, hi = _free_range()
    receiver = rt.BatchReceiver()
    receiver._epoll = _GuardedEpoll(receiver._epoll)  # type: ignore[assignment]
    alloc = _GuardedAllocator("127.0.0.1", lo, hi)
    room = Room("honest", rate, max_talkers=3)
    pt, clock = (111, 48000) if codec == "opus" else (0, 8000)
    frame = clock // 50
    enc = make_encoder(codec)
    quiet_enc = make_encoder(codec)
    peers: list[socket.socket] = []
    ports: list[int] = []
    legsockets: list[rt.LegSockets] = []
    heard: list[list[bytes]] = [[] for _ in range(LEGS)]
    t = np.arange(frame * 100) / clock
    tone = (8000 * np.sin(2 * np.pi * TONE * t)).astype(np.int16)
    quiet = np.zeros(frame, np.int16)
    try:
        for j in range(LEGS):
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer.bind(("127.0.0.1", 0))
            peer.setblocking(False)
            peers.append(peer)
            session = RtpSession(0x7000 + j, pt, clock, frame, 101, clock, peer.getsockname(),
                                 initial_seq=3, initial_ts=7, loss_depth=codec == "opus")
            sockets = rt.LegSockets(alloc, receiver)
            legsockets.append(sockets)
            ports.append(sockets.bind(loop, lambda d, a, s=session: s.receive(d, a, loop.time()),
                                      lambda d, a: None))
            room.add_leg(f"l{j}", rt.LegPort(session, sockets), codec, codec, payload_type=pt)
        in_rx_lane = in_tx_lane = 0
        for tick in range(60):
            # Opus: the listeners' frames (digital silence) are marked inactive: they sleep.
            silent = quiet_enc.encode(quiet)
            for j, peer in enumerate(peers):
                payload = enc.encode(tone[tick * frame:(tick + 1) * frame]) if j == 0 else silent
                peer.sendto(struct.pack("!BBHII", 0x80, pt, 100 + tick, 1000 + frame * tick, 0x900 + j)
                            + payload, ("127.0.0.1", ports[j]))
            receiver.receive()              # loopback: the datagrams are queued by now
            _Tripwire.armed = True
            try:
                room.tick(loop.time())
            finally:
                _Tripwire.armed = False
            assert _Tripwire.calls == [], (tick, _Tripwire.calls)
            in_rx_lane += sum(int(g.lane.member.sum()) for g in [*room._bulk, *room._opus]
                              if isinstance(g.lane, RxLane))
            in_tx_lane += sum(len(g.legs) for g in room._common if g.lane is not None)
            receiver.transmit()
            receiver.drain()
            for j, peer in enumerate(peers):
                for _ in range(8):
                    try:
                        heard[j].append(peer.recv(2048))
                    except BlockingIOError:
                        break
        assert in_rx_lane > LEGS * 30, in_rx_lane          # the receive lane read most frames
        assert in_tx_lane > 0                               # and a send lane built packets
        for j in range(LEGS):
            assert len(heard[j]) >= 50, (j, len(heard[j]))  # one packet per tick came back
        listener, talker = make_decoder(codec), make_decoder(codec)
        late = [listener.decode(p[12:]) for p in heard[1]][-30:]
        own = [talker.decode(p[12:]) for p in heard[0]][-30:]
        rate_heard = 48000 if codec == "opus" else 8000
        assert _tone_ratio(np.concatenate(late), rate_heard) > 0.5    # a listener hears the talker
        assert _tone_ratio(np.concatenate(own), rate_heard) < 0.05    # the talker does not hear itself
        _Tripwire.armed = True                              # the tripwire itself trips
        with pytest.raises(AssertionError):
            legsockets[0].send_rtp(b"x", ("127.0.0.1", 9))
        _Tripwire.armed = False
        assert _Tripwire.calls == ["sendto"]
    finally:
        _Tripwire.armed = False
        _Tripwire.calls.clear()
        for sockets in legsockets:
            sockets.close()
        for peer in peers:
            peer.close()
        receiver.close()
