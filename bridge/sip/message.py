"""SIP message model, parser and serialiser (RFC 3261 §7, §20) plus TCP stream framing (§18.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from .headers import (
    MULTI_VALUE, CSeq, HeaderError, NameAddr, Via, canonical_name, is_token, parse_cseq,
    parse_name_addr, parse_via, split_commas,
)
from .uri import SipUri, UriError, parse_uri

MAX_MESSAGE = 65535  # no sane SIP message is bigger; bounds memory on a stream


class Headers:
    """Ordered header list; names canonical, lookup case-insensitive, one entry per list value."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def get(self, name: str) -> str | None:
        key = canonical_name(name)
        for n, v in self._items:
            if n == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name)
        return [v for n, v in self._items if n == key]

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name` with one value, keeping the first one's position."""
        key = canonical_name(name)
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n == key:
                if not placed:
                    out.append((key, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((key, value))
        self._items = out

    def set_all(self, name: str, values: list[str]) -> None:
        """Replace all values of `name`, keeping them where the first one was."""
        key = canonical_name(name)
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n != key:
                out.append((n, v))
            elif not placed:
                out.extend((key, nv) for nv in values)
                placed = True
        if not placed:
            out.extend((key, nv) for nv in values)
        self._items = out

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._items = [(n, v) for n, v in self._items if n != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def copy(self) -> "Headers":
        h = Headers()
        h._items = list(self._items)
        return h


@dataclass
class _Message:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    # Typed accessors; they raise HeaderError on bad syntax (parse_message validated the core ones).
    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> CSeq:
        return parse_cseq(self.headers.get("CSeq") or "")

    @property
    def from_(self) -> NameAddr:
        return parse_name_addr(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return parse_name_addr(self.headers.get("To") or "")

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        return parse_via(self.headers.get_all("Via")[0])

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def _head_lines(self) -> list[str]:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        lines = self._head_lines()
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass
class SipRequest(_Message):
    method: str = ""
    uri: SipUri = field(default_factory=lambda: SipUri("sip", host="invalid"))

    def _head_lines(self) -> list[str]:
        return [f"{self.method} {self.uri} SIP/2.0"]


@dataclass
class SipResponse(_Message):
    status: int = 0
    reason: str = ""

    def _head_lines(self) -> list[str]:
        return [f"SIP/2.0 {self.status} {self.reason}"]


@dataclass
class PartialRequest:
    """What parsed of a malformed request: enough, if present, to answer it with 400."""

    method: str
    headers: Headers


class SipParseError(ValueError):
    def __init__(self, reason: str, request_line_ok: bool = False, partial: PartialRequest | None = None):
        super().__init__(reason)
        self.reason = reason
        self.request_line_ok = request_line_ok
        self.partial = partial


REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported", 600: "Busy Everywhere",
    603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


def default_reason(status: int) -> str:
    return REASONS.get(status, {1: "Provisional", 2: "OK", 3: "Redirect"}.get(status // 100, "Error"))


def _split_head_body(data: bytes) -> tuple[bytes, bytes]:
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        return data[:crlf], data[crlf + 4 :]
    if lf >= 0:
        return data[:lf], data[lf + 2 :]
    return data, b""  # no blank line: a datagram with headers only, tolerated


def _unfold(head: str) -> list[str]:
    lines: list[str] = []
    for raw in head.replace("\r\n", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] = lines[-1].rstrip() + " " + raw.strip()
        else:
            lines.append(raw)
    return lines


_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one complete message (a UDP datagram or one framed TCP message).

    Raises SipParseError; for requests its `partial` carries the headers that did parse so the
    caller can answer 400."""
    data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: ignore CRLFs before the start line
    if not data:
        raise SipParseError("empty message")
    head_b, body = _split_head_body(data)
    try:
        head = head_b.decode("utf-8")
    except UnicodeDecodeError:
        head = head_b.decode("latin-1")  # still find the headers for a 400; values are rarely non-ASCII
    lines = _unfold(head)
    start = lines[0].strip()
    is_response = start.startswith("SIP/")
    method = ""
    uri: SipUri | None = None
    status = 0
    reason = ""
    errors: list[str] = []
    if is_response:
        parts = start.split(" ", 2)
        if parts[0] != "SIP/2.0":
            raise SipParseError("bad SIP version")
        if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3 or not 100 <= int(parts[1]) <= 699:
            raise SipParseError("bad status code")
        status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
    else:
        parts = start.split()
        if len(parts) != 3 or not is_token(parts[0]):
            raise SipParseError("bad request line")
        method = parts[0]
        if parts[2] != "SIP/2.0":
            # The method is known, so a caller can still answer 505.
            raise SipParseError("bad SIP version", True, PartialRequest(method, _lenient_headers(lines[1:])))
        try:
            uri = parse_uri(parts[1])
        except UriError as exc:
            errors.append(f"bad Request-URI: {exc}")
    headers = Headers()
    for line in lines[1:]:
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not is_token(name):
            errors.append("malformed header line")
            continue
        cname = canonical_name(name)
        value = value.strip()
        if cname.lower() in MULTI_VALUE:
            for v in split_commas(value):
                headers.add(cname, v)
        else:
            headers.add(cname, value)
    errors.extend(_validate(headers, method))
    clen_text = headers.get("Content-Length")
    if clen_text is not None:
        clen_text = clen_text.strip()
        if not clen_text.isdigit():
            errors.append("bad Content-Length")
        else:
            clen = int(clen_text)
            if clen > len(body):
                errors.append("Content-Length larger than body")
            body = body[:clen]  # extra datagram bytes are discarded (RFC 3261 §18.3)
    if errors:
        partial = None if is_response else PartialRequest(method, headers)
        raise SipParseError(errors[0], not is_response and uri is not None, partial)
    if is_response:
        return SipResponse(headers=headers, body=body, status=status, reason=reason)
    assert uri is not None
    return SipRequest(headers=headers, body=body, method=method, uri=uri)


def _lenient_headers(lines: list[str]) -> Headers:
    h = Headers()
    for line in lines:
        name, colon, value = line.partition(":")
        if colon and is_token(name.strip()):
            h.add(name.strip(), value.strip())
    return h


def _validate(headers: Headers, method: str) -> list[str]:
    errors: list[str] = []
    for name in _REQUIRED:
        value = headers.get(name)
        if value is None or not value.strip():
            errors.append(f"missing {name}")
    if errors:
        return errors
    for name in ("Call-ID", "From", "To", "CSeq", "Max-Forwards"):
        if len(headers.get_all(name)) > 1:
            errors.append(f"duplicate {name}")
    try:
        for v in headers.get_all("Via"):
            parse_via(v)
    except HeaderError as exc:
        errors.append(f"bad Via: {exc}")
    for name in ("From", "To"):
        try:
            parse_name_addr(headers.get(name) or "")
        except HeaderError as exc:
            errors.append(f"bad {name}: {exc}")
    try:
        cseq = parse_cseq(headers.get("CSeq") or "")
        if method and cseq.method != method:
            errors.append("CSeq method does not match request method")
    except HeaderError as exc:
        errors.append(str(exc))
    mf = headers.get("Max-Forwards")
    if mf is not None and not mf.strip().isdigit():
        errors.append("bad Max-Forwards")
    return errors


class FramingError(ValueError):
    """The byte stream cannot be framed any more; the connection should be closed."""


class StreamFramer:
    """Cuts a TCP byte stream into messages using Content-Length (RFC 3261 §18.3).

    Content-Length is mandatory on streams; when it is missing we take the body as empty, which
    is what the sender must have meant if it sent no Content-Length. Keep-alive CRLFs (RFC 5626
    pings) between messages are skipped."""

    def __init__(self, max_size: int = MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._max = max_size

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            i = 0
            while i < len(self._buf) and self._buf[i] in (13, 10):
                i += 1
            if i:
                del self._buf[:i]
            if not self._buf:
                return out
            crlf = self._buf.find(b"\r\n\r\n")
            lf = self._buf.find(b"\n\n")
            if crlf >= 0 and (lf < 0 or crlf <= lf):
                head_end, sep = crlf, 4
            elif lf >= 0:
                head_end, sep = lf, 2
            else:
                if len(self._buf) > self._max:
                    raise FramingError("header section too large")
                return out
            clen = _content_length(bytes(self._buf[:head_end]))
            total = head_end + sep + clen
            if total > self._max:
                raise FramingError("message too large")
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]


def _content_length(head: bytes) -> int:
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            value = value.strip()
            if not value.isdigit():
                raise FramingError("bad Content-Length")
            return int(value)
    return 0
