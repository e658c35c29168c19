"""Per-leg RTP session: unwrapping, latching, SSRC changes, RTCP statistics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.rtp import (
    Empty,
    Frame,
    ReceiverReport,
    RtpPacket,
    RtpSession,
    SenderReport,
    SourceDescription,
    parse_rtcp,
)

PHONE = ("192.0.2.10", 4000)
SDP_ADDR = ("10.0.0.10", 4000)     # private address from the phone's SDP


def session(**kw: object) -> RtpSession:
    args: dict = dict(local_ssrc=0x1234, codec_pt=0, codec_clock=8000, frame_ticks=160, dtmf_pt=101,
                      dtmf_clock=8000, remote_addr=SDP_ADDR)
    args.update(kw)
    return RtpSession(**args)


def audio(seq: int, ts: int, ssrc: int = 0xAAAA, pt: int = 0, size: int = 160) -> bytes:
    return RtpPacket(pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, bytes([seq % 256]) * size).serialize()


def play(s: RtpSession, packets: list[bytes], addr: tuple[str, int] = PHONE, t0: float = 0.0) -> list[int]:
    """Receive one packet per 20 ms and pop once per tick; return first payload byte of each Frame."""
    out = []
    for i, data in enumerate(packets):
        s.receive(data, addr, t0 + 0.02 * i)
        item = s.pop_frame()
        if isinstance(item, Frame):
            out.append(item.payload[0])
    for _ in range(3):
        item = s.pop_frame()
        if isinstance(item, Frame):
            out.append(item.payload[0])
    return out


def test_first_packet_held_during_probation_is_counted_not_played() -> None:
    """Played, it would queue behind the packet that ended the probation: the stream a frame
    late until the buffer's shrink dropped one a second later, wherever that fell."""
    s = session()
    s.receive(audio(10, 1000), PHONE, 0.0)
    assert s.pop_frame() == Empty()
    s.receive(audio(11, 1160), PHONE, 0.02)
    item = s.pop_frame()
    assert isinstance(item, Frame) and item.payload[0] == 11
    assert s.stats()["packets_received"] == 2 and s.last_received == 0.02
    assert s.stats()["cumulative_lost"] == 0
    # Played from the first tick after it came, one packet a tick: nothing for the shrink to drop.
    for i in range(2, 80):
        s.receive(audio(10 + i, 1000 + 160 * i), PHONE, 0.02 * i)
        item = s.pop_frame()
        assert isinstance(item, Frame) and item.payload[0] == 10 + i, (i, item)
    assert s.jitter.dropped == 0


def test_sequence_wrap_65535_to_0() -> None:
    s = session()
    seqs = list(range(65525, 65536)) + list(range(0, 10))
    got = play(s, [audio(q, 160 * i) for i, q in enumerate(seqs)])
    assert got == [q % 256 for q in seqs[1:]]       # the first: held on probation, not played
    st_ = s.stats()
    assert st_["cumulative_lost"] == 0 and st_["jitter_buffer"]["duplicates"] == 0
    assert s._source is not None and s._source.ext_max == 65536 + 9


def test_timestamp_wrap_2_32() -> None:
    s = session()
    base = 2**32 - 5 * 160
    got = play(s, [audio(i, base + 160 * i) for i in range(12)])
    assert got == list(range(1, 12))
    assert s.jitter.resyncs == 0 and s.jitter.lost == 0


def test_reordered_packet_across_wrap() -> None:
    s = session(jitter_min_ms=60)
    seqs = [65533, 65534, 0, 65535, 1, 2, 3, 4]
    tss = {65533: 0, 65534: 160, 65535: 320, 0: 480, 1: 640, 2: 800, 3: 960, 4: 1120}
    got = play(s, [audio(q, tss[q]) for q in seqs])
    assert got == [q % 256 for q in (65534, 65535, 0, 1, 2, 3, 4)]


def test_latch_first_packet_replaces_sdp_address() -> None:
    s = session()
    assert s.remote_addr == SDP_ADDR
    s.receive(audio(1, 0), PHONE, 0.0)
    assert s.remote_addr == PHONE


def test_latch_same_ssrc_new_port_immediately() -> None:
    s = session()
    play(s, [audio(i, 160 * i) for i in range(5)])
    moved = ("192.0.2.10", 4100)
    s.receive(audio(5, 800), moved, 0.2)
    assert s.remote_addr == moved and s.foreign == 0


def test_latch_new_source_needs_two_packets_and_resets_ssrc() -> None:
    s = session()
    play(s, [audio(i, 160 * i) for i in range(5)])
    other = ("198.51.100.1", 5000)
    s.receive(audio(900, 50000, ssrc=0xBBBB), other, 0.2)
    assert s.remote_addr == PHONE and s.foreign == 1
    # A packet from the latched source resets the challenger: a live stream is never displaced.
    s.receive(audio(5, 800), PHONE, 0.21)
    s.receive(audio(901, 50160, ssrc=0xBBBB), other, 0.22)
    assert s.remote_addr == PHONE
    s.receive(audio(902, 50320, ssrc=0xBBBB), other, 0.24)
    assert s.remote_addr == other and s.ssrc_changes == 1     # learning window: 2 in a row win


def test_ssrc_change_resets_sequence_and_jitter_buffer() -> None:
    s = session()
    first = play(s, [audio(i, 160 * i) for i in range(10)])
    second = play(s, [audio(40000 + i, 7777 + 160 * i, ssrc=0xCCCC) for i in range(10)], t0=1.0)
    assert first == list(range(1, 10))       # each source's first packet ends no probation
    assert second == [(40000 + i) % 256 for i in range(1, 10)]
    assert s.ssrc_changes == 1 and s.jitter.late == 0 and s.jitter.resyncs == 0
    assert s.stats()["remote_ssrc"] == 0xCCCC and s.stats()["cumulative_lost"] == 0


def test_comfort_noise_and_unknown_pt_ignored() -> None:
    s = session()
    got = play(s, [audio(0, 0), audio(1, 160), audio(2, 320, pt=13, size=1), audio(3, 480, pt=18),
                   audio(4, 480), audio(5, 640)])
    assert got == [1, 4, 5]
    assert s.comfort_noise == 1 and s.unknown_pt == 1
    assert s.stats()["cumulative_lost"] == 1      # PT 18 was not counted in the stream


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=60), max_size=20))
def test_garbage_never_raises(datagrams: list[bytes]) -> None:
    s = session()
    for i, d in enumerate(datagrams):
        s.receive(d, PHONE, i * 0.01)
        s.pop_frame()
    s.rtcp_report(1.0)


def test_garbage_counted() -> None:
    s = session()
    s.receive(b"\x00" * 20, PHONE, 0.0)
    s.receive(b"\x80\xc9\x00\x09" + bytes(4), PHONE, 0.0)   # RTCP RR with bad length
    assert s.malformed == 1 and s.rtcp_malformed == 1 and s.last_received is None


def test_packetize_header_seq_ts_and_wrap() -> None:
    s = session(initial_seq=65535, initial_ts=2**32 - 160)
    p1 = RtpPacket.parse(s.packetize(b"\xff" * 160, 160, marker=True))
    p2 = RtpPacket.parse(s.packetize(b"\xff" * 160, 160))
    assert (p1.sequence, p1.timestamp, p1.ssrc, p1.payload_type, p1.marker) == (65535, 2**32 - 160, 0x1234, 0, True)
    assert (p2.sequence, p2.timestamp, p2.marker) == (0, 0, False)
    assert s.packets_sent == 2 and s.octets_sent == 320


def test_packetize_random_initial_values() -> None:
    starts = {RtpPacket.parse(session().packetize(b"x", 160)).sequence for _ in range(20)}
    assert len(starts) > 1


def _transfer(sender: RtpSession, receiver: RtpSession, count: int, lost: set[int],
              jitter_s: float = 0.0, t0: float = 0.0) -> list[tuple[float, int]]:
    """Send ``count`` packets, drop ``lost``; odd packets are delayed by jitter_s.
    Returns (arrival, timestamp) of what was delivered."""
    delivered = []
    for i in range(count):
        data = sender.packetize(b"\xff" * 160, 160, now=t0 + 0.02 * i)
        if i not in lost:
            arrival = t0 + 0.02 * i + (jitter_s if i % 2 else 0.0)
            receiver.receive(data, ("192.0.2.1", 4000), arrival)
            receiver.pop_frame()
            delivered.append((arrival, RtpPacket.parse(data).timestamp))
    return delivered


def reference_jitter(delivered: list[tuple[float, int]], clock: int) -> float:
    """RFC 3550 6.4.1, written out independently of the session code."""
    j, prev, ext, raw = 0.0, None, 0, delivered[0][1]
    for arrival, ts in delivered:
        ext += (ts - raw + 2**31) % 2**32 - 2**31      # unwrap the 32-bit timestamp
        raw = ts
        transit = arrival * clock - ext
        if prev is not None:
            j += (abs(transit - prev) - j) / 16
        prev = transit
    return j


def test_rtcp_loss_and_jitter_numbers_round_trip() -> None:
    a = session(local_ssrc=0xA, initial_seq=65500, initial_ts=2**32 - 3000)
    b = session(local_ssrc=0xB)
    lost = {10, 20, 21, 50, 77, 78, 79, 80, 90, 95}
    delivered = _transfer(a, b, 100, lost, jitter_s=0.010)
    st_b = b.stats()
    assert st_b["cumulative_lost"] == 10 and st_b["packets_received"] == 90
    expected_j = reference_jitter(delivered, 8000)
    assert 70 < expected_j < 80            # alternating 0/10 ms delays: J heads for 80 ticks
    assert st_b["jitter_ms"] == pytest.approx(expected_j / 8, rel=1e-6)
    report = b.rtcp_report(2.0)
    rr, sdes = parse_rtcp(report)
    assert isinstance(rr, ReceiverReport) and isinstance(sdes, SourceDescription)
    (block,) = rr.reports
    assert block.ssrc == 0xA and block.cumulative_lost == 10
    assert block.fraction_lost == (10 << 8) // 100
    assert block.highest_seq == 65500 + 99           # extended across the wrap
    assert block.jitter == int(expected_j)
    assert b.stats()["fraction_lost"] == pytest.approx(0.1, abs=0.004)
    a.receive_rtcp(report, ("10.0.0.10", 4001), 2.01)
    assert a.remote_cumulative_lost == 10
    assert a.remote_fraction_lost == pytest.approx(0.1, abs=0.004)
    assert a.remote_jitter_ms == pytest.approx(int(expected_j) / 8)
    # Next interval: no loss.
    _transfer(a, b, 50, set(), t0=3.0)
    (rr2, _) = parse_rtcp(b.rtcp_report(4.0))
    assert isinstance(rr2, ReceiverReport)
    assert rr2.reports[0].fraction_lost == 0 and rr2.reports[0].cumulative_lost == 10


def test_sr_when_sending_rr_otherwise_and_rtt() -> None:
    a = session(local_ssrc=0xA, initial_ts=1000)
    b = session(local_ssrc=0xB)
    _transfer(a, b, 10, set())
    sr_data = a.rtcp_report(1.0)
    sr, sdes = parse_rtcp(sr_data)
    assert isinstance(sr, SenderReport) and sr.packet_count == 10 and sr.octet_count == 1600
    assert sr.rtp_timestamp == 1000 + 1600 + int((1.0 - 0.18) * 8000)
    assert isinstance(sdes, SourceDescription) and sdes.chunks[0][0] == 0xA
    assert isinstance(parse_rtcp(a.rtcp_report(2.0))[0], ReceiverReport)    # nothing sent since
    b.receive_rtcp(sr_data, ("192.0.2.1", 4001), 1.05)
    rr_data = b.rtcp_report(1.25)
    (rr, _) = parse_rtcp(rr_data)
    assert isinstance(rr, ReceiverReport) and rr.reports[0].dlsr == int(0.2 * 65536)
    a.receive_rtcp(rr_data, ("10.0.0.10", 4001), 1.30)
    assert a.rtt_ms == pytest.approx(100.0, abs=1.0)


def test_muxed_rtcp_through_receive_and_bye() -> None:
    a = session(local_ssrc=0xA)
    b = session(local_ssrc=0xB)
    _transfer(a, b, 5, set())
    assert b.receive(a.rtcp_report(1.0), ("192.0.2.1", 4000), 1.0) == []
    assert b.rtcp_received == 1 and b.last_received == 1.0
    b.receive(a.rtcp_bye("bye"), ("192.0.2.1", 4000), 1.1)
    assert b.remote_bye


def test_update_remote_codec_change_and_address() -> None:
    s = session()
    play(s, [audio(i, 160 * i) for i in range(5)])
    s.update_remote(0, 8000, 160, 101, 8000, SDP_ADDR)       # same SDP: latch kept
    assert s.remote_addr == PHONE
    s.update_remote(9, 8000, 160, 97, 8000, ("10.0.0.20", 5000))
    assert s.remote_addr == ("10.0.0.20", 5000) and s.dtmf_pt == 97
    got = play(s, [audio(100 + i, 9000 + 160 * i, pt=9) for i in range(5)], t0=1.0)
    assert got == [100 + i for i in range(5)] and s.remote_addr == PHONE
    assert RtpPacket.parse(s.packetize(b"x", 160)).payload_type == 9
