"""A tiny SIP UAS over UDP on loopback, standing in for a trunk in dial-out tests.

Debian's SIPp checks MD5 digests only, so this UAS challenges with SHA-256 (or another
RFC 7616 algorithm) and checks the answer with its own hashlib computation, independent of
``bridge.sip.digest``. Per called number it answers (180, 200 with a PCMU offer), rings
forever (180, then the caller's CANCEL gets 200 and the INVITE 487), or rejects (e.g. 486).
It records what it saw so a test can assert on the exchange.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    "SHA-512-256": lambda b: hashlib.new("sha512_256", b).hexdigest(),
}
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')


@dataclass
class Seen:
    """What the UAS observed, in order."""

    events: list[tuple[str, str]] = field(default_factory=list)   # (what, called number)
    auth_ok: list[bool] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)


def _number(request_uri: str) -> str:
    return request_uri.split(":", 1)[1].split("@", 1)[0]


class MiniUas:
    def __init__(self, port: int, *, algorithm: str | None = None, username: str = "alice",
                 password: str = "secret", behaviour: Callable[[str], str | int] = lambda n: "answer") -> None:
        self.port = port
        self.algorithm = algorithm
        self.username, self.password = username, password
        self.behaviour = behaviour      # number -> "answer" | "ring" | a final status
        self.realm = "mini-uas.test"
        self.seen = Seen()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", port))
        self._sock.settimeout(0.2)
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # where the bridge's RTP lands
        self._rtp.bind(("127.0.0.1", 0))
        self._nonces: set[str] = set()
        self._invites: dict[str, tuple[dict[str, list[str]], str]] = {}   # call-id -> headers, to-tag
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        self._rtp.close()

    def wait_for(self, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(w == what for w, _ in self.seen.events):
                return
            time.sleep(0.05)
        raise AssertionError(f"the UAS never saw {what} (saw {self.seen.events})")

    # ------------------------------------------------------------------ wire

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            text = data.decode(errors="replace")
            start, _, rest = text.partition("\r\n")
            if start.startswith("SIP/2.0"):
                continue        # responses to our nothing: ignore
            method, uri, _ = start.split(" ", 2)
            head = rest.split("\r\n\r\n", 1)[0]
            headers: dict[str, list[str]] = {}
            for line in head.split("\r\n"):
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), []).append(value.strip())
            self._handle(method, uri, headers, peer)

    def _send(self, status: int, reason: str, req: dict[str, list[str]], peer: tuple[str, int], *,
              to_tag: str | None, cseq: str | None = None, extra: list[str] = (), body: str = "") -> None:
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in req.get("via", [])]
        lines.append(f"From: {req['from'][0]}")
        to = req["to"][0]
        lines.append(f"To: {to}" + (f";tag={to_tag}" if to_tag and "tag=" not in to else ""))
        lines.append(f"Call-ID: {req['call-id'][0]}")
        lines.append(f"CSeq: {cseq or req['cseq'][0]}")
        lines.append(f"Contact: <sip:uas@127.0.0.1:{self.port}>")
        lines += list(extra)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self._sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), peer)

    def _sdp(self) -> str:
        port = self._rtp.getsockname()[1]
        return ("v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")

    def _handle(self, method: str, uri: str, req: dict[str, list[str]], peer: tuple[str, int]) -> None:
        number = _number(uri)
        call_id = req["call-id"][0]
        self.seen.events.append((method, number))
        if method == "INVITE":
            self._invite(number, uri, req, peer)
        elif method == "CANCEL":
            self._send(200, "OK", req, peer, to_tag=None)
            invite = self._invites.get(call_id)
            if invite is not None:
                inv_headers, tag = invite
                self._send(487, "Request Terminated", inv_headers, peer, to_tag=tag)
        elif method == "BYE":
            self._send(200, "OK", req, peer, to_tag=None)

    def _invite(self, number: str, uri: str, req: dict[str, list[str]], peer: tuple[str, int]) -> None:
        call_id = req["call-id"][0]
        tag = self._invites[call_id][1] if call_id in self._invites else secrets.token_hex(4)
        self._invites[call_id] = (req, tag)
        if self.algorithm is not None and not self._authorized(req.get("authorization", []), uri):
            nonce = secrets.token_hex(16)
            self._nonces.add(nonce)
            challenge = (f'WWW-Authenticate: Digest realm="{self.realm}", nonce="{nonce}", '
                         f'algorithm={self.algorithm}, qop="auth"')
            self._send(401, "Unauthorized", req, peer, to_tag=tag, extra=[challenge])
            return
        action = self.behaviour(number)
        if isinstance(action, int):
            self._send(action, "Rejected", req, peer, to_tag=tag)
            return
        self._send(180, "Ringing", req, peer, to_tag=tag)
        if action == "answer":
            self._send(200, "OK", req, peer, to_tag=tag, body=self._sdp())

    def _authorized(self, values: list[str], uri: str) -> bool:
        if not values:
            return False
        value = values[0]
        self.seen.authorizations.append(value)
        f = {m[0]: m[1] or m[2] for m in _PARAM.findall(value.split(" ", 1)[1])}
        assert self.algorithm is not None
        h = _HASHES[self.algorithm]
        ha1 = h(f"{self.username}:{self.realm}:{self.password}".encode())
        ha2 = h(f"INVITE:{f.get('uri', '')}".encode())
        expected = h(f"{ha1}:{f.get('nonce')}:{f.get('nc')}:{f.get('cnonce')}:auth:{ha2}".encode())
        ok = (f.get("username") == self.username and f.get("nonce") in self._nonces
              and f.get("algorithm") == self.algorithm and f.get("qop") == "auth"
              and f.get("response") == expected and f.get("uri") == uri)
        self.seen.auth_ok.append(ok)
        return ok
