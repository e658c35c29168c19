"""Free loopback ports for end-to-end peers.

Several test processes (and other developers' test runs) share this machine, so a
port is only handed out after a bind test on both UDP and TCP, and blocks are picked
at random below the kernel's ephemeral range (32768+) where the OS itself never
hands out ports to ``bind(0)`` callers.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from dataclasses import dataclass

HOST = "127.0.0.1"
_LOW, _HIGH = 20000, 32000  # below Linux's default ip_local_port_range
KEEP = 16                   # newest blocks never recycled (a cluster test takes about a dozen)


def worker_range(low: int = _LOW, high: int = _HIGH) -> tuple[int, int]:
    """This pytest-xdist worker's share of ``low..high`` (the whole of it outside xdist).
    Workers are separate processes with allocators of their own: disjoint shares keep one
    worker's bridge from binding a port another worker just bind-tested and handed out."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count <= 1:
        return low, high
    index = int(worker[2:]) % count
    share = (high - low) // count
    return low + index * share, low + (index + 1) * share


def _bindable(port: int, kind: socket.SocketKind) -> bool:
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            # Match what servers do (SO_REUSEADDR), so TIME_WAIT leftovers do not
            # make a port look busy; a live listener still fails the bind.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def port_is_free(port: int) -> bool:
    """True when ``port`` can be bound on 127.0.0.1 for both UDP and TCP."""
    return _bindable(port, socket.SOCK_DGRAM) and _bindable(port, socket.SOCK_STREAM)


def _ephemeral(kind: socket.SocketKind) -> int:
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port
    finally:
        sock.close()


def free_udp_port() -> int:
    """A UDP port the OS just proved free (racy by nature; prefer PortAllocator)."""
    return _ephemeral(socket.SOCK_DGRAM)


def free_tcp_port() -> int:
    """A TCP port the OS just proved free (racy by nature; prefer PortAllocator)."""
    return _ephemeral(socket.SOCK_STREAM)


@dataclass(frozen=True)
class BaresipPorts:
    """Ports one baresip instance needs.

    baresip binds ``sip`` (UDP+TCP) and ``sip + 1`` (TLS); RTP/RTCP pairs come from
    ``rtp_lo..rtp_hi``; ``ctrl`` is the ctrl_tcp JSON socket.
    """

    sip: int
    ctrl: int
    rtp_lo: int
    rtp_hi: int


@dataclass(frozen=True)
class SippPorts:
    """SIP signalling port (``-p``) and media port (``-mp``; SIPp also uses mp+2)."""

    sip: int
    media: int


class PortAllocator:
    """Hands out non-overlapping, bind-tested contiguous port blocks.

    One allocator per test (or per session): ports it handed out are not handed out
    again while the range has others, so a late packet cannot reach the next peer. A
    whole-suite run takes more ports than the range holds (every bridge takes a block
    of 40), so when no block is left the oldest half of the handed-out ports, from tests
    long finished, become available again (still bind-tested first).
    """

    def __init__(self, low: int | None = None, high: int | None = None, seed: int | None = None) -> None:
        if low is None or high is None:
            low, high = worker_range()
        if high - low < 64:
            raise ValueError("port range too small")
        self._low, self._high = low, high
        self._rng = random.Random(seed)
        self._taken: set[int] = set()
        self._order: list[range] = []      # blocks in the order handed out (for recycling)
        self._lock = threading.Lock()

    def block(self, size: int, *, attempts: int = 200) -> int:
        """Reserve ``size`` contiguous free ports; returns the first one."""
        if size < 1:
            raise ValueError("size must be >= 1")
        with self._lock:
            for _ in range(attempts):
                # Even base: RTP conventionally sits on even ports, RTCP on odd.
                base = self._rng.randrange(self._low, self._high - size) & ~1
                if self._try(base, size):
                    return base
            # Random picks fragment the range: look at every base before recycling the oldest
            # half; a large block in a worker's share of the range may need more halves, down to
            # the newest KEEP blocks (the running test's).
            recycled = 0
            while True:
                for base in range(self._low & ~1, self._high - size, 2):
                    if self._try(base, size):
                        return base
                if not self._order or (recycled and len(self._order) <= KEEP):
                    break
                self._recycle_oldest_half()
                recycled += 1
        raise RuntimeError(f"no block of {size} free ports in {self._low}-{self._high}")

    def _try(self, base: int, size: int) -> bool:
        ports = range(base, base + size)
        if any(p in self._taken for p in ports) or not all(port_is_free(p) for p in ports):
            return False
        self._taken.update(ports)
        self._order.append(ports)
        return True

    def _recycle_oldest_half(self) -> None:
        half = max(1, len(self._order) // 2)
        for ports in self._order[:half]:
            self._taken.difference_update(ports)
        del self._order[:half]

    def port(self) -> int:
        return self.block(1)

    def baresip(self, rtp_ports: int = 10) -> BaresipPorts:
        # Layout: sip, sip+1 (TLS), ctrl, spare, then the RTP range.
        base = self.block(4 + rtp_ports)
        return BaresipPorts(sip=base, ctrl=base + 2, rtp_lo=base + 4, rtp_hi=base + 4 + rtp_ports - 1)

    def sipp(self) -> SippPorts:
        # SIPp binds -mp (RTP), mp+1 (RTCP), mp+2 and mp+3 (video pair).
        base = self.block(6)
        return SippPorts(sip=base, media=base + 2)

    @property
    def taken(self) -> frozenset[int]:
        return frozenset(self._taken)
