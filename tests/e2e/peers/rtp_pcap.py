"""Write and read small RTP pcap files for SIPp's ``play_pcap_audio``.

SIPp replays the UDP payloads of a pcap (Ethernet or Linux-cooked link layer) from
its ``-mp`` port towards the remote RTP address, paced by the capture timestamps.
It does not rewrite the RTP header, so PT, SSRC, sequence numbers and timestamps are
exactly what we put here. Generated at test time into a temp dir; never committed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
EVENT_DIGITS = {v: k for k, v in DTMF_EVENTS.items()}

_LINKTYPE_ETHERNET = 1
_LINKTYPE_LINUX_SLL = 113


@dataclass(frozen=True)
class RtpPacket:
    time: float
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    src: tuple[str, int] = ("127.0.0.1", 0)
    dst: tuple[str, int] = ("127.0.0.1", 0)

    def encode(self) -> bytes:
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        header = struct.pack("!BBHII", 0x80, b1, self.seq & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)
        return header + self.payload

    @property
    def event(self) -> tuple[int, bool, int, int] | None:
        """(event, end, volume, duration) when the payload is an RFC 4733 event."""
        if len(self.payload) < 4:
            return None
        event, flags, duration = struct.unpack("!BBH", self.payload[:4])
        return event, bool(flags & 0x80), flags & 0x3F, duration


def rfc4733_packets(
    digits: str,
    *,
    payload_type: int = 96,
    clock_rate: int = 8000,
    ssrc: int = 0x1234ABCD,
    first_seq: int = 1000,
    first_timestamp: int = 160000,
    start_time: float = 1_700_000_000.0,
    tone_ms: int = 160,
    gap_ms: int = 100,
    ptime_ms: int = 20,
    volume: int = 10,
    end_repeats: int = 3,
) -> list[RtpPacket]:
    """RFC 4733 telephone-event packets for ``digits``, as a real phone sends them.

    Per digit: the first packet carries the marker bit, the duration grows by one
    ptime per packet (starting at one ptime), all packets of an event share its RTP
    timestamp, and the final packet (E bit) is sent ``end_repeats`` times.
    """
    if not 0 <= payload_type <= 127:
        raise ValueError("payload type out of range")
    packets: list[RtpPacket] = []
    seq, ts, now = first_seq, first_timestamp, start_time
    step = clock_rate * ptime_ms // 1000
    count = max(1, tone_ms // ptime_ms)
    for digit in digits.upper():
        event = DTMF_EVENTS[digit]
        for i in range(count):
            last = i == count - 1
            duration = step * (i + 1)
            flags = (0x80 if last else 0) | (volume & 0x3F)
            payload = struct.pack("!BBH", event, flags, duration)
            for _ in range(end_repeats if last else 1):
                packets.append(RtpPacket(now, payload_type, i == 0, seq, ts, ssrc, payload))
                seq += 1  # each copy its own seq (SIPp's own samples reuse one; both occur)
            now += ptime_ms / 1000.0
        ts += step * count + clock_rate * gap_ms // 1000
        now += gap_ms / 1000.0
    return packets


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(pkt: RtpPacket, src: tuple[str, int], dst: tuple[str, int], ident: int) -> bytes:
    rtp = pkt.encode()
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(rtp), 0) + rtp  # UDP checksum 0 = none (IPv4)
    ip_wo_sum = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0,
        bytes(int(x) for x in src[0].split(".")), bytes(int(x) for x in dst[0].split(".")),
    )
    ip = ip_wo_sum[:10] + struct.pack("!H", _ip_checksum(ip_wo_sum)) + ip_wo_sum[12:]
    eth = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + udp


def write_rtp_pcap(
    path: str | Path,
    packets: list[RtpPacket],
    *,
    src: tuple[str, int] = ("127.0.0.1", 40000),
    dst: tuple[str, int] = ("127.0.0.1", 40002),
) -> Path:
    """Classic little-endian pcap, Ethernet link type (what SIPp's own samples use)."""
    out = Path(path)
    parts = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET)]
    for i, pkt in enumerate(packets):
        frame = _frame(pkt, src, dst, i)
        sec = int(pkt.time)
        usec = int(round((pkt.time - sec) * 1e6))
        parts.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    out.write_bytes(b"".join(parts))
    return out


def write_dtmf_pcap(path: str | Path, digits: str, *, payload_type: int = 96, **kwargs: int) -> Path:
    """An RFC 4733 pcap for SIPp's play_pcap_audio (see rfc4733_packets for kwargs)."""
    return write_rtp_pcap(path, rfc4733_packets(digits, payload_type=payload_type, **kwargs))


def read_rtp_pcap(path: str | Path) -> list[RtpPacket]:
    """Parse the UDP/RTP packets of a classic pcap (Ethernet or Linux SLL, IPv4)."""
    data = Path(path).read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    link = struct.unpack(endian + "I", data[20:24])[0]
    skip = {_LINKTYPE_ETHERNET: 14, _LINKTYPE_LINUX_SLL: 16}.get(link)
    if skip is None:
        raise ValueError(f"{path}: unsupported link type {link}")
    out: list[RtpPacket] = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = frame[skip:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        udp = ip[ihl:]
        sport, dport = struct.unpack("!HH", udp[:4])
        rtp = udp[8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        cc = rtp[0] & 0x0F
        _b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", rtp[:12])
        src_ip = ".".join(str(b) for b in ip[12:16])
        dst_ip = ".".join(str(b) for b in ip[16:20])
        out.append(
            RtpPacket(
                time=sec + frac / (1e9 if nano else 1e6),
                payload_type=b1 & 0x7F,
                marker=bool(b1 & 0x80),
                seq=seq,
                timestamp=ts,
                ssrc=ssrc,
                payload=rtp[12 + 4 * cc :],
                src=(src_ip, sport),
                dst=(dst_ip, dport),
            )
        )
    return out


def dtmf_digits(packets: list[RtpPacket], payload_type: int | None = None) -> str:
    """Digits in an RFC 4733 stream: one per distinct event timestamp."""
    seen: list[tuple[int, int]] = []
    for pkt in packets:
        if payload_type is not None and pkt.payload_type != payload_type:
            continue
        ev = pkt.event
        if ev is None or ev[0] not in EVENT_DIGITS:
            continue
        key = (pkt.timestamp, ev[0])
        if key not in seen:
            seen.append(key)
    return "".join(EVENT_DIGITS[event] for _ts, event in seen)
