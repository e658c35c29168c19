"""SDP (RFC 4566) data model, tolerant parser and serialiser.

The parser accepts what real clients send: CRLF or bare LF, trailing spaces,
blank lines, unknown line types and attributes (all kept and written back).
It raises :class:`SdpError` only when the text cannot be SDP at all (no v=,
lines without ``x=``, unusable o=/c=/m= lines).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SdpError

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

# Static payload types (RFC 3551) that may arrive without a=rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1),
    7: ("LPC", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    10: ("L16", 44100, 2),
    11: ("L16", 44100, 1),
    12: ("QCELP", 8000, 1),
    13: ("CN", 8000, 1),
    15: ("G728", 8000, 1),
    18: ("G729", 8000, 1),
}

_LINE = re.compile(r"^([a-zA-Z])=(.*)$")


def is_number(text: str, max_digits: int = 10) -> bool:
    """ASCII decimal digits only, and few of them: ``str.isdigit`` also accepts '²' and '①',
    which ``int`` refuses, and ``int`` refuses more than 4,300 digits."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


@dataclass(slots=True)
class Connection:
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    @property
    def is_null(self) -> bool:
        """RFC 2543 style hold: the peer asks us not to send."""
        return self.address in ("0.0.0.0", "::", "0:0:0:0:0:0:0:0")

    def serialize(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @classmethod
    def parse(cls, value: str) -> Connection:
        parts = value.split()
        if len(parts) != 3 or not parts[2].split("/")[0]:
            raise SdpError(f"bad c= line: {value[:80]!r}")
        # Multicast TTL / count suffixes ("224.2.1.1/127/3") are not ours to use.
        return cls(parts[0], parts[1].upper(), parts[2].split("/")[0])


@dataclass(slots=True)
class Origin:
    username: str = "-"
    session_id: str = "0"
    session_version: str = "0"
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def serialize(self) -> str:
        return " ".join((self.username, self.session_id, self.session_version,
                         self.nettype, self.addrtype, self.address))

    @classmethod
    def parse(cls, value: str) -> Origin:
        parts = value.split()
        if len(parts) != 6:
            raise SdpError(f"bad o= line: {value!r}")
        return cls(*parts)


@dataclass(slots=True)
class Attribute:
    name: str
    value: str | None = None

    def serialize(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Attribute:
        name, sep, value = text.partition(":")
        return cls(name.strip(), value.strip() if sep else None)


@dataclass(frozen=True, slots=True)
class RtpMap:
    encoding: str
    clock_rate: int
    channels: int = 1


def _attr_value(attributes: list[Attribute], name: str) -> str | None:
    for attr in attributes:
        if attr.name == name:
            return attr.value
    return None


def _direction(attributes: list[Attribute]) -> str | None:
    for attr in attributes:
        if attr.name in DIRECTIONS:
            return attr.name
    return None


@dataclass(slots=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    # Other media-level lines (i=, b=, k=, unknown) in original order.
    extra: list[tuple[str, str]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        return _attr_value(self.attributes, name)

    @property
    def direction(self) -> str | None:
        """Media-level direction attribute, or None when absent."""
        return _direction(self.attributes)

    def payload_types(self) -> list[int]:
        """Numeric formats in offer order (non-numeric ones are skipped)."""
        return [int(f) for f in self.formats if is_number(f)]

    def rtpmaps(self) -> dict[int, RtpMap]:
        """a=rtpmap per payload type, with RFC 3551 defaults for static types."""
        maps: dict[int, RtpMap] = {}
        for attr in self.attributes:
            if attr.name != "rtpmap" or not attr.value:
                continue
            pt_text, _, spec = attr.value.partition(" ")
            pieces = spec.strip().split("/")
            if not is_number(pt_text) or len(pieces) < 2 or not is_number(pieces[1].strip()):
                continue  # unusable rtpmap: ignore rather than fail the call
            channels = int(pieces[2]) if len(pieces) > 2 and is_number(pieces[2].strip()) else 1
            maps[int(pt_text)] = RtpMap(pieces[0].strip(), int(pieces[1]), channels)
        for pt in self.payload_types():
            if pt not in maps and pt in STATIC_PAYLOAD_TYPES:
                maps[pt] = RtpMap(*STATIC_PAYLOAD_TYPES[pt])
        return maps

    def fmtps(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for attr in self.attributes:
            if attr.name == "fmtp" and attr.value:
                pt_text, _, params = attr.value.partition(" ")
                if is_number(pt_text):
                    out[int(pt_text)] = params.strip()
        return out

    def serialize_lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        lines = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}".rstrip()]
        lines += [f"{k}={v}" for k, v in self.extra if k == "i"]
        if self.connection is not None:
            lines.append(f"c={self.connection.serialize()}")
        lines += [f"{k}={v}" for k, v in self.extra if k != "i"]
        lines += [f"a={a.serialize()}" for a in self.attributes]
        return lines

    @classmethod
    def parse_mline(cls, value: str) -> MediaDescription:
        parts = value.split()
        if len(parts) < 3:
            raise SdpError(f"bad m= line: {value!r}")
        port_text, _, count_text = parts[0 + 1].partition("/")
        if not is_number(port_text) or int(port_text) > 65535 or (count_text and not is_number(count_text)):
            raise SdpError(f"bad port in m= line: {value!r}")
        return cls(parts[0], int(port_text), parts[2], parts[3:],
                   int(count_text) if count_text else None)


@dataclass(slots=True)
class SessionDescription:
    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: Connection | None = None
    times: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    version: int = 0
    # Other session-level lines (i=, u=, e=, p=, b=, r=, z=, k=, unknown) in order.
    extra: list[tuple[str, str]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        return _attr_value(self.attributes, name)

    @property
    def direction(self) -> str | None:
        return _direction(self.attributes)

    def media_direction(self, m: MediaDescription) -> str:
        """Effective direction: media level, else session level, else sendrecv."""
        return m.direction or self.direction or "sendrecv"

    def media_connection(self, m: MediaDescription) -> Connection | None:
        """Media-level c= overrides session-level c=."""
        return m.connection if m.connection is not None else self.connection

    def serialize(self) -> bytes:
        lines = [f"v={self.version}", f"o={self.origin.serialize()}", f"s={self.session_name or '-'}"]
        before_c = ("i", "u", "e", "p")
        lines += [f"{k}={v}" for k, v in self.extra if k in before_c]
        if self.connection is not None:
            lines.append(f"c={self.connection.serialize()}")
        lines += [f"{k}={v}" for k, v in self.extra if k == "b"]
        for t in self.times or ["0 0"]:
            lines.append(f"t={t}")
        lines += [f"{k}={v}" for k, v in self.extra if k not in before_c and k != "b"]
        lines += [f"a={a.serialize()}" for a in self.attributes]
        for m in self.media:
            lines += m.serialize_lines()
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse SDP text; raise :class:`SdpError` if it is not usable."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise SdpError("empty SDP body")
    sd = SessionDescription(times=[])
    current: MediaDescription | None = None
    seen_v = seen_o = False
    for index, line in enumerate(lines):
        match = _LINE.match(line)
        if match is None:
            raise SdpError(f"line {index + 1} is not <type>=<value>: {line[:40]!r}")
        kind, value = match.group(1).lower(), match.group(2).strip()
        if index == 0 and kind != "v":
            raise SdpError("SDP must start with v=")
        if kind == "v":
            if seen_v or not is_number(value):
                raise SdpError(f"bad or repeated v= line: {value!r}")
            sd.version, seen_v = int(value), True
        elif kind == "m":
            current = MediaDescription.parse_mline(value)
            sd.media.append(current)
        elif kind == "a":
            (current.attributes if current else sd.attributes).append(Attribute.parse(value))
        elif kind == "c":
            conn = Connection.parse(value)
            if current is not None:
                current.connection = conn
            else:
                sd.connection = conn
        elif current is not None:
            current.extra.append((kind, value))
        elif kind == "o":
            sd.origin, seen_o = Origin.parse(value), True
        elif kind == "s":
            sd.session_name = value
        elif kind == "t":
            sd.times.append(value)
        else:
            sd.extra.append((kind, value))
    if not seen_o:
        raise SdpError("missing o= line")
    if not sd.times:
        sd.times = ["0 0"]
    return sd
