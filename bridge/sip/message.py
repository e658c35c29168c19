"""SIP message model, parser and serialiser (RFC 3261 §7, §20) plus TCP stream framing (§18.3)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from .headers import (
    MULTI_VALUE, CSeq, HeaderError, NameAddr, Via, canonical_name, is_token, parse_cseq,
    parse_name_addr, parse_via, split_commas, to_int,
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
    """`status` is what a request deserves: 400, or 505 for a SIP version other than 2.0."""

    def __init__(self, reason: str, request_line_ok: bool = False, partial: PartialRequest | None = None,
                 status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.request_line_ok = request_line_ok
        self.partial = partial
        self.status = status


REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large",
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
_SINGLE = ("Call-ID", "From", "To", "CSeq", "Max-Forwards", "Content-Length", "Content-Type")
# Lists of addresses where an empty element (',,' or a trailing ',') is a syntax error.
_STRICT_LISTS = frozenset(("Via", "Contact", "Route", "Record-Route"))
_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)


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
    is_response = lines[0].startswith("SIP/")
    method = ""
    uri: SipUri | None = None
    status = 0
    reason = ""
    errors: list[str] = []
    if is_response:
        parts = lines[0].strip().split(" ", 2)
        if parts[0] != "SIP/2.0":
            raise SipParseError("bad SIP version")
        code = to_int(parts[1], 3) if len(parts) > 1 else None
        if code is None or len(parts[1]) != 3 or not 100 <= code <= 699:
            raise SipParseError("bad status code")
        status, reason = code, parts[2] if len(parts) > 2 else ""
    else:
        method, line_error, uri_text = _request_line(lines[0])
        if line_error.startswith("bad SIP version"):
            # The method is known, so a caller can still answer 505.
            raise SipParseError(line_error, True, PartialRequest(method, _lenient_headers(lines[1:])), 505)
        if line_error:
            errors.append(line_error)
        else:
            try:
                uri = parse_uri(uri_text, any_scheme=True)  # an unknown scheme is the UA's 416
                if uri.headers:
                    errors.append("bad Request-URI: header fields not allowed")  # RFC 4475 §3.1.2.11
            except UriError as exc:
                errors.append(f"bad Request-URI: {exc}")
                uri = None
    headers = Headers()
    for line in lines[1:]:
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not is_token(name):
            errors.append(f"malformed header line {line.strip()[:30]!r}")
            continue
        cname = canonical_name(name)
        value = value.strip()
        if cname.lower() in MULTI_VALUE:
            values = split_commas(value, keep_empty=True)
            if cname in _STRICT_LISTS and "" in values:
                errors.append(f"bad {cname}: empty list element")
            for v in values:
                if v:
                    headers.add(cname, v)
        else:
            headers.add(cname, value)
    errors.extend(_validate(headers, method))
    clen_text = headers.get("Content-Length")
    if clen_text is not None:
        clen = to_int(clen_text.strip(), 9)
        if clen is None:
            errors.append("bad Content-Length")
        else:
            if clen > len(body):
                errors.append("Content-Length larger than body")
            body = body[:clen]  # extra datagram bytes are discarded (RFC 3261 §18.3)
    if errors:
        partial = None if is_response or not method else PartialRequest(method, headers)
        raise SipParseError(errors[0], not is_response and uri is not None, partial)
    if is_response:
        return SipResponse(headers=headers, body=body, status=status, reason=reason)
    assert uri is not None
    return SipRequest(headers=headers, body=body, method=method, uri=uri)


def _request_line(line: str) -> tuple[str, str, str]:
    """(method, what is wrong with the line or "", Request-URI text) of `Method SP URI SP
    SIP/2.0`. Raises SipParseError for a line without a method: nothing there to answer."""
    method, sp, rest = line.partition(" ")
    if not sp or not is_token(method):
        raise SipParseError("bad request line")
    uri_text, sp, version = rest.rstrip(" \t").rpartition(" ")
    major, dot, minor = version[4:].partition(".")
    if not sp or version[:4].upper() != "SIP/":
        return method, "bad request line: no SIP version", ""
    if version.upper() != "SIP/2.0":
        if dot and to_int(major) is not None and to_int(minor) is not None:
            return method, f"bad SIP version {version}", ""
        return method, "bad request line: malformed SIP version", ""
    # RFC 4475 §3.1.2.8-10: single SP between the elements, none at the end, no LWS in the URI.
    if line != line.rstrip(" \t"):
        return method, "bad request line: trailing whitespace", ""
    if not uri_text or uri_text != uri_text.strip(" \t"):
        return method, "bad request line: extra whitespace", ""
    if " " in uri_text or "\t" in uri_text:
        return method, "bad Request-URI: whitespace inside", ""
    return method, "", uri_text


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
    for name in _SINGLE:
        if len(headers.get_all(name)) > 1:
            errors.append(f"duplicate {name}")  # RFC 4475 §3.3.8, §3.3.9
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
    if not method:
        return errors  # a response only needs what matches it to our transaction
    for name in ("Contact", "Route", "Record-Route"):
        for v in headers.get_all(name):
            if name == "Contact" and v == "*":
                continue
            try:
                parse_name_addr(v)
            except HeaderError as exc:
                errors.append(f"bad {name}: {exc}")
                break
    mf = headers.get("Max-Forwards")
    if mf is not None and ((n := to_int(mf.strip(), 3)) is None or n > 255):
        errors.append("bad Max-Forwards")  # 0-255 (RFC 4475 §3.1.2.4)
    date = headers.get("Date")
    if date is not None and not _DATE.fullmatch(date.strip()):
        errors.append("bad Date: not an RFC 1123 date in GMT")  # RFC 4475 §3.1.2.12
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

    @property
    def pending(self) -> bool:
        """True while part of a message is buffered (keep-alive CRLFs are never kept)."""
        return bool(self._buf)

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
    found: int | None = None
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            n = to_int(value.strip().decode("latin-1"), 9)
            if n is None or (found is not None and n != found):
                raise FramingError("bad Content-Length")  # RFC 4475 §3.1.2.3, §3.3.9
            found = n
    return found or 0
