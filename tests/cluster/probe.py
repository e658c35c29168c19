"""An RTP sink that times every packet the bridge sends to one caller.

SIPp places the call (tests/cluster/scenarios/probe_call.xml) and puts this socket's port in its
SDP, so the room's audio for that caller arrives here; ``largest_gap`` is the longest silence on the
wire (RTP inter-arrival), which is what a caller would hear as a dropout. The bridge sends a leg
nothing until it has heard from it (it learns the caller's real address from the first packet), so
``send_to`` also sends the caller's side: PCMU silence every 20 ms, as a muted phone would.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from tests.e2e.peers.ports import HOST


@dataclass
class RtpProbe:
    port: int
    arrivals: list[tuple[float, int]] = field(default_factory=list)   # (monotonic time, sequence number)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> RtpProbe:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, self.port))
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, name=f"rtp-probe-{self.port}", daemon=True)
        self._thread.start()
        return self

    def send_to(self, port: int) -> None:
        """Start sending 20 ms PCMU silence packets from this socket to 127.0.0.1:``port``."""
        threading.Thread(target=self._send, args=(port,), name=f"rtp-probe-tx-{self.port}", daemon=True).start()

    def _send(self, port: int) -> None:
        assert self._sock is not None
        seq, ts, ssrc = 1, 0, 0x7E57_0001
        next_at = time.monotonic()
        while not self._stop.is_set():
            packet = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + b"\xff" * 160
            try:
                self._sock.sendto(packet, (HOST, port))
            except OSError:
                return
            seq, ts = seq + 1, ts + 160
            next_at += 0.02
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data = self._sock.recv(2048)
            except OSError:
                continue
            if len(data) >= 12 and data[0] >> 6 == 2:
                self.arrivals.append((time.monotonic(), struct.unpack_from("!H", data, 2)[0]))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._sock is not None:
            self._sock.close()

    def largest_gap(self, start: float, end: float) -> float:
        """Longest time without a packet between monotonic ``start`` and ``end`` (seconds)."""
        times = [start] + [t for t, _ in self.arrivals if start <= t <= end] + [end]
        return max(b - a for a, b in itertools.pairwise(times))

    def count(self, start: float, end: float) -> int:
        return sum(1 for t, _ in self.arrivals if start <= t <= end)
