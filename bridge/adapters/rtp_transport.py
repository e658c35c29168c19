"""asyncio adapter for one leg's RTP and RTCP sockets.

Each leg gets an even RTP port and the odd port above it for RTCP (RFC 3550
§11), taken from the configured range. Received datagrams go straight into the
leg's sans-IO ``RtpSession``; DTMF events it reports go to a callback.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from typing import Any

log = logging.getLogger("bridge.rtp")

# The selector transport allocates max_size bytes for every recvfrom(); the
# default is 256 KiB. An RTP packet of ours is at most a few hundred bytes, and
# 2 KiB covers any sane MTU-sized packet (see benchmarks/bench_media_path.py).
RTP_MAX_DATAGRAM = 2048


class PortRangeExhausted(Exception):
    pass


class PortAllocator:
    """Hands out even RTP ports (RTCP = port + 1) from a configured range."""

    def __init__(self, host: str, lo: int, hi: int) -> None:
        self.host = host
        self.lo = lo + (lo % 2)
        self.hi = hi
        self.in_use: set[int] = set()

    def bind_pair(self) -> tuple[socket.socket, socket.socket, int]:
        candidates = list(range(self.lo, self.hi, 2))
        start = random.randrange(len(candidates)) if candidates else 0
        for i in range(len(candidates)):
            port = candidates[(start + i) % len(candidates)]
            if port in self.in_use:
                continue
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtp.bind((self.host, port))
                rtcp.bind((self.host, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            self.in_use.add(port)
            return rtp, rtcp, port
        raise PortRangeExhausted(f"no free RTP port pair in {self.lo}-{self.hi}")

    def release(self, port: int) -> None:
        self.in_use.discard(port)


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[Any, ...]], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: the inactivity timer ends the leg.
        pass


class LegSockets:
    """The RTP/RTCP socket pair of one leg."""

    def __init__(self, allocator: PortAllocator) -> None:
        self.allocator = allocator
        self.port = 0
        self.rtp: asyncio.DatagramTransport | None = None
        self.rtcp: asyncio.DatagramTransport | None = None

    async def open(
        self,
        loop: asyncio.AbstractEventLoop,
        on_rtp: Callable[[bytes, tuple[Any, ...]], None],
        on_rtcp: Callable[[bytes, tuple[Any, ...]], None],
    ) -> int:
        rtp_sock, rtcp_sock, self.port = self.allocator.bind_pair()
        self.rtp, _ = await loop.create_datagram_endpoint(lambda: _Proto(on_rtp), sock=rtp_sock)
        self.rtcp, _ = await loop.create_datagram_endpoint(lambda: _Proto(on_rtcp), sock=rtcp_sock)
        for transport in (self.rtp, self.rtcp):
            if hasattr(transport, "max_size"):
                transport.max_size = RTP_MAX_DATAGRAM
        return self.port

    def send_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.rtp is not None:
            self.rtp.sendto(data, addr)

    def send_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.rtcp is not None:
            self.rtcp.sendto(data, addr)

    def close(self) -> None:
        for transport in (self.rtp, self.rtcp):
            if transport is not None:
                transport.close()
        self.rtp = self.rtcp = None
        if self.port:
            self.allocator.release(self.port)
            self.port = 0
