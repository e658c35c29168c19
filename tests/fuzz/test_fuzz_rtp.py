"""RTP and RTCP parsers: only their own error escapes, valid packets round-trip, structural
defects are caught by the length checks (never IndexError/struct.error), RFC 3550 A.2."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.rtp.packet import RTP_HEADER_SIZE, RtpError, RtpPacket
from bridge.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    build_compound,
    parse_rtcp,
)
from tests.fuzz._settings import fuzz
from tests.fuzz.targets import check_rtcp, check_rtp, rtcp_headers

U32 = st.integers(0, 2**32 - 1)

# -- RTP ---------------------------------------------------------------------------------------
rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127), sequence=st.integers(0, 65535), timestamp=U32, ssrc=U32,
    payload=st.binary(max_size=200), marker=st.booleans(),
    csrcs=st.lists(U32, max_size=15),
    extension=st.none() | st.tuples(st.integers(0, 65535),
                                    st.binary(max_size=40).map(lambda b: b + bytes(-len(b) % 4))),
    padding=st.integers(0, 255),
)


@fuzz(600)
@given(st.binary(max_size=300))
def test_rtp_parse_arbitrary_bytes(data: bytes) -> None:
    check_rtp(data)


@fuzz(300)
@given(rtp_packets)
def test_rtp_round_trip(pkt: RtpPacket) -> None:
    data = pkt.serialize()
    assert RtpPacket.parse(data) == pkt
    assert check_rtp(data) == pkt


@fuzz(250)
@given(rtp_packets, st.integers(0, 255), st.integers(0, 400), st.integers(0, 255), st.integers(0, 65535))
def test_rtp_mutated_headers(pkt: RtpPacket, b0: int, cut: int, last: int, ext_words: int) -> None:
    """A valid packet with its first byte (version, P, X, CC), length, padding count or
    extension length replaced: whatever is left parses consistently or raises RtpError."""
    data = bytearray(pkt.serialize())
    variants = [bytes([b0]) + data[1:], data[:cut], data[:-1] + bytes([last])]
    if pkt.extension is not None:
        at = RTP_HEADER_SIZE + 4 * len(pkt.csrcs) + 2
        variants.append(data[:at] + struct.pack("!H", ext_words) + data[at + 2:])
    for v in variants:
        check_rtp(bytes(v))


def _defects(pkt: RtpPacket) -> list[tuple[str, bytes]]:
    """Each structural defect of RFC 3550 5.1 applied to a valid packet."""
    data = pkt.serialize()
    header = RTP_HEADER_SIZE + 4 * len(pkt.csrcs)
    ext_len = 0 if pkt.extension is None else 4 + len(pkt.extension[1])
    out = [("short header", data[:min(len(data), RTP_HEADER_SIZE) - 1])]
    for version in (0, 1, 3):
        out.append((f"version {version}", bytes([data[0] & 0x3F | version << 6]) + data[1:]))
    # More CSRCs announced than the packet holds.
    room = (len(data) - RTP_HEADER_SIZE) // 4
    if room < 15:
        out.append(("CSRC list past the end", bytes([data[0] & 0xF0 | 15]) + data[1:RTP_HEADER_SIZE]
                    + data[RTP_HEADER_SIZE:RTP_HEADER_SIZE + 4 * min(room, 14)]))
    # Extension bit set with no room for the extension header, or a length past the end.
    bare = RtpPacket(pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc, csrcs=pkt.csrcs).serialize()
    out.append(("extension header past the end", bytes([bare[0] | 0x10]) + bare[1:] + b"\xbe\xde"))
    if pkt.extension is not None:
        words = (len(data) - header - 4) // 4 + 1
        out.append(("extension past the end",
                    data[:header + 2] + struct.pack("!H", words) + data[header + 4:]))
    # Padding count beyond what follows the header (and extension), or zero.
    unpadded = RtpPacket(pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.payload,
                         pkt.marker, pkt.csrcs, pkt.extension).serialize()
    after = len(unpadded) - header - ext_len
    padded = bytes([unpadded[0] | 0x20]) + unpadded[1:]
    if after + 2 <= 255:     # the count covers itself: after + 1 would be exactly everything
        out.append(("padding past the end", padded + bytes([after + 2])))
    out.append(("padding count 0", padded + b"\x00"))
    return out


@fuzz(300)
@given(rtp_packets)
def test_rtp_structural_defects_raise_rtp_error(pkt: RtpPacket) -> None:
    for name, data in _defects(pkt):
        with pytest.raises(RtpError):
            RtpPacket.parse(data)
        check_rtp(data)


def test_rtp_serialize_out_of_range_fields_raise_rtp_error() -> None:
    for pkt in (RtpPacket(0, 1, 1, 1, csrcs=[2**32]), RtpPacket(0, 1, 1, 1, csrcs=[-1]),
                RtpPacket(0, 1, 1, 1, extension=(65536, b"")), RtpPacket(0, 1, 1, 1, padding=256),
                RtpPacket(0, 1, 1, 1, extension=(1, bytes(4 * 65536))), RtpPacket(0, 1, 1, 1, csrcs=[0] * 16)):
        with pytest.raises(RtpError):
            pkt.serialize()


# -- RTCP --------------------------------------------------------------------------------------
def _short_text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(st.characters(codec="utf-8"), max_size=max_size).filter(
        lambda t: len(t.encode("utf-8")) <= 255)


blocks = st.builds(ReportBlock, ssrc=U32, fraction_lost=st.integers(0, 255),
                   cumulative_lost=st.integers(-0x800000, 0x7FFFFF), highest_seq=U32, jitter=U32,
                   lsr=U32, dlsr=U32)
senders = st.builds(SenderReport, ssrc=U32, ntp_timestamp=st.integers(0, 2**64 - 1), rtp_timestamp=U32,
                    packet_count=U32, octet_count=U32, reports=st.lists(blocks, max_size=4))
receivers = st.builds(ReceiverReport, ssrc=U32, reports=st.lists(blocks, max_size=4))
sdes = st.builds(SourceDescription, chunks=st.lists(st.tuples(U32, _short_text()), max_size=4))
byes = st.builds(Bye, ssrcs=st.lists(U32, max_size=4), reason=st.none() | _short_text())
apps = st.builds(UnknownRtcp, packet_type=st.sampled_from([204, 205, 206, 207]),
                 body=st.binary(max_size=24).map(lambda b: b + bytes(-len(b) % 4)))
RtcpPart = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcp


def _serialize(p: RtcpPart) -> bytes:
    if isinstance(p, UnknownRtcp):
        return struct.pack("!BBH", 0x80, p.packet_type, len(p.body) // 4) + p.body
    return build_compound([p])


compounds = st.tuples(senders | receivers, st.lists(senders | receivers | sdes | byes | apps, max_size=4)).map(
    lambda t: [t[0], *t[1]])


@fuzz(600)
@given(st.binary(max_size=300))
def test_rtcp_parse_arbitrary_bytes(data: bytes) -> None:
    check_rtcp(data)


@fuzz(150)
@given(compounds)
def test_rtcp_compound_round_trip(parts: list[RtcpPart]) -> None:
    data = b"".join(_serialize(p) for p in parts)
    assert parse_rtcp(data) == parts
    assert parse_rtcp(data, strict=True) == parts
    assert check_rtcp(data) == parts


@fuzz(150)
@given(compounds, st.integers(1, 63), st.data())
def test_rtcp_padding_only_on_the_last_packet(parts: list[RtcpPart], words: int, data: st.DataObject) -> None:
    """Padding (a whole number of words, count in the last octet) is fine on the last packet of a
    compound and invalid on any other; a padding count that is 0 or longer than the packet is
    invalid everywhere."""
    raw = [_serialize(p) for p in parts]
    pad = bytes(4 * words - 1) + bytes([4 * words])

    def padded(chunk: bytes, padding: bytes = pad) -> bytes:
        b0, pt, n = struct.unpack_from("!BBH", chunk)
        return struct.pack("!BBH", b0 | 0x20, pt, n + len(padding) // 4) + chunk[4:] + padding

    last = b"".join(raw[:-1]) + padded(raw[-1])
    assert parse_rtcp(last) == parts
    if len(parts) > 1:
        assert parse_rtcp(last, strict=True) == parts
        i = data.draw(st.integers(0, len(raw) - 2), label="padded packet")
        with pytest.raises(RtcpError):
            parse_rtcp(b"".join(raw[:i]) + padded(raw[i]) + b"".join(raw[i + 1:]))
    bad_pads = [bytes(4 * words)]                                  # count 0
    beyond = 4 * words + len(raw[-1]) - 3                           # more than the packet's body
    if beyond <= 255:
        bad_pads.append(bytes(4 * words - 1) + bytes([beyond]))
    for bad in bad_pads:
        with pytest.raises(RtcpError):
            parse_rtcp(b"".join(raw[:-1]) + padded(raw[-1], bad))


@fuzz(150)
@given(compounds, st.data())
def test_rtcp_lying_lengths_and_early_end(parts: list[RtcpPart], data: st.DataObject) -> None:
    raw = [_serialize(p) for p in parts]
    whole = b"".join(raw)
    # The datagram ends early (anywhere but a packet boundary) or has bytes after the last packet.
    boundaries = {sum(map(len, raw[:i])) for i in range(len(raw) + 1)}
    cut = data.draw(st.integers(0, len(whole) - 1), label="cut")
    if cut not in boundaries:
        with pytest.raises(RtcpError):
            parse_rtcp(whole[:cut])
    with pytest.raises(RtcpError):
        parse_rtcp(whole + data.draw(st.binary(min_size=1, max_size=3), label="tail"))
    # One length field lies: longer than what is left raises; shorter desynchronises the walk,
    # which then must end in RtcpError or a consistent parse.
    i = data.draw(st.integers(0, len(raw) - 1), label="packet")
    start = sum(map(len, raw[:i]))
    b0, pt, n = struct.unpack_from("!BBH", whole, start)
    left = (len(whole) - start - 4) // 4
    longer = data.draw(st.integers(left + 1, 65535), label="longer")
    with pytest.raises(RtcpError):
        parse_rtcp(whole[:start] + struct.pack("!BBH", b0, pt, longer) + whole[start + 4:])
    shorter = data.draw(st.integers(0, max(0, n - 1)), label="shorter")
    check_rtcp(whole[:start] + struct.pack("!BBH", b0, pt, shorter) + whole[start + 4:])


@fuzz(200)
@given(compounds, st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6))
def test_rtcp_byte_mutations(parts: list[RtcpPart], flips: list[tuple[int, int]]) -> None:
    data = bytearray(b"".join(_serialize(p) for p in parts))
    for at, value in flips:
        data[at % len(data)] = value
    check_rtcp(bytes(data))


def test_rtcp_a2_examples() -> None:
    rr = ReceiverReport(1).serialize()
    bye = Bye([1]).serialize()
    sdes_only = SourceDescription([(1, "x")]).serialize()
    assert parse_rtcp(sdes_only) == [SourceDescription([(1, "x")])]       # reduced size: lenient only
    with pytest.raises(RtcpError):
        parse_rtcp(sdes_only, strict=True)
    with pytest.raises(RtcpError):
        parse_rtcp(bye + rr, strict=True)
    padded_first = bytes([rr[0] | 0x20]) + rr[1:3] + bytes([rr[3] + 1]) + rr[4:] + b"\x00\x00\x00\x04"
    assert parse_rtcp(padded_first) == [ReceiverReport(1)]                 # alone, it is the last
    with pytest.raises(RtcpError):
        parse_rtcp(padded_first + bye)                                     # padding in the middle
    with pytest.raises(RtcpError):
        parse_rtcp(padded_first, strict=True)                              # A.2: first is unpadded
    empty_padded = bytes([rr[0] | 0x20]) + rr[1:2] + b"\x00\x00"
    with pytest.raises(RtcpError):
        parse_rtcp(rr + empty_padded)                                      # P set, no count octet
    assert rtcp_headers(rr + bye) == [(0x80, 201, 1), (0x81, 203, 1)]
