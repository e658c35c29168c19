"""SIP URI parsing and serialisation (RFC 3261 §19.1), IPv6 references included.

URIs keep their escaped text (user, params) so a URI learnt from a peer is sent back exactly
as it came (Contact -> Request-URI, Record-Route -> Route)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote


class UriError(ValueError):
    """The text is not a URI we can use."""


class UnsupportedScheme(UriError):
    """A well-formed URI whose scheme is not sip, sips or tel."""


@dataclass(frozen=True)
class SipUri:
    # "sip", "sips" or "tel" (lowercase); any other scheme only from parse_uri(any_scheme=True),
    # with everything after the colon kept verbatim in `user`.
    scheme: str
    user: str | None = None  # still %-escaped, as on the wire
    host: str = ""  # IPv6 references keep their brackets: "[::1]"
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: str = ""  # "?a=b&c=d" part, without the "?"
    password: str | None = None

    @property
    def user_text(self) -> str | None:
        """User part with %-escapes decoded (what a room name compares against)."""
        return unquote(self.user) if self.user is not None else None

    @property
    def host_plain(self) -> str:
        """Host without IPv6 brackets, lowercase (for address comparison)."""
        return self.host.strip("[]").lower()

    def param(self, name: str) -> str | None:
        for k, v in self.params:
            if k.lower() == name.lower():
                return v if v is not None else ""
        return None

    def has_param(self, name: str) -> bool:
        return any(k.lower() == name.lower() for k, _ in self.params)

    def __str__(self) -> str:
        if self.scheme not in ("sip", "sips"):
            out = f"{self.scheme}:{self.user or ''}"
        else:
            out = f"{self.scheme}:"
            if self.user is not None:
                out += self.user
                if self.password is not None:
                    out += f":{self.password}"
                out += "@"
            out += self.host
            if self.port is not None:
                out += f":{self.port}"
        for k, v in self.params:
            out += f";{k}" if v is None else f";{k}={v}"
        if self.headers:
            out += f"?{self.headers}"
        return out


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+-.")


def _parse_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UriError("unterminated IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        if len(host) < 4 or any(c not in "0123456789abcdefABCDEF:." for c in host[1:-1]):
            raise UriError("bad IPv6 reference")
    else:
        host, sep, port_text = text.partition(":")
        rest = sep + port_text
        if not host or any(c not in _HOST_CHARS for c in host):
            raise UriError("bad host")  # hostname or IPv4 address ('_' tolerated)
    if not rest:
        return host, None
    if not rest.startswith(":") or not rest[1:].isascii() or not rest[1:].isdigit() or len(rest) > 6:
        raise UriError("bad port")
    port = int(rest[1:])
    if not 0 < port < 65536:
        raise UriError("port out of range")
    return host, port


def _parse_params(text: str) -> tuple[tuple[str, str | None], ...]:
    out: list[tuple[str, str | None]] = []
    for part in text.split(";"):
        if not part:
            continue
        k, eq, v = part.partition("=")
        k = k.strip()
        if not k:
            raise UriError("empty URI parameter name")
        out.append((k, v.strip() if eq else None))
    return tuple(out)


def parse_uri(text: str, *, any_scheme: bool = False) -> SipUri:
    """Parse a sip:, sips: or tel: URI. Other well-formed schemes raise UnsupportedScheme, or
    with `any_scheme` (a Request-URI, to be answered 416) come back opaque."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or not rest:
        raise UriError("missing URI scheme")
    if not scheme[:1].isalpha() or any(c not in _SCHEME_CHARS for c in scheme):
        raise UriError("bad URI scheme")
    if any(c in rest for c in " \t\r\n<>\""):
        raise UriError("bad character in URI")
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not number:
            raise UriError("empty tel number")
        return SipUri(scheme="tel", user=number, params=_parse_params(params))
    if scheme not in ("sip", "sips"):
        if any_scheme:
            return SipUri(scheme=scheme, user=rest)
        raise UnsupportedScheme(f"unsupported URI scheme {scheme!r}")
    user: str | None = None
    password: str | None = None
    if "@" in rest:
        # '@' may appear only once, literally, in a SIP URI (user, password, params and headers
        # must escape it); the user part may hold ';', '?', '/' and ',' (RFC 3261 §25.1).
        userinfo, _, rest = rest.rpartition("@")
        user, pcolon, pw = userinfo.partition(":")
        password = pw if pcolon else None
        if not user:
            raise UriError("bad user part")
    rest, _, headers = rest.partition("?")
    hostport, _, params = rest.partition(";")
    host, port = _parse_hostport(hostport)
    return SipUri(scheme, user, host, port, _parse_params(params), headers, password)
