"""A slowloris against an HTTP port, measured: many raw sockets each sending a request's headers
one byte per interval, never finishing, while a normal client keeps making REST requests.

Used by ``tests/e2e/test_http_bounds.py`` and ``benchmarks/http_slowloris.py``."""

from __future__ import annotations

import selectors
import socket
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from typing import cast

HEAD = b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Padding: " + b"a" * 4000


@dataclass
class SlowlorisResult:
    opened: int = 0                 # connections the kernel accepted
    refused: int = 0                # answered 503 at once
    closed_at: list[float] = field(default_factory=list)   # seconds after the start, per closed one
    held_at_end: int = 0            # still open when the attack stopped
    request_latencies: list[float] = field(default_factory=list)   # the normal client's, seconds
    request_failures: int = 0
    connect_failures: int = 0       # connects that timed out or failed (a full accept backlog)
    held_samples: list[int] = field(default_factory=list)   # connections open at each drip


def normal_request(url: str, token: str, timeout: float, context: ssl.SSLContext | None = None) -> float | None:
    """Seconds one authenticated REST request took, or None if it failed."""
    start = time.monotonic()
    req = urllib.request.Request(url, headers={"X-Auth-Token": token})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            resp.read()
            return time.monotonic() - start if resp.status == 200 else None
    except OSError:
        return None


def _open(source: str, port: int, timeout: float) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(timeout)
    try:
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock


def attack(port: int, connections: int, seconds: float, *, source: str = "127.0.0.2",
           interval: float = 1.0, probe_url: str = "", token: str = "", probe_every: float = 1.0,
           probe_timeout: float = 5.0, reconnect: bool = False, connect_timeout: float = 2.0) -> SlowlorisResult:
    """Open ``connections`` sockets from ``source`` to 127.0.0.1:``port`` and drip one header byte
    per ``interval`` on each for ``seconds`` (``reconnect``: reopen closed or refused ones at the
    next drip, as a real slowloris does); every ``probe_every`` s make a normal request to
    ``probe_url`` (from 127.0.0.1) and record its latency."""
    result = SlowlorisResult()
    sel = selectors.DefaultSelector()
    sent: dict[socket.socket, int] = {}
    start = time.monotonic()
    missing = connections

    def refill() -> None:
        nonlocal missing
        while missing and time.monotonic() < start + seconds:
            sock = _open(source, port, connect_timeout)
            missing -= 1
            if sock is None:
                result.connect_failures += 1
                continue
            result.opened += 1
            sel.register(sock, selectors.EVENT_READ)
            sent[sock] = 0

    refill()
    next_drip = next_probe = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.05):
            sock = cast(socket.socket, key.fileobj)
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data.startswith(b"HTTP/1.1 503"):
                result.refused += 1
            elif data:
                continue
            else:
                result.closed_at.append(time.monotonic() - start)
            sel.unregister(sock)
            sock.close()
            del sent[sock]
            if reconnect:
                missing += 1
        now = time.monotonic()
        if now >= next_drip:
            for sock in list(sent):
                try:
                    sock.send(HEAD[sent[sock] % len(HEAD):][:1])
                    sent[sock] += 1
                except OSError:
                    pass        # the reader above sees the close
            result.held_samples.append(sum(1 for n in sent.values() if n))
            refill()
            next_drip = now + interval
        if probe_url and now >= next_probe:
            latency = normal_request(probe_url, token, probe_timeout)
            if latency is None:
                result.request_failures += 1
            else:
                result.request_latencies.append(latency)
            next_probe = time.monotonic() + probe_every
    result.held_at_end = len(sent)
    for sock in list(sent):
        sel.unregister(sock)
        sock.close()
    sel.close()
    return result
