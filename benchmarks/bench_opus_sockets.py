"""A room's tick with the socket adapter around it, in process: bench_opus_rooms.py --sockets.

Every leg gets a loopback RTP socket pair from ``LegSockets`` in one ``BatchReceiver`` (the
bridge's default ``tick`` receive mode, no IO worker) and a ``LegPort``; one peer socket sends all
callers' datagrams outside the timed region and reads back (and drops) what the bridge sent. The
timed region is one media clock tick: ``receive`` (epoll, reads), ``Room.tick``, ``transmit``
(sends), ``drain``. CPU time of this thread, median over ticks."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
import time
from typing import Any

import numpy as np

from bridge.adapters import rtp_transport as rt
from bridge.config import Config
from bridge.media.room import Room
from bridge.rtp.session import RtpSession

PT, DTMF_PT = 111, 101
_HEADER = struct.Struct("!BBHII").pack


def _free_range(pairs: int) -> tuple[int, int]:
    """A port range of ``pairs`` even/odd pairs that was free a moment ago (loopback)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            lo = int(s.getsockname()[1]) & ~1
        hi = lo + 2 * pairs + 20
        if hi < 65000:
            return lo, hi
    raise RuntimeError("no port range")


LANE_MODES = ("on", "no-opus-rx", "off")   # all lanes; no Opus receive lanes (before them); none


def _no_lane(ports: Any) -> None:
    return None


def sockets_tick_ms(room: Room, voices: list[list[bytes]], noise: list[bytes], n: int, talkers: int | None,
                    ticks: int, opts: dict[str, Any], lanes: str) -> float:
    saved = rt.RECV_MODE, rt.LANES, rt.LegPort.__dict__["opus_rx_lane"]
    rt.RECV_MODE, rt.LANES = "tick", lanes != "off"
    if lanes == "no-opus-rx":
        rt.LegPort.opus_rx_lane = staticmethod(_no_lane)  # type: ignore[method-assign, assignment]
    loop = asyncio.new_event_loop()
    receiver = rt.BatchReceiver()
    lo, hi = _free_range(n)
    alloc = rt.PortAllocator("127.0.0.1", lo, hi)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    here = peer.getsockname()
    rtp = Config().rtp
    legs: list[tuple[rt.LegSockets, list[bytes], tuple[str, int]]] = []
    try:
        for i in range(n):
            session = RtpSession(0x9000 + i, PT, 48000, 960, DTMF_PT, 48000, here,
                                 jitter_min_ms=rtp.jitter_min_ms, jitter_max_ms=rtp.jitter_max_ms,
                                 loss_depth=True)
            session.confirmed = True
            sockets = rt.LegSockets(alloc, receiver)
            port = sockets.bind(loop, lambda d, a, s=session: s.receive(d, a, loop.time()), lambda d, a: None)
            talks = talkers is None or i < talkers
            legs.append((sockets, voices[i % len(voices)] if talks else noise, ("127.0.0.1", port)))
            room.add_leg(f"leg{i}", rt.LegPort(session, sockets), "opus", "opus", payload_type=PT,
                         encoder_opts=opts)
        sendto, recv = peer.sendto, peer.recv
        seq = 0

        def feed() -> None:
            for i, (_, stream, addr) in enumerate(legs):
                payload = stream[seq % len(stream)]
                sendto(_HEADER(0x80, PT, seq & 0xFFFF, seq * 960, 0x1000 + i) + payload, addr)

        def empty() -> None:
            for _ in range(8 * n):
                try:
                    recv(2048)
                except BlockingIOError:
                    return

        times = []
        gc.collect()
        gc.freeze()
        for k in range(ticks + 6):
            feed()
            seq += 1
            time.sleep(0.0005)       # loopback delivery is immediate; leave no doubt
            now = loop.time()
            t0 = time.thread_time()  # CPU time: the 2-core machine is shared, wall time is noisy
            receiver.receive()
            room.tick(now)
            receiver.transmit()
            receiver.drain()
            if k >= 6:
                times.append(time.thread_time() - t0)
            empty()
        gc.unfreeze()
        return float(np.median(times[10:])) * 1000
    finally:
        for sockets, _, _ in legs:
            sockets.close()
        receiver.close()
        peer.close()
        loop.close()
        rt.RECV_MODE, rt.LANES, rt.LegPort.opus_rx_lane = saved  # type: ignore[method-assign]
