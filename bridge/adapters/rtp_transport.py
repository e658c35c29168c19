"""asyncio adapter for one leg's RTP and RTCP sockets.

Each leg gets an even RTP port and the odd port above it for RTCP (RFC 3550
§11), taken from the configured range. Received datagrams go straight to the
callbacks given to ``LegSockets.open`` (the leg's sans-IO ``RtpSession``).

Receive path (chosen by benchmarks/bench_media_path.py, see the README table):
the default ``tick`` mode keeps RTP sockets out of the event loop altogether.
They sit in one ``BatchReceiver`` (its own epoll set). Before each 20 ms media tick
one ``epoll_wait`` finds every socket with audio queued and one datagram is read from
each (``receive``); the rooms then tick without touching a socket, queueing what they
send in the receiver's ``Outbox``, which ``transmit`` sends right after; what arrived
meanwhile is drained last. The process is not woken 50 times a second per caller, and
no event-loop callback runs per datagram. A packet waits at most one tick in the
kernel, which costs no delay: the mixer would not have read it before that tick
anyway. Its arrival time is the tick's time, so jitter is measured at the 20 ms
resolution the playout actually has. RTCP (a packet every few seconds) stays on
``loop.add_reader``. Sockets of legs in a receive lane (bridge/rtp/lanes.py) are
*held*: their datagrams (up to two a tick) are read ahead into the leg's
``SocketReader`` queue, which the lane copies into its rows and checks in numpy.

Sending calls ``sock.sendto`` directly: a datagram that does not fit in the
kernel buffer (EAGAIN) is dropped, as RTP should be, instead of being queued in
Python behind newer audio.

``TUTTI_RTP_RECV`` (benchmarks only) selects another receive path: ``reader``
(``loop.add_reader``, one ``recvfrom`` per readiness callback; the default before
``tick``), ``drain`` (add_reader, reading until EAGAIN), ``asyncio``
(DatagramProtocol with max_size 2 KiB), ``asyncio-256k`` (stock max_size).
``TUTTI_RTP_SEND=transport`` sends through the asyncio transport (only with the
asyncio receive modes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import select
import socket
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bridge.rtp.lanes import G711_LANE, NOWHERE, OPUS_LANE, LaneShape, RxLane, SendGroup, TxLane, deliver
from bridge.rtp.srtp import SrtpContext, SrtpKeys

log = logging.getLogger("bridge.rtp")

# Largest datagram we read. An RTP packet of ours is at most a few hundred
# bytes; 2 KiB covers any MTU-sized packet. (The stock selector transport
# allocates max_size = 256 KiB for every recvfrom.)
RTP_MAX_DATAGRAM = 2048

RECV_MODES = ("tick", "reader", "drain", "asyncio", "asyncio-256k")
RECV_MODE = os.environ.get("TUTTI_RTP_RECV", "tick")
SEND_MODE = os.environ.get("TUTTI_RTP_SEND", "sock")
# Steady lanes (bridge/rtp/lanes.py) on by default; TUTTI_RTP_LANES=0 for comparisons.
LANES = os.environ.get("TUTTI_RTP_LANES", "1") != "0"
if RECV_MODE not in RECV_MODES:
    raise ValueError(f"TUTTI_RTP_RECV must be one of {RECV_MODES}, not {RECV_MODE!r}")

Callback = Callable[[bytes, tuple[Any, ...]], None]
Sendto = Callable[[bytes, tuple[str, int]], Any]


class PortRangeExhausted(Exception):
    pass


class PortAllocator:
    """Hands out even RTP ports (RTCP = port + 1) from a configured range."""

    # The sockets it binds; tests/unit/test_honest_tick.py gives one that fails any IO in a tick.
    socket_class: type[socket.socket] = socket.socket

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
            rtp = self.socket_class(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp = self.socket_class(socket.AF_INET, socket.SOCK_DGRAM)
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


def _drainer(sock: socket.socket, on_datagram: Callback) -> Callable[[], None]:
    """Readiness callback reading until EAGAIN (one extra syscall per wake-up)."""
    recvfrom = sock.recvfrom

    def readable() -> None:
        while True:
            try:
                data, addr = recvfrom(RTP_MAX_DATAGRAM)
            except OSError:
                return
            on_datagram(data, addr)

    return readable


class SocketReader:
    """Hands one datagram from a socket to a callback per ``read``. As a plain readiness
    callback (``_reader``) ``ready`` goes unused (level-triggered epoll reports a socket
    again while more is queued); for a lane it says a datagram is queued here.

    For a receive lane (``held``) the adapter reads ahead instead: ``prefetch`` before the
    rooms' tick queues the datagram here, and the lane takes it with ``recvfrom_into``,
    which copies from that queue and never touches the socket (the tick does no IO)."""

    __slots__ = ("recvfrom", "on_datagram", "ready", "held", "queue")

    def __init__(self, sock: socket.socket, on_datagram: Callback) -> None:
        self.recvfrom = sock.recvfrom
        self.on_datagram = on_datagram
        self.ready = False
        self.held = False       # a receive lane takes this leg's datagrams in its tick (lanes.py)
        self.queue: deque[tuple[bytes, Any]] = deque()     # read ahead for the lane

    def read(self) -> None:
        self.ready = False
        try:
            data, addr = self.recvfrom(RTP_MAX_DATAGRAM)
        except OSError:  # EAGAIN (spurious wake-up) or an ICMP error queued on the socket
            return
        self.on_datagram(data, addr)

    def prefetch(self) -> None:
        """Before the tick: one datagram from the socket into the lane's queue."""
        try:
            self.queue.append(self.recvfrom(RTP_MAX_DATAGRAM))
        except OSError:
            pass
        self.ready = bool(self.queue)

    def recvfrom_into(self, buf: Any) -> tuple[int, Any]:
        """The lane's read (LaneReader): the oldest datagram read ahead, copied into ``buf``."""
        data, addr = self.queue.popleft()
        size = len(data)
        if size <= len(buf):
            buf[:size] = data
        else:
            size = len(buf)
            buf[:size] = data[:size]
        self.ready = bool(self.queue)
        return size, addr

    def hand_back(self) -> None:
        """After the tick: what was read ahead for a leg that left its lane goes the general way."""
        queue = self.queue
        while queue:
            self.on_datagram(*queue.popleft())
        self.ready = False


class Outbox:
    """What the rooms' tick sends, transmitted by the adapter after it: per-leg packets
    and send groups (one payload for many legs, headers built by a send lane)."""

    __slots__ = ("packets", "groups")

    def __init__(self) -> None:
        self.packets: list[tuple[Callable[[bytes, tuple[str, int]], Any], bytes, tuple[str, int]]] = []
        self.groups: list[SendGroup] = []

    def flush(self) -> int:
        packets, groups = self.packets, self.groups
        sent = len(packets)
        for sendto, data, addr in packets:
            try:
                sendto(data, addr)
            except OSError:   # kernel buffer full, the peer's ICMP error, or closed: RTP drops
                pass
        packets.clear()
        for group in groups:
            sent += deliver(group)
        groups.clear()
        return sent


def _reader(sock: socket.socket, on_datagram: Callback) -> Callable[[], None]:
    """Readiness callback for ``loop.add_reader``: one datagram per call."""
    return SocketReader(sock, on_datagram).read


class BatchReceiver:
    """RTP sockets read together, once per media tick, instead of one loop callback each.

    Before the rooms' tick, ``receive`` reads one datagram per socket with audio queued
    (one ``epoll_wait``): a leg in no receive lane gets it through its session's
    ``receive``, a leg in a lane (``held``) has it queued for the lane, plus a second one
    if already there (bursty senders; the lane puts it after its pop, as the jitter buffer
    would). The rooms then tick without touching a socket and queue what they send in
    ``outbox``; ``transmit`` sends it. ``drain`` then reads whatever is left (a second
    queued datagram), one datagram per ready socket per epoll round (level-triggered: a
    socket with more queued is reported again). Rounds are bounded, so a flooded socket
    costs at most ``MAX_ROUNDS`` reads per tick and the kernel drops the rest once its
    buffer is full.
    """

    MAX_ROUNDS = 8   # 8 datagrams per socket per 20 ms tick: 2.5 ms ptime still keeps up

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._sockets: dict[int, SocketReader] = {}
        self._ahead: list[SocketReader] = []      # lane readers with datagrams read ahead
        self.outbox = Outbox()

    def add(self, sock: socket.socket, on_datagram: Callback) -> SocketReader:
        return self.adopt(sock, SocketReader(sock, on_datagram))

    def adopt(self, sock: socket.socket, entry: SocketReader) -> SocketReader:
        """Read ``sock`` into an existing reader (a leg taken over from the IO worker)."""
        fd = sock.fileno()
        self._sockets[fd] = entry
        self._epoll.register(fd, select.EPOLLIN)
        return entry

    def sender(self, sock: socket.socket) -> Sendto:
        """The leg's RTP send function: the socket's own here, a buffer append with the worker."""
        return sock.sendto

    def remove(self, sock: socket.socket, on_removed: Callable[[], None] | None = None) -> None:
        """Stop reading ``sock``; ``on_removed`` once nothing else holds it (here: at once)."""
        fd = sock.fileno()
        entry = self._sockets.pop(fd, None)
        if entry is not None:
            entry.ready = False
            self._epoll.unregister(fd)
        if on_removed is not None:
            on_removed()

    def __len__(self) -> int:
        return len(self._sockets)

    def receive(self) -> int:
        """Before the rooms' tick: one datagram per socket with audio queued, two for a leg
        in a receive lane that already has both (see the class doc); returns how many."""
        sockets = self._sockets
        if not sockets:
            return 0
        capacity = len(sockets) + 1
        ahead = self._ahead
        total = 0
        for fd, _mask in self._epoll.poll(0, capacity):
            entry = sockets.get(fd)
            if entry is None:
                continue
            if not entry.held:
                entry.read()
            elif len(entry.queue) < 2:      # two a tick at most; the rest waits in the kernel
                if not entry.queue:         # else listed already (kept from the last tick)
                    ahead.append(entry)
                entry.prefetch()
            else:
                continue
            total += 1
        if ahead:
            for fd, _mask in self._epoll.poll(0, capacity):
                entry = sockets.get(fd)
                if entry is not None and entry.held and len(entry.queue) == 1:
                    entry.prefetch()
                    total += 1
        return total

    def transmit(self) -> int:
        """After the rooms' tick: send what they queued, then hand back what was read ahead
        for legs that left their lane meanwhile. Returns the number of datagrams sent."""
        sent = self.outbox.flush()
        if self._ahead:
            self._ahead = settle_ahead(self._ahead)
        return sent

    def drain(self) -> int:
        """Read what has arrived and was not pulled yet; returns the number of datagrams."""
        sockets = self._sockets
        if not sockets:
            return 0
        poll = self._epoll.poll
        capacity = len(sockets) + 1
        total = 0
        for _ in range(self.MAX_ROUNDS):
            ready = poll(0, capacity)
            read = 0
            for fd, _mask in ready:
                entry = sockets.get(fd)
                # None: a callback closed this leg's socket meanwhile. Held: a receive lane
                # reads it at the next tick (up to two datagrams, checked in numpy there).
                if entry is not None and not entry.held:
                    entry.read()
                    read += 1
            total += read
            if not read:
                break
        return total

    def close(self) -> None:
        self._sockets.clear()
        self._epoll.close()


def settle_ahead(ahead: list[SocketReader]) -> list[SocketReader]:
    """After the tick: lane readers still holding datagrams read ahead stay listed; what was
    read ahead for a leg that left its lane meanwhile goes the general way."""
    keep = []
    for entry in ahead:
        if entry.held:
            if entry.queue:
                keep.append(entry)
        else:
            entry.hand_back()
    return keep


class RtpReceiver(Protocol):
    """What the legs and the media tick need of the RTP path: ``BatchReceiver`` in process,
    or ``WorkerReceiver`` (bridge/adapters/rtp_worker_client.py) with the IO worker."""
    outbox: Outbox

    def add(self, sock: socket.socket, on_datagram: Callback) -> SocketReader: ...
    def sender(self, sock: socket.socket) -> Sendto: ...
    def remove(self, sock: socket.socket, on_removed: Callable[[], None] | None = None) -> None: ...
    def receive(self) -> int: ...
    def transmit(self) -> int: ...
    def drain(self) -> int: ...
    def close(self) -> None: ...
    def __len__(self) -> int: ...


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callback) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: the inactivity timer ends the leg.
        pass


class LegSockets:
    """The RTP/RTCP socket pair of one leg."""

    def __init__(self, allocator: PortAllocator, receiver: RtpReceiver | None = None) -> None:
        self.allocator = allocator
        self.receiver = receiver       # the ``tick`` receive mode reads RTP through it
        self.batched: SocketReader | None = None
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._socks: tuple[socket.socket, socket.socket] | None = None
        self._transports: tuple[asyncio.DatagramTransport, asyncio.DatagramTransport] | None = None
        self._send_rtp: Callable[[bytes, tuple[str, int]], Any] | None = None
        self._send_rtcp: Callable[[bytes, tuple[str, int]], Any] | None = None
        self._attaching: asyncio.Task[None] | None = None
        # SRTP (bridge/rtp/srtp.py): unprotect wraps the receive callbacks, protect the sends.
        self.srtp: SrtpContext | None = None
        self._rtcp_reader: SocketReader | None = None
        self._rtp_reader: SocketReader | None = None
        self._srtp_session: Any = None      # whose ``foreign`` counter SRTP failures add to

    def bind(self, loop: asyncio.AbstractEventLoop, on_rtp: Callback, on_rtcp: Callback) -> int:
        """Take a port pair and start receiving; returns the RTP port. Synchronous, so the
        call core can answer in the same step: the asyncio receive modes (benchmarks only)
        attach their datagram transports a moment later, sending through the socket meanwhile."""
        rtp_sock, rtcp_sock, self.port = self.allocator.bind_pair()
        self._loop = loop
        self._socks = (rtp_sock, rtcp_sock)
        self._send_rtp, self._send_rtcp = rtp_sock.sendto, rtcp_sock.sendto
        if RECV_MODE == "tick" and self.receiver is not None:
            self.batched = self._rtp_reader = self.receiver.add(rtp_sock, on_rtp)
            self._send_rtp = self.receiver.sender(rtp_sock)
            self._rtcp_reader = SocketReader(rtcp_sock, on_rtcp)
            loop.add_reader(rtcp_sock.fileno(), self._rtcp_reader.read)
        elif RECV_MODE in ("reader", "drain", "tick"):
            make = _drainer if RECV_MODE == "drain" else _reader
            loop.add_reader(rtp_sock.fileno(), make(rtp_sock, on_rtp))
            loop.add_reader(rtcp_sock.fileno(), make(rtcp_sock, on_rtcp))
        else:
            self._attaching = loop.create_task(self._attach_transports(loop, on_rtp, on_rtcp))
        return self.port

    async def open(self, loop: asyncio.AbstractEventLoop, on_rtp: Callback, on_rtcp: Callback) -> int:
        """``bind``, and in the asyncio receive modes wait until the transports are attached."""
        port = self.bind(loop, on_rtp, on_rtcp)
        if self._attaching is not None:
            await self._attaching
        return port

    async def _attach_transports(self, loop: asyncio.AbstractEventLoop, on_rtp: Callback,
                                 on_rtcp: Callback) -> None:
        if self._socks is None:
            return
        rtp_sock, rtcp_sock = self._socks
        rtp, _ = await loop.create_datagram_endpoint(lambda: _Proto(on_rtp), sock=rtp_sock)
        rtcp, _ = await loop.create_datagram_endpoint(lambda: _Proto(on_rtcp), sock=rtcp_sock)
        if self._socks is None:         # closed while attaching
            rtp.close()
            rtcp.close()
            return
        self._transports = (rtp, rtcp)
        if RECV_MODE == "asyncio":
            for transport in self._transports:
                if hasattr(transport, "max_size"):  # the stock loop; uvloop has no such attribute
                    transport.max_size = RTP_MAX_DATAGRAM
        if SEND_MODE == "transport":
            self._send_rtp, self._send_rtcp = rtp.sendto, rtcp.sendto

    def set_srtp(self, keys: SrtpKeys | None) -> None:
        """Make this an SRTP leg (new keys on a re-offer replace the old). Every datagram is
        unprotected before anything parses it; one that fails is dropped and counted
        (``srtp.rx_dropped``), like a stranger's packet. Only the tick receive mode."""
        if keys is None:
            return
        if self._rtp_reader is None or self._rtcp_reader is None:
            raise RuntimeError(f"SRTP needs TUTTI_RTP_RECV=tick, not {RECV_MODE!r}")
        first = self.srtp is None
        self.srtp = SrtpContext(keys)
        if first:
            self._rtp_reader.on_datagram = self._unprotecting(self._rtp_reader.on_datagram, rtcp=False)
            self._rtcp_reader.on_datagram = self._unprotecting(self._rtcp_reader.on_datagram, rtcp=True)

    def _unprotecting(self, deliver: Callback, rtcp: bool) -> Callback:
        def receive(data: bytes, addr: tuple[Any, ...]) -> None:
            ctx = self.srtp
            if ctx is None:
                return
            clear = ctx.unprotect_rtcp(data) if rtcp else ctx.unprotect(data)
            if clear is not None:
                deliver(clear, addr)
            elif self._srtp_session is not None:    # metrics: tutti_rtp_dropped_packets{reason="foreign"}
                self._srtp_session.foreign += 1
        return receive

    def room_port(self, session: Any, steady_rx: bool, srtp: SrtpKeys | None = None) -> LegPort:
        """The port a room pops this leg's frames from and packetises into. An SRTP leg never
        joins a lane: lanes parse and build raw RTP headers straight at the socket."""
        self.set_srtp(srtp)
        self._srtp_session = session if self.srtp is not None else None
        return LegPort(session, self, rx_lane=steady_rx and self.srtp is None)

    def rtp_sender(self) -> Callable[[bytes, tuple[str, int]], Any] | None:
        """The RTP socket's send function (None before ``open``); SRTP legs protect first."""
        send = self._send_rtp
        if self.srtp is None or send is None:
            return send

        def protected(data: bytes, addr: tuple[str, int]) -> Any:
            ctx = self.srtp
            packet = ctx.protect(data) if ctx is not None else None
            if packet is not None:
                send(packet, addr)
        return protected

    def send_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        send = self.rtp_sender()
        if send is not None:
            try:
                send(data, addr)
            except OSError:  # kernel buffer full or the peer's ICMP error: drop, RTP is real-time
                pass

    def send_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.srtp is not None:
            protected = self.srtp.protect_rtcp(data)
            if protected is None:
                return
            data = protected
        if self._send_rtcp is not None:
            try:
                self._send_rtcp(data, addr)
            except OSError:
                pass

    def close(self) -> None:
        self._send_rtp = self._send_rtcp = None
        if self._transports is not None:
            for transport in self._transports:
                transport.close()  # closes the socket too
            self._transports = None
        elif self._socks is not None:
            if self.batched is not None and self.receiver is not None:
                # The IO worker holds a duplicate of the socket: the port is free once it closed it.
                port, self.port = self.port, 0
                self.receiver.remove(self._socks[0], lambda: self.allocator.release(port))
                self.batched = None
            for sock in self._socks:
                if self._loop is not None and not self._loop.is_closed() and sock.fileno() >= 0:
                    self._loop.remove_reader(sock.fileno())
                sock.close()
        self._socks = None
        if self.port:
            self.allocator.release(self.port)
            self.port = 0


def _nothing() -> None:
    """The lanes' recheck: the adapter read ahead already (``BatchReceiver.receive``)."""


class LegPort:
    """The ``RtpPort`` a room sees for one leg: the leg's RTP session plus its socket.

    No socket is touched in the room's tick: ``BatchReceiver.receive`` has delivered the
    leg's datagram before it (``pop_frame`` pops the jitter buffer), and ``packetize``
    queues the packet it builds in the receiver's ``Outbox``, sent after the tick.

    ``rx_lane`` / ``opus_rx_lane`` / ``tx_lane`` give a room the steady lanes (bridge/rtp/lanes.py)
    for a group of ports: the same reads and sends, with the per-leg RTP work done in numpy.
    ``rx_lane=False`` keeps a leg out of receive lanes (in-band DTMF detection must see
    every packet); ``TUTTI_RTP_LANES=0`` turns both lanes off. Outside the ``tick`` receive
    mode (benchmarks only) there is no outbox and ``packetize`` sends at once.
    """

    __slots__ = ("session", "steady_rx", "srtp", "_rx", "_outbox", "_sendto")

    def __init__(self, session: Any, sockets: LegSockets, *, rx_lane: bool = True) -> None:
        self.session = session          # bridge.rtp.session.RtpSession
        self.steady_rx = rx_lane
        self.srtp = sockets.srtp is not None     # never in a lane, either way
        self._rx = sockets.batched      # None outside the tick receive mode
        self._outbox = sockets.receiver.outbox if sockets.batched is not None and sockets.receiver else None
        # The open socket's own send (a closed socket's raises EBADF, dropped like EAGAIN).
        self._sendto = sockets.rtp_sender()

    @staticmethod
    def rx_lane(ports: Sequence[LegPort], shape: LaneShape = G711_LANE) -> RxLane | None:
        readers = [port._rx for port in ports]
        if (not LANES or not all(port.steady_rx and not port.srtp for port in ports)
                or any(rx is None for rx in readers)):
            return None
        return RxLane([port.session for port in ports], readers,  # type: ignore[arg-type]
                      [port.pop_frame for port in ports], _nothing, shape)

    @staticmethod
    def opus_rx_lane(ports: Sequence[LegPort]) -> RxLane | None:
        """A receive lane for Opus callers (48 kHz clock, 20 ms packets of any length)."""
        return LegPort.rx_lane(ports, OPUS_LANE)

    @staticmethod
    def tx_lane(ports: Sequence[LegPort]) -> TxLane | None:
        if not LANES or any(port.srtp for port in ports):   # lanes send raw RTP: no SRTP leg
            return None
        outbox = ports[0]._outbox if ports else None
        if any(port._outbox is not outbox for port in ports):
            return None
        return TxLane([port.session for port in ports], [port._sendto for port in ports],
                      outbox.groups if outbox is not None else None)

    def pop_frame(self) -> Any:
        session = self.session
        if session._rx_lane is not None:
            session._rx_lane.release(session)
        return session.jitter.pop()     # RtpSession.pop_frame, one call less per leg

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        session = self.session
        datagram: bytes = session.packetize(payload, ticks, marker)
        addr = session.remote_addr
        if addr is not None and addr[0] not in NOWHERE and self._sendto is not None:
            if self._outbox is not None:
                self._outbox.packets.append((self._sendto, datagram, addr))
                return datagram
            try:
                self._sendto(datagram, addr)
            except OSError:   # kernel buffer full, the peer's ICMP error, or closed: RTP drops
                pass
        return datagram
