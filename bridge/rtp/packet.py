"""RTP packets (RFC 3550 section 5.1): parse, serialise, fast header builder."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

_HEADER = struct.Struct("!BBHII")
RTP_HEADER_SIZE = 12
# (sequence, timestamp, SSRC) from offset 2 of a packet of at least 12 bytes: the receive
# fast path's only header parse, as a bound C function (no Python call frame).
unpack_seq_ts_ssrc = struct.Struct("!HII").unpack_from


class RtpError(ValueError):
    """Not a valid RTP packet."""


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: list[int] = field(default_factory=list)
    # (profile-defined 16 bits, extension data whose length is a multiple of 4)
    extension: tuple[int, bytes] | None = None
    # Number of padding octets (parse: what was stripped; serialize: what to add).
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        n = len(data)
        if n < RTP_HEADER_SIZE:
            raise RtpError(f"packet too short ({n} bytes)")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if b0 >> 6 != 2:
            raise RtpError(f"RTP version {b0 >> 6}")
        offset = RTP_HEADER_SIZE
        cc = b0 & 0x0F
        if n < offset + 4 * cc:
            raise RtpError("truncated CSRC list")
        csrcs = list(struct.unpack_from(f"!{cc}I", data, offset)) if cc else []
        offset += 4 * cc
        extension = None
        if b0 & 0x10:
            if n < offset + 4:
                raise RtpError("truncated header extension")
            profile, words = struct.unpack_from("!HH", data, offset)
            offset += 4
            if n < offset + 4 * words:
                raise RtpError("truncated header extension data")
            extension = (profile, bytes(data[offset:offset + 4 * words]))
            offset += 4 * words
        end = n
        padding = 0
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0 or offset + padding > n:
                raise RtpError(f"bad padding length {padding}")
            end -= padding
        return cls(b1 & 0x7F, seq, ts, ssrc, bytes(data[offset:end]), bool(b1 & 0x80),
                   csrcs, extension, padding)

    def serialize(self) -> bytes:
        """The datagram. Raises RtpError (never struct.error) for fields that do not fit."""
        if len(self.csrcs) > 15:
            raise RtpError("at most 15 CSRCs")
        if self.padding and not 0 < self.padding < 256:
            raise RtpError("padding must be 1..255")
        b0 = 0x80 | len(self.csrcs)
        if self.padding:
            b0 |= 0x20
        if self.extension is not None:
            b0 |= 0x10
        try:
            parts = [_HEADER.pack(b0, (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                                  self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                                  self.ssrc & 0xFFFFFFFF)]
            if self.csrcs:
                parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
            if self.extension is not None:
                profile, ext = self.extension
                if len(ext) % 4:
                    raise RtpError("header extension length must be a multiple of 4")
                parts.append(struct.pack("!HH", profile, len(ext) // 4) + ext)
        except struct.error as exc:
            raise RtpError(f"RTP header field out of range: {exc}") from None
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def build_rtp_header(payload_type: int, sequence: int, timestamp: int, ssrc: int,
                     marker: bool = False) -> bytes:
    """The 12-byte fixed header, for the per-packet send path."""
    return _HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF,
                        timestamp & 0xFFFFFFFF, ssrc)


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192-223 share the byte where RTP has M+PT."""
    return len(data) >= 8 and data[0] >> 6 == 2 and 192 <= data[1] <= 223
