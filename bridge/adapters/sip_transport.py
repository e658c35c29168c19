"""asyncio adapter for the sans-IO SIP endpoint: UDP, TCP and TLS listeners.

The adapter only moves bytes: datagrams and framed TCP messages go into
``SipEndpoint.receive``; after every input it transmits what the endpoint
queued and re-arms the single endpoint timer. Events are handed to a callback.
SIP over TLS (RFC 3261 §26, ``sip.tls`` in config.yaml) is the TCP path with the
stdlib's ``ssl`` underneath: same framing, flows marked ``tls`` so Via and Contact
say so, and replies go back on the caller's connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Callable
from typing import Any, Literal, Protocol

from bridge.sip.admission import Drop, SipGate
from bridge.sip.endpoint import Flow, SipEndpoint
from bridge.sip.flow import Outgoing
from bridge.sip.message import StreamFramer

log = logging.getLogger("bridge.sip")

# Largest SIP datagram we accept; anything larger is not SIP over UDP (RFC 3261 §18.1.1
# asks for TCP above the path MTU, and 64 KiB is the UDP limit anyway).
_MAX_DATAGRAM = 65535


class MessageObserver(Protocol):
    """Sees every SIP message in and out (the metrics count them by method and code)."""

    def received(self, data: bytes) -> None: ...

    def sent(self, data: bytes) -> None: ...


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: "SipTransport") -> None:
        self.owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.owner._udp = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.owner.feed(data, Flow("udp", (addr[0], addr[1])))

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable etc.
        log.debug("SIP UDP error: %s", exc)


def server_tls_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS 1.2+ server context from PEM files (the chain in ``cert``). Clients are not asked
    for certificates: SIP callers authenticate by PIN, not by TLS."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


class _TcpProtocol(asyncio.Protocol):
    """One SIP stream connection, plain TCP or TLS (asyncio's ssl layer sits below us)."""

    def __init__(self, owner: "SipTransport", kind: Literal["tcp", "tls"] = "tcp") -> None:
        self.owner = owner
        self.kind: Literal["tcp", "tls"] = kind
        self.framer = StreamFramer()
        self.conn_id = next(owner._conn_ids)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self._idle: asyncio.TimerHandle | None = None
        self._seen = False          # a whole message has arrived on this connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is not a subclass
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        if len(self.owner._tcp_conns) >= self.owner.max_connections:
            log.warning("SIP connection from %s refused: %d open", self.peer, len(self.owner._tcp_conns))
            transport.close()
            return
        self.owner._tcp_conns[self.conn_id] = self
        self._start_clock()

    def _start_clock(self) -> None:
        if self._idle is None:
            self._idle = self.owner.loop.call_later(self.owner.idle_timeout_s, self._expire)

    def _stop_clock(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _expire(self) -> None:
        self._idle = None
        log.info("SIP connection from %s completed no message in %.0f s: closed",
                 self.peer, self.owner.idle_timeout_s)
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except Exception as exc:  # a broken stream cannot be resynchronised: drop it
            log.warning("SIP TCP framing error from %s: %s", self.peer, exc)
            if self.transport:
                self.transport.close()
            return
        # Slowloris bound: the clock runs from the connect until the first whole message, and
        # from the first byte of any later message until it is whole, so dripping bytes never
        # keeps a connection. A connection quiet between messages stays open (an established
        # call's dialog is silent for its whole length): sip.max_tcp_connections bounds those.
        if messages:
            self._seen = True
            self._stop_clock()
        if self.framer.pending or not self._seen:
            self._start_clock()
        for message in messages:
            self.owner.feed(message, Flow(self.kind, self.peer, self.conn_id))

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        self.owner._tcp_conns.pop(self.conn_id, None)


class SipTransport:
    """Owns the SIP sockets and the endpoint's timer."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        on_events: Callable[[], None],
        loop: asyncio.AbstractEventLoop | None = None,
        observer: MessageObserver | None = None,
        gate: SipGate | None = None,
        calls_in_progress: Callable[[], int] = lambda: 0,
        idle_timeout_s: float = 60.0,
        max_connections: int = 1000,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s        # sip.tcp_idle_timeout_s
        self.max_connections = max_connections      # sip.max_tcp_connections (TCP and TLS together)
        self.endpoint = endpoint
        self.gate = gate
        self.calls_in_progress = calls_in_progress
        self.observer = observer
        self.on_events = on_events
        self.loop = loop or asyncio.get_event_loop()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.base_events.Server | None = None
        self._tls_server: asyncio.base_events.Server | None = None
        self._tcp_conns: dict[int, _TcpProtocol] = {}
        self._conn_ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    async def start(self, host: str, port: int, transports: tuple[str, ...]) -> None:
        if "udp" in transports:
            await self.loop.create_datagram_endpoint(lambda: _UdpProtocol(self), local_addr=(host, port))
            # Python's selector transport reads up to max_size bytes per datagram (uvloop has none).
            if self._udp is not None and hasattr(self._udp, "max_size"):
                self._udp.max_size = _MAX_DATAGRAM
        if "tcp" in transports:
            self._tcp_server = await self.loop.create_server(
                lambda: _TcpProtocol(self), host=host, port=port, reuse_address=True
            )

    async def start_tls(self, host: str, port: int, context: ssl.SSLContext) -> None:
        """The TLS listener (off unless ``sip.tls`` is configured); a peer that does not finish
        the handshake within the idle timeout is closed (slowloris bound)."""
        self._tls_server = await self.loop.create_server(
            lambda: _TcpProtocol(self, "tls"), host=host, port=port, reuse_address=True, ssl=context,
            ssl_handshake_timeout=self.idle_timeout_s,
        )

    def bound(self, transports: tuple[str, ...]) -> list[str]:
        """Which of ``transports`` are not listening (readiness); empty when all are."""
        down = []
        if "udp" in transports and (self._udp is None or self._udp.is_closing()):
            down.append("udp")
        if "tcp" in transports and (self._tcp_server is None or not self._tcp_server.is_serving()):
            down.append("tcp")
        if "tls" in transports and (self._tls_server is None or not self._tls_server.is_serving()):
            down.append("tls")
        return down

    def now(self) -> float:
        return self.loop.time()

    def feed(self, data: bytes, flow: Flow) -> None:
        if self.observer is not None:
            self.observer.received(data)
        if self.gate is not None:
            # Admission before the endpoint: a refused INVITE never reaches the call core.
            verdict = self.gate.screen(data, flow, self.now(), self.calls_in_progress())
            if isinstance(verdict, Drop):
                return
            if isinstance(verdict, Outgoing):
                self._send(verdict)
                return
        try:
            self.endpoint.receive(data, flow, self.now())
        except Exception:  # the endpoint answers bad input itself; a bug must not stop SIP
            log.exception("SIP message from %s could not be handled", flow.remote)
        self.pump()

    def pump(self) -> None:
        """Transmit queued messages, deliver events, re-arm the timer."""
        self.on_events()
        self._flush()
        self._arm()

    def _flush(self) -> None:
        for out in self.endpoint.messages_to_send():
            self._send(out)

    def _send(self, out: Outgoing) -> None:
        if self.observer is not None:
            self.observer.sent(out.data)
        flow = out.flow
        if flow.transport == "udp":
            if self._udp is not None:
                self._udp.sendto(out.data, flow.remote)
        else:
            conn = self._tcp_conns.get(flow.conn_id or -1)
            if conn is not None and conn.transport is not None and not conn.transport.is_closing():
                conn.transport.write(out.data)
            else:
                # The caller's connection is gone; open a new one (RFC 3261 §18.2.2). Over TLS the
                # peer's certificate must verify against the system's CAs.
                self.loop.create_task(self._send_new_tcp(out.data, flow.remote, flow.transport == "tls"))

    async def _send_new_tcp(self, data: bytes, remote: tuple[str, int], tls: bool = False) -> None:
        try:
            _, proto = await self.loop.create_connection(
                lambda: _TcpProtocol(self, "tls" if tls else "tcp"), remote[0], remote[1],
                ssl=ssl.create_default_context() if tls else None)
            assert proto.transport is not None
            proto.transport.write(data)
        except (OSError, ssl.SSLError) as exc:
            log.info("cannot open SIP TCP connection to %s: %s", remote, exc)

    def _arm(self) -> None:
        deadline = self.endpoint.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self.endpoint.handle_timer(self.now())
        self.pump()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._udp is not None:
            self._udp.close()
        for server in (self._tcp_server, self._tls_server):
            if server is not None:
                server.close()
        for conn in list(self._tcp_conns.values()):
            if conn.transport is not None:
                conn.transport.close()
