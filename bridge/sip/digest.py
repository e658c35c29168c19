"""Digest authentication, client side (RFC 7616 hashes as SIP uses them, RFC 3261 §22, RFC 8760).

A trunk answers our INVITE with 401 (``WWW-Authenticate``) or 407 (``Proxy-Authenticate``);
we resend it with ``Authorization`` / ``Proxy-Authorization``. Supported: MD5, SHA-256 and
SHA-512-256 and their ``-sess`` variants, qop ``auth`` (or none, RFC 2069 style). Of several
challenges in one response the strongest algorithm wins. ``auth-int`` is not offered by any
trunk we know; a challenge that demands it is refused (no credentials are sent).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# Strongest first.
_ALGORITHMS = {
    "SHA-512-256": lambda data: hashlib.new("sha512_256", data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
}
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)\s*,?')


@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"      # as given, e.g. "SHA-256-sess"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @property
    def base_algorithm(self) -> str:
        name = self.algorithm.upper()
        return name[:-5] if name.endswith("-SESS") else name

    @property
    def session(self) -> bool:
        return self.algorithm.upper().endswith("-SESS")


def parse_challenges(values: list[str]) -> list[Challenge]:
    """Digest challenges we can answer, from (Proxy-|WWW-)Authenticate header values."""
    out = []
    for value in values:
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "digest":
            continue
        params = {k.lower(): v[1:-1].replace('\\"', '"') if v.startswith('"') else v
                  for k, v in _PARAM.findall(rest)}
        if "realm" not in params or "nonce" not in params:
            continue
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        challenge = Challenge(params["realm"], params["nonce"], params.get("algorithm", "MD5"), qop,
                              params.get("opaque"), params.get("stale", "").lower() == "true")
        if challenge.base_algorithm in _ALGORITHMS and (not qop or "auth" in qop):
            out.append(challenge)
    return out


def strongest(challenges: list[Challenge]) -> Challenge | None:
    order = list(_ALGORITHMS)
    ranked = sorted(challenges, key=lambda c: order.index(c.base_algorithm))
    return ranked[0] if ranked else None


def response(challenge: Challenge, *, username: str, password: str, method: str, uri: str,
             cnonce: str, nc: int) -> str:
    """The ``response`` hash (RFC 7616 §3.4.1): KD(H(A1), nonce:nc:cnonce:qop:H(A2))."""
    h = _ALGORITHMS[challenge.base_algorithm]
    ha1 = h(f"{username}:{challenge.realm}:{password}".encode())
    if challenge.session:
        ha1 = h(f"{ha1}:{challenge.nonce}:{cnonce}".encode())
    ha2 = h(f"{method}:{uri}".encode())
    if "auth" in challenge.qop:
        return h(f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:auth:{ha2}".encode())
    return h(f"{ha1}:{challenge.nonce}:{ha2}".encode())


def authorization(challenge: Challenge, *, username: str, password: str, method: str, uri: str,
                  cnonce: str, nc: int) -> str:
    """The Authorization / Proxy-Authorization header value answering ``challenge``."""
    digest = response(challenge, username=username, password=password, method=method, uri=uri,
                      cnonce=cnonce, nc=nc)
    parts = [f'username="{username}"', f'realm="{challenge.realm}"', f'nonce="{challenge.nonce}"',
             f'uri="{uri}"', f'response="{digest}"', f"algorithm={challenge.algorithm}"]
    if "auth" in challenge.qop:
        parts += [f'cnonce="{cnonce}"', f"nc={nc:08x}", "qop=auth"]
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)
