"""RTP packet and RTCP parse/serialise round trips."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.rtp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtpError,
    RtpPacket,
    SenderReport,
    SourceDescription,
    build_compound,
    build_rtp_header,
    is_rtcp,
    parse_rtcp,
)
from bridge.rtp.rtcp import UnknownRtcp


def test_minimal_round_trip() -> None:
    pkt = RtpPacket(0, 65535, 0xFFFFFFFF, 0xDEADBEEF, b"\xff" * 160, marker=True)
    data = pkt.serialize()
    assert len(data) == 172 and data[:2] == b"\x80\x80"
    assert RtpPacket.parse(data) == pkt


def test_fast_header_matches_full_serializer() -> None:
    hdr = build_rtp_header(8, 70000, 2**32 + 5, 1234, marker=True)
    assert hdr == RtpPacket(8, 70000 & 0xFFFF, 5, 1234, marker=True).serialize()
    assert len(hdr) == 12


def test_csrc_extension_padding_parsed() -> None:
    ext = b"\x10\x01\x02\x03" + b"\x00" * 4
    raw = (struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 96, 7, 1000, 42)
           + struct.pack("!II", 11, 22) + struct.pack("!HH", 0xBEDE, 2) + ext
           + b"opus" + b"\x00\x00\x03")
    pkt = RtpPacket.parse(raw)
    assert pkt.csrcs == [11, 22]
    assert pkt.extension == (0xBEDE, ext)
    assert pkt.payload == b"opus" and pkt.padding == 3
    assert pkt.serialize() == raw


@given(pt=st.integers(0, 127), seq=st.integers(0, 65535), ts=st.integers(0, 2**32 - 1),
       ssrc=st.integers(0, 2**32 - 1), payload=st.binary(max_size=64), marker=st.booleans(),
       csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=15),
       ext=st.none() | st.tuples(st.integers(0, 65535), st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4))),
       padding=st.integers(0, 20))
def test_round_trip_property(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool,
                             csrcs: list[int], ext: tuple[int, bytes] | None, padding: int) -> None:
    pkt = RtpPacket(pt, seq, ts, ssrc, payload, marker, csrcs, ext, padding)
    assert RtpPacket.parse(pkt.serialize()) == pkt


@pytest.mark.parametrize("raw", [
    b"", b"\x80\x00", b"\x00" * 12,                       # short, version 0
    b"\x8f" + b"\x00" * 11,                               # 15 CSRCs announced, none present
    b"\x90" + b"\x00" * 11 + b"\x00\x00\x00\x05",         # extension longer than packet
    b"\xa0" + b"\x00" * 11 + b"\x00",                     # padding length 0
    b"\xa0" + b"\x00" * 11 + b"\x09",                     # padding longer than packet
])
def test_garbage_raises(raw: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(raw)


@given(st.binary(max_size=80))
def test_parse_never_raises_anything_else(raw: bytes) -> None:
    try:
        RtpPacket.parse(raw)
    except RtpError:
        pass
    try:
        parse_rtcp(raw)
    except RtcpError:
        pass


def test_is_rtcp_by_packet_type() -> None:
    assert is_rtcp(ReceiverReport(1).serialize())
    assert not is_rtcp(RtpPacket(0, 1, 1, 1, b"x" * 160).serialize())
    # Marker set on PT 96..127 gives second byte 224..255: still RTP.
    assert not is_rtcp(RtpPacket(101, 1, 1, 1, b"x" * 4, marker=True).serialize())
    assert not is_rtcp(RtpPacket(72, 1, 1, 1, b"", marker=False).serialize())
    assert not is_rtcp(b"\x80\xc8")


def test_rtcp_sr_rr_sdes_bye_compound_round_trip() -> None:
    blocks = [ReportBlock(0xAAAA, 64, 1234, 70000, 55, 0x12345678, 65536),
              ReportBlock(0xBBBB, 0, -3, 5, 0)]
    sr = SenderReport(0x1111, 0x0123456789ABCDEF, 160000, 1000, 160000, blocks)
    rr = ReceiverReport(0x2222, blocks[:1])
    sdes = SourceDescription([(0x1111, "tutti@bridge"), (0x3333, "abc")])
    bye = Bye([0x1111], "call ended")
    data = build_compound([sr, rr, sdes, bye])
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == [sr, rr, sdes, bye]


def test_rtcp_unknown_type_and_errors() -> None:
    app = struct.pack("!BBH", 0x80, 204, 1) + b"name"
    assert parse_rtcp(app) == [UnknownRtcp(204, b"name")]
    with pytest.raises(RtcpError):
        parse_rtcp(struct.pack("!BBH", 0x80, 200, 10) + b"\x00" * 8)     # length beyond datagram
    with pytest.raises(RtcpError):
        parse_rtcp(struct.pack("!BBH", 0x81, 201, 1) + b"\x00" * 4)      # RR announces a block
    with pytest.raises(RtcpError):
        parse_rtcp(b"\x00\xc9\x00\x00")


def test_sdes_skips_other_items() -> None:
    chunk = struct.pack("!I", 9) + b"\x02\x03bob" + b"\x01\x02ab" + b"\x00"
    chunk += bytes(-len(chunk) % 4)
    data = struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk
    assert parse_rtcp(data) == [SourceDescription([(9, "ab")])]
