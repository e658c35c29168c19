"""RTCP packets (RFC 3550 section 6): SR, RR, SDES (CNAME), BYE and compounds."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SR, RR, SDES, BYE = 200, 201, 202, 203
SDES_CNAME = 1
_BLOCK = struct.Struct("!IB3sIIII")


class RtcpError(ValueError):
    """Not a valid RTCP packet."""


def ntp_timestamp(seconds: float) -> int:
    """64-bit NTP-format timestamp. We feed it the monotonic clock: peers only echo
    its middle 32 bits back (LSR), so any clock that is consistent for us works."""
    return int(seconds * 65536.0 * 65536.0) & 0xFFFFFFFFFFFFFFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits used by LSR."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass(slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int        # 0..255, fixed point /256
    cumulative_lost: int      # signed 24 bit (duplicates can make it negative)
    highest_seq: int          # extended highest sequence number received
    jitter: int               # interarrival jitter, timestamp units
    lsr: int = 0
    dlsr: int = 0             # 1/65536 s

    def serialize(self) -> bytes:
        lost = max(-0x800000, min(0x7FFFFF, self.cumulative_lost)) & 0xFFFFFF
        return _BLOCK.pack(self.ssrc, self.fraction_lost & 0xFF, lost.to_bytes(3, "big"),
                           self.highest_seq & 0xFFFFFFFF, self.jitter & 0xFFFFFFFF,
                           self.lsr & 0xFFFFFFFF, self.dlsr & 0xFFFFFFFF)

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, lost_bytes, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        lost = int.from_bytes(lost_bytes, "big")
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, fraction, lost, highest, jitter, lsr, dlsr)


def _header(count: int, packet_type: int, body: bytes) -> bytes:
    if len(body) % 4:
        raise RtcpError("RTCP body must be 32-bit aligned")
    return struct.pack("!BBH", 0x80 | count, packet_type, len(body) // 4) + body


@dataclass(slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)

    def serialize(self) -> bytes:
        body = struct.pack("!IQIII", self.ssrc, self.ntp_timestamp, self.rtp_timestamp & 0xFFFFFFFF,
                           self.packet_count & 0xFFFFFFFF, self.octet_count & 0xFFFFFFFF)
        return _header(len(self.reports), SR, body + b"".join(r.serialize() for r in self.reports))


@dataclass(slots=True)
class ReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)

    def serialize(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(r.serialize() for r in self.reports)
        return _header(len(self.reports), RR, body)


@dataclass(slots=True)
class SourceDescription:
    """SDES with one CNAME per chunk; other items are skipped when parsing."""
    chunks: list[tuple[int, str]] = field(default_factory=list)

    def serialize(self) -> bytes:
        body = b""
        for ssrc, cname in self.chunks:
            text = cname.encode("utf-8")[:255]
            chunk = struct.pack("!IBB", ssrc, SDES_CNAME, len(text)) + text + b"\x00"
            body += chunk + bytes(-len(chunk) % 4)
        return _header(len(self.chunks), SDES, body)


@dataclass(slots=True)
class Bye:
    ssrcs: list[int] = field(default_factory=list)
    reason: str | None = None

    def serialize(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.ssrcs)
        if self.reason is not None:
            text = self.reason.encode("utf-8")[:255]
            tail = bytes((len(text),)) + text
            body += tail + bytes(-len(tail) % 4)
        return _header(len(self.ssrcs), BYE, body)


@dataclass(slots=True)
class UnknownRtcp:
    packet_type: int
    body: bytes


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcp


def _parse_blocks(body: bytes, offset: int, count: int) -> list[ReportBlock]:
    if offset + count * _BLOCK.size > len(body):
        raise RtcpError("truncated report blocks")
    return [ReportBlock.parse(body, offset + i * _BLOCK.size) for i in range(count)]


def _parse_sdes(body: bytes, count: int) -> SourceDescription:
    chunks: list[tuple[int, str]] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(body):
            raise RtcpError("truncated SDES chunk")
        ssrc = struct.unpack_from("!I", body, offset)[0]
        offset += 4
        cname = None
        while offset < len(body) and body[offset] != 0:
            if offset + 2 > len(body):
                raise RtcpError("truncated SDES item")
            item, length = body[offset], body[offset + 1]
            text = body[offset + 2:offset + 2 + length]
            if len(text) != length:
                raise RtcpError("truncated SDES item")
            if item == SDES_CNAME:
                cname = text.decode("utf-8", errors="replace")
            offset += 2 + length
        offset += 1               # the terminating null item
        offset += -offset % 4     # chunks are 32-bit aligned
        if cname is not None:
            chunks.append((ssrc, cname))
    return SourceDescription(chunks)


def parse_rtcp(data: bytes, *, strict: bool = False) -> list[RtcpPacket]:
    """Parse a (compound) RTCP datagram. Raises RtcpError on malformed input, never anything else.

    Always checked (RFC 3550 6.4.1 and A.2): every packet is version 2, the length fields add up
    exactly to the datagram, only the last packet carries padding, and the padding count is
    nonzero and fits the packet. ``strict`` adds the rest of the A.2 header check for a compound:
    the first packet is an SR or RR (so it carries no padding either), and padding is whole
    32-bit words (6.4.1). It is off by default so a lone BYE, SDES or APP (RFC 5506 reduced-size
    RTCP, which some clients send anyway) still parses."""
    packets: list[RtcpPacket] = []
    offset = 0
    n = len(data)
    if n < 4:
        raise RtcpError("RTCP packet too short")
    if strict and (data[0] & 0xE0 != 0x80 or data[1] not in (SR, RR)):
        raise RtcpError("compound RTCP must start with an unpadded SR or RR")
    while offset < n:
        if offset + 4 > n:
            raise RtcpError("trailing bytes after RTCP packet")
        b0, packet_type, words = struct.unpack_from("!BBH", data, offset)
        if b0 >> 6 != 2:
            raise RtcpError(f"RTCP version {b0 >> 6}")
        end = offset + 4 + 4 * words
        if end > n:
            raise RtcpError("RTCP length beyond datagram")
        body = data[offset + 4:end]
        if b0 & 0x20:
            if end != n:
                raise RtcpError("RTCP padding before the last packet of a compound")
            pad = body[-1] if body else 0
            if pad == 0 or pad > len(body) or (strict and pad % 4):
                raise RtcpError("bad RTCP padding")
            body = body[:-pad]
        count = b0 & 0x1F
        if packet_type == SR:
            if len(body) < 24:
                raise RtcpError("truncated SR")
            ssrc, ntp, rtp_ts, pkts, octets = struct.unpack_from("!IQIII", body)
            packets.append(SenderReport(ssrc, ntp, rtp_ts, pkts, octets, _parse_blocks(body, 24, count)))
        elif packet_type == RR:
            if len(body) < 4:
                raise RtcpError("truncated RR")
            packets.append(ReceiverReport(struct.unpack_from("!I", body)[0], _parse_blocks(body, 4, count)))
        elif packet_type == SDES:
            packets.append(_parse_sdes(body, count))
        elif packet_type == BYE:
            if len(body) < 4 * count:
                raise RtcpError("truncated BYE")
            ssrcs = list(struct.unpack_from(f"!{count}I", body)) if count else []
            reason = None
            rest = body[4 * count:]
            if rest and rest[0] <= len(rest) - 1:
                reason = rest[1:1 + rest[0]].decode("utf-8", errors="replace")
            packets.append(Bye(ssrcs, reason))
        else:
            packets.append(UnknownRtcp(packet_type, bytes(body)))
        offset = end
    return packets


def build_compound(packets: list[SenderReport | ReceiverReport | SourceDescription | Bye]) -> bytes:
    return b"".join(p.serialize() for p in packets)
