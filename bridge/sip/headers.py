"""Header-level syntax: names (compact forms), multi-value splitting, params, name-addr, Via, CSeq."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .uri import SipUri, UriError, parse_uri


class HeaderError(ValueError):
    """A header value does not follow its grammar."""


COMPACT = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
    "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via",
    "o": "Event", "r": "Refer-To", "u": "Allow-Events", "b": "Referred-By", "a": "Accept-Contact",
    "j": "Reject-Contact", "d": "Request-Disposition", "x": "Session-Expires", "y": "Identity",
    "n": "Identity-Info",
}
_SPECIAL = {
    "call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate", "mime-version": "MIME-Version",
    "rack": "RAck", "rseq": "RSeq", "sip-etag": "SIP-ETag", "sip-if-match": "SIP-If-Match",
}
# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1): stored one value per entry.
MULTI_VALUE = frozenset(
    n.lower() for n in (
        "Via", "Route", "Record-Route", "Contact", "Allow", "Supported", "Require", "Proxy-Require",
        "Unsupported", "Accept", "Accept-Encoding", "Accept-Language", "Content-Encoding", "Allow-Events",
        "In-Reply-To", "Path", "Service-Route",
    )
)
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
# ASCII that may not appear in an unquoted display name (non-ASCII UTF-8 is let through: phones
# that forget the quotes around an accented name are a nuisance, not an attack).
_DISPLAY_BAD = frozenset(chr(c) for c in range(128)) - _TOKEN_CHARS - {" ", "\t"}


def is_token(text: str) -> bool:
    return bool(text) and all(c in _TOKEN_CHARS for c in text)


def to_int(text: str, max_digits: int = 10) -> int | None:
    """The value of an ASCII digit string (leading zeros allowed) of at most `max_digits`
    significant digits, else None.

    (str.isdigit() alone admits '²' and other Unicode digits int() rejects, and int() refuses
    strings of thousands of digits; both used to escape as ValueError.)"""
    if not text or not text.isascii() or not text.isdigit():
        return None
    significant = text.lstrip("0")
    return int(significant or "0") if len(significant) <= max_digits else None


def canonical_name(name: str) -> str:
    low = name.strip().lower()
    if low in COMPACT:
        return COMPACT[low]
    if low in _SPECIAL:
        return _SPECIAL[low]
    return "-".join(p[:1].upper() + p[1:] for p in low.split("-"))


def split_commas(value: str, keep_empty: bool = False) -> list[str]:
    """Split a list header on commas outside quoted strings and <...> (so display names and
    URIs with commas survive). Empty elements are dropped unless `keep_empty`."""
    out: list[str] = []
    depth_angle = False
    in_quote = False
    start = 0
    i = 0
    while i < len(value):
        c = value[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == "<":
            depth_angle = True
        elif c == ">":
            depth_angle = False
        elif c == "," and not depth_angle:
            out.append(value[start:i].strip())
            start = i + 1
        i += 1
    out.append(value[start:].strip())
    return out if keep_empty else [v for v in out if v]


def parse_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """';a=b;c' -> (("a","b"),("c",None)); quoted values keep their quotes.

    Every ';' must introduce a parameter: ';;', a trailing ';' or 'a=' with no value are
    errors (RFC 3261 generic-param; RFC 4475 §3.1.2.1)."""
    out: list[tuple[str, str | None]] = []
    parts = _split_outside_quotes(text, ";")
    if parts[0].strip():
        raise HeaderError(f"garbage before parameters: {parts[0].strip()[:20]!r}")
    for part in parts[1:]:
        part = part.strip()
        if not part:
            raise HeaderError("empty parameter")
        k, eq, v = part.partition("=")
        k, v = k.strip(), v.strip()
        if not is_token(k):
            raise HeaderError(f"bad parameter name {k[:20]!r}")
        if eq and not v:
            raise HeaderError(f"parameter {k[:20]!r} without a value")
        out.append((k, v if eq else None))
    return tuple(out)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    in_quote = False
    start = 0
    i = 0
    while i < len(text):
        c = text[i]
        if in_quote and c == "\\":
            i += 2
            continue
        if c == '"':
            in_quote = not in_quote
        elif c == sep and not in_quote:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def format_params(params: tuple[tuple[str, str | None], ...]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def get_param(params: tuple[tuple[str, str | None], ...], name: str) -> str | None:
    """Value of a parameter ('' for a flag), None when absent."""
    for k, v in params:
        if k.lower() == name.lower():
            return "" if v is None else v
    return None


@dataclass(frozen=True)
class NameAddr:
    """From / To / Contact / Route value: [display] <uri> ;params  or  addr-spec ;params."""

    uri: SipUri
    display: str | None = None
    params: tuple[tuple[str, str | None], ...] = ()

    @property
    def tag(self) -> str | None:
        return get_param(self.params, "tag") or None

    def with_param(self, name: str, value: str | None) -> "NameAddr":
        kept = tuple(p for p in self.params if p[0].lower() != name.lower())
        return replace(self, params=kept + ((name, value),))

    def __str__(self) -> str:
        disp = ""
        if self.display:
            disp = '"' + self.display.replace("\\", "\\\\").replace('"', '\\"') + '" '
        return f"{disp}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(text: str) -> NameAddr:
    text = text.strip()
    display: str | None = None
    if text.startswith('"'):
        i = 1
        buf = []
        while i < len(text) and text[i] != '"':
            if text[i] == "\\" and i + 1 < len(text):
                i += 1
            buf.append(text[i])
            i += 1
        if i >= len(text):
            raise HeaderError("unterminated display name")
        display = "".join(buf)
        text = text[i + 1 :].lstrip()
        if not text.startswith("<"):
            raise HeaderError("display name without <uri>")
    if "<" in text:
        lt = text.index("<")
        gt = text.find(">", lt)
        if gt < 0:
            raise HeaderError("missing '>'")
        if display is None:
            display = text[:lt].strip() or None
            if display is not None and any(c in _DISPLAY_BAD for c in display):
                # RFC 3261: an unquoted display name is tokens and LWS (RFC 4475 §3.1.2.15).
                raise HeaderError("unquoted display name with non-token characters")
        uri_text, rest = text[lt + 1 : gt], text[gt + 1 :]
        if uri_text != uri_text.strip():
            raise HeaderError("whitespace inside <>")  # RFC 4475 §3.1.2.14
    else:
        # addr-spec form: every ';param' belongs to the header, not the URI (RFC 3261 §20.10).
        uri_text, sep, rest = text.partition(";")
        rest = sep + rest
        if "?" in uri_text or "," in uri_text:
            raise HeaderError("URI with '?' or ',' not enclosed in <>")  # RFC 4475 §3.1.2.13
    rest = rest.strip()
    if rest and not rest.startswith(";"):
        raise HeaderError("garbage after address")
    try:
        uri = parse_uri(uri_text)
    except UriError as exc:
        raise HeaderError(str(exc)) from exc
    return NameAddr(uri, display, parse_params(rest))


@dataclass(frozen=True)
class Via:
    transport: str  # upper case: UDP, TCP, TLS, WS...
    host: str
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()

    @property
    def branch(self) -> str | None:
        return get_param(self.params, "branch") or None

    @property
    def sent_by(self) -> str:
        return self.host.lower() + (f":{self.port}" if self.port is not None else "")

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> "Via":
        out: list[tuple[str, str | None]] = []
        done = False
        for k, v in self.params:
            if k.lower() == name.lower():
                if not done:
                    out.append((k, value))
                    done = True
            else:
                out.append((k, v))
        if not done:
            out.append((name, value))
        return replace(self, params=tuple(out))

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    proto, sep, rest = text.strip().partition("/")
    version, sep2, rest = rest.partition("/")
    if not sep or not sep2 or proto.strip().upper() != "SIP" or version.strip() != "2.0":
        raise HeaderError("bad Via protocol")
    rest = rest.lstrip()
    i = 0
    while i < len(rest) and (rest[i].isalnum() or rest[i] in "-"):
        i += 1
    transport, rest = rest[:i].upper(), rest[i:].lstrip()
    if not transport:
        raise HeaderError("missing Via transport")
    # Strip a trailing comment "(...)" which RFC 3261 permits but nobody needs.
    hostport, sep, params = rest.partition(";")
    hostport = hostport.split("(")[0].strip().replace(" ", "")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise HeaderError("bad Via IPv6 host")
        host, port_text = hostport[: end + 1], hostport[end + 1 :]
    else:
        host, c, p = hostport.partition(":")
        port_text = c + p
    if not host or any(ch in host for ch in "<>\"@,"):
        raise HeaderError("bad Via host")
    port: int | None = None
    if port_text:
        port = to_int(port_text[1:], 5) if port_text.startswith(":") else None
        if port is None or not 0 < port < 65536:
            raise HeaderError("bad Via port")
    return Via(transport, host, port, parse_params(sep + params))


@dataclass(frozen=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(text: str) -> CSeq:
    parts = text.split()
    if len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit() or not is_token(parts[1]):
        raise HeaderError("bad CSeq")
    seq = to_int(parts[0])
    if seq is None or seq >= 2**31:
        raise HeaderError("CSeq number out of range")  # RFC 3261 §8.1.1.5; RFC 4475 §3.1.2.4
    return CSeq(seq, parts[1])


def add_tag(raw_name_addr: str, tag: str) -> str:
    """Append ;tag to a From/To value exactly as received (works with and without <>)."""
    return f"{raw_name_addr.rstrip()};tag={tag}"
