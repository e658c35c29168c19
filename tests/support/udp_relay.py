"""A lossy UDP relay between a browser and the bridge's aiortc, for packet loss that is real.

The test rewrites the signalling so that each side sees only the relay: the browser's offer
keeps one host candidate, pointed at ``bridge_side`` (the relay's socket that talks to aiortc),
and the bridge's answer keeps one host candidate, pointed at ``browser_side``. Everything
(STUN, DTLS, SRTCP) crosses both ways; only SRTP datagrams are dropped, by their index in
their direction's RTP stream against a seeded pattern, so a run loses the same packets
whatever the timing. RFC 7983 demultiplexing: a first byte of 128-191 is RTP or RTCP,
and a second byte of 192-223 is RTCP (RFC 5761).
"""

from __future__ import annotations

import random
import re
import selectors
import socket
import threading
from collections.abc import Callable

Address = tuple[str, int]


def loss_pattern(seed: int, count: int, share: float, bursts: int, burst_len: int = 3,
                 start: int = 0) -> set[int]:
    """Indices (from ``start``) of ``count`` packets to drop: ``share`` of them at random plus
    ``bursts`` runs of ``burst_len`` consecutive packets, spread over the stream."""
    rng = random.Random(seed)
    lost = {start + i for i in range(count) if rng.random() < share}
    for k in range(bursts):
        first = start + (k + 1) * count // (bursts + 1)
        lost.update(range(first, first + burst_len))
    return lost


def is_rtp(datagram: bytes) -> bool:
    return len(datagram) >= 12 and 128 <= datagram[0] <= 191 and not 192 <= datagram[1] <= 223


class LossyRelay:
    """Two loopback sockets and a thread; ``drop_up(i)`` / ``drop_down(i)`` say whether the
    i-th RTP datagram from / to the browser is lost."""

    def __init__(self, ports: tuple[int, int], drop_up: Callable[[int], bool] = lambda i: False,
                 drop_down: Callable[[int], bool] = lambda i: False) -> None:
        self.browser_side = self._socket(ports[0])
        self.bridge_side = self._socket(ports[1])
        self.browser: Address | None = None     # the browser's one candidate (from its offer)
        self.bridge: Address | None = None      # aiortc's one candidate (from its answer)
        self.drop_up, self.drop_down = drop_up, drop_down
        self.rtp_up = self.dropped_up = 0        # the browser's RTP datagrams seen, dropped
        self.rtp_down = self.dropped_down = 0    # the same for the bridge's to the browser
        self.forwarded = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lossy-relay", daemon=True)

    @staticmethod
    def _socket(port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        s.setblocking(False)
        return s

    def address(self, side: socket.socket) -> Address:
        host, port = side.getsockname()
        return str(host), int(port)

    def start(self) -> LossyRelay:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.browser_side.close()
        self.bridge_side.close()

    def __enter__(self) -> LossyRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.browser_side, selectors.EVENT_READ)
        sel.register(self.bridge_side, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.1):
                    for _ in range(64):          # drain, bounded: the other socket gets its turn
                        try:
                            data, src = key.fileobj.recvfrom(65535)  # type: ignore[union-attr]
                        except BlockingIOError:
                            break
                        self._forward(key.fileobj is self.browser_side, data, src)
        finally:
            sel.close()

    def _forward(self, from_browser: bool, data: bytes, src: Address) -> None:
        if from_browser:
            if src != self.browser or self.bridge is None:
                return                           # another of the browser's sockets: no path
            if is_rtp(data):
                self.rtp_up += 1
                if self.drop_up(self.rtp_up - 1):
                    self.dropped_up += 1
                    return
            self.bridge_side.sendto(data, self.bridge)
        else:
            if src != self.bridge or self.browser is None:
                return
            if is_rtp(data):
                self.rtp_down += 1
                if self.drop_down(self.rtp_down - 1):
                    self.dropped_down += 1
                    return
            self.browser_side.sendto(data, self.browser)
        self.forwarded += 1

    # -- signalling rewrites ------------------------------------------------------------------
    def route_offer(self, sdp: str) -> str:
        """Keep the browser's first UDP IPv4 host candidate (remembered as its address) and show
        the bridge the relay's ``bridge_side`` in its place."""
        self.browser, sdp = _one_candidate(sdp, self.address(self.bridge_side))
        return sdp

    def route_answer(self, sdp: str) -> str:
        self.bridge, sdp = _one_candidate(sdp, self.address(self.browser_side))
        return sdp


_CANDIDATE = re.compile(r"^a=candidate:(\S+) (\d+) (\S+) (\d+) (\S+) (\d+) typ (\S+)(.*)$")


def _one_candidate(sdp: str, shown: Address) -> tuple[Address, str]:
    lines = sdp.split("\r\n")
    kept: Address | None = None
    out: list[str] = []
    for line in lines:
        m = _CANDIDATE.match(line)
        if m is None:
            out.append(line)
            continue
        host = m.group(5)
        if (kept is None and m.group(2) == "1" and m.group(3).lower() == "udp" and m.group(7) == "host"
                and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", host)):
            kept = (host, int(m.group(6)))
            out.append(f"a=candidate:{m.group(1)} 1 udp {m.group(4)} {shown[0]} {shown[1]} typ host")
    if kept is None:
        raise AssertionError(f"no UDP IPv4 host candidate to relay in:\n{sdp}")
    return kept, "\r\n".join(out)
