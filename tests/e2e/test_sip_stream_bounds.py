"""Slowloris bounds on SIP stream connections (TCP and TLS), against a real bridge process.

- A TCP connection dripping a SIP message one byte at a time never completes one and is closed
  after ``sip.tcp_idle_timeout_s``; a TLS connection that never sends a ClientHello likewise.
- A connection that completed a message and then stays quiet (a call's dialog) is kept.
- ``sip.max_tcp_connections``: the connection over the cap is closed at once, the others live.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.support.tls import self_signed

pytestmark = pytest.mark.e2e

IDLE_S = 1.5


def _options(port: int, transport: str) -> bytes:
    return (
        f"OPTIONS sip:room1@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:5999;branch=z9hG4bK-sb-{time.monotonic_ns()}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:room1@127.0.0.1>\r\n"
        f"Call-ID: sb-{time.monotonic_ns()}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the peer closes ``sock`` (EOF or reset) within ``seconds``."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:           # reset, or an SSL error on a TLS socket
            return True
    return False


def _reply(sock: socket.socket, seconds: float = 5) -> bytes:
    sock.settimeout(0.5)
    data = b""
    deadline = time.monotonic() + seconds
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def test_slow_drip_and_silent_handshake_are_closed(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path
) -> None:
    cert = self_signed(tmp_path / "tls")
    tls_port = ports.port()
    bridge = bridge_factory(sip={"tcp_idle_timeout_s": IDLE_S,
                                 "tls": {"port": tls_port, "cert": str(cert.cert), "key": str(cert.key)}})
    message = _options(bridge.sip_port, "TCP")
    with socket.create_connection(("127.0.0.1", bridge.sip_port), timeout=5) as drip:
        closed_after = None
        start = time.monotonic()
        for i in range(min(len(message) - 1, 40)):      # one byte every 0.25 s, never the whole message
            try:
                drip.sendall(message[i:i + 1])
            except OSError:
                closed_after = time.monotonic() - start
                break
            if _closed_within(drip, 0.25):
                closed_after = time.monotonic() - start
                break
        assert closed_after is not None, "a dripping connection was kept open for 10 s"
        assert closed_after >= IDLE_S * 0.8
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as silent:  # TCP up, no ClientHello
        assert _closed_within(silent, IDLE_S + 5)
    # A verified TLS client that sent a whole message and then stays quiet (as a call's dialog
    # does) keeps its connection past the timeout, and is answered again on it.
    ctx = ssl.create_default_context(cafile=str(cert.cert))
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(_options(tls_port, "TLS"))
        assert _reply(tls).startswith(b"SIP/2.0 200")
        assert not _closed_within(tls, IDLE_S * 2)
        tls.sendall(_options(tls_port, "TLS"))
        assert _reply(tls).startswith(b"SIP/2.0 200")


def test_connection_cap(bridge_factory: Callable[..., BridgeProcess]) -> None:
    bridge = bridge_factory(sip={"tcp_idle_timeout_s": 30, "max_tcp_connections": 3})
    socks = [socket.create_connection(("127.0.0.1", bridge.sip_port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.3)                                   # the bridge has accepted all three
        extra = socket.create_connection(("127.0.0.1", bridge.sip_port), timeout=5)
        with extra:
            assert _closed_within(extra, 1.0)
        live = socks[0]
        live.sendall(_options(bridge.sip_port, "TCP"))
        assert _reply(live, 3).startswith(b"SIP/2.0 200")
    finally:
        for s in socks:
            s.close()
