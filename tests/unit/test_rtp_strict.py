"""Strict RTP source and the reflection bound (RTP bleed, CVE-2017-14099 class)."""

from __future__ import annotations

from bridge.rtp import RtpPacket, RtpSession
from bridge.rtp.session import LEARNING_S

PHONE = ("192.0.2.10", 4000)
SDP_ADDR = ("10.0.0.10", 4000)
ATTACKER = ("198.51.100.66", 31337)


def session() -> RtpSession:
    return RtpSession(0x1234, 0, 8000, 160, 101, 8000, SDP_ADDR)


def audio(seq: int, ts: int, ssrc: int = 0xAAAA, pt: int = 0) -> bytes:
    return RtpPacket(pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, bytes(160)).serialize()


def talking(s: RtpSession, count: int, t0: float = 0.0, seq0: int = 0) -> float:
    for i in range(count):
        s.receive(audio(seq0 + i, 160 * (seq0 + i)), PHONE, t0 + 0.02 * i)
        s.pop_frame()
    return t0 + 0.02 * count


def test_hijack_during_a_pause_after_learning_is_dropped() -> None:
    s = session()
    s.open_learning(0.0)
    talking(s, 50)                               # 1 s of audio, then the phone goes quiet (DTX/mute)
    t = LEARNING_S + 1.0
    for i in range(200):                         # a sequential stream from a stranger
        s.receive(audio(7000 + i, 90000 + 160 * i, ssrc=0xBAD), ATTACKER, t + 0.02 * i)
    assert s.remote_addr == PHONE and s.foreign == 200
    assert s.last_received is not None and s.last_received < 1.0   # strangers do not keep a leg alive
    assert s.ssrc_changes == 0


def test_hijack_while_the_real_source_talks_is_dropped_even_in_learning() -> None:
    s = session()
    s.open_learning(0.0)
    t = talking(s, 5)
    for i in range(20):
        s.receive(audio(5 + i, 160 * (5 + i)), PHONE, t + 0.02 * i)
        s.receive(audio(900 + i, 160 * i, ssrc=0xBAD), ATTACKER, t + 0.02 * i + 0.001)
    assert s.remote_addr == PHONE and s.foreign == 20


def test_nat_rebinding_with_the_same_stream_is_followed_after_learning() -> None:
    s = session()
    s.open_learning(0.0)
    talking(s, 10)
    moved = ("192.0.2.10", 4100)
    s.receive(audio(13, 160 * 13), moved, LEARNING_S + 5.0)     # 3 packets lost in the move
    assert s.remote_addr == moved and s.foreign == 0


def test_same_ssrc_far_outside_the_sequence_window_is_not_a_rebind() -> None:
    s = session()
    s.open_learning(0.0)
    talking(s, 10)
    s.receive(audio(5000, 0), ATTACKER, LEARNING_S + 5.0)       # guessed SSRC, wrong sequence
    assert s.remote_addr == PHONE and s.foreign == 1


def test_sdp_address_is_preferred_in_learning_only() -> None:
    s = session()
    s.open_learning(0.0)
    talking(s, 3)
    s.receive(audio(500, 0, ssrc=0xB), SDP_ADDR, 0.5)
    assert s.remote_addr == SDP_ADDR
    s2 = session()
    s2.open_learning(0.0)
    talking(s2, 3)
    s2.receive(audio(500, 0, ssrc=0xB), SDP_ADDR, LEARNING_S + 0.5)
    assert s2.remote_addr == PHONE


def test_dtmf_and_rtcp_from_strangers_are_ignored() -> None:
    s = session()
    s.open_learning(0.0)
    talking(s, 10)
    for i in range(5):
        s.receive(RtpPacket(101, 100 + i, 8000, 0xBAD, bytes([1, 0x80, 0, 160])).serialize(), ATTACKER, 1.0)
    rtcp = RtpSession(0xBAD, 0, 8000, 160, None, None, PHONE).rtcp_report(1.0)
    s.receive_rtcp(rtcp, ATTACKER, 1.0)
    assert s.dtmf.current is None and s.rtcp_foreign == 1 and s.rtcp_received == 0
    s.receive_rtcp(rtcp, (PHONE[0], 4001), 1.1)                  # the phone's own RTCP port
    assert s.rtcp_received == 1


def test_reflection_bound_stops_and_resumes_sending() -> None:
    s = session()
    s.hold_sending()
    assert s.remote_addr is None                     # nothing before the ACK
    s.allow_sending(10.0, 0.5)
    assert s.remote_addr == SDP_ADDR
    assert not s.check_unconfirmed(10.4)
    assert s.check_unconfirmed(10.6) and s.remote_addr is None and s.send_pauses == 1
    assert not s.check_unconfirmed(11.0)
    # A stranger's RTCP does not resume it, the peer's does.
    rtcp = RtpSession(0xB, 0, 8000, 160, None, None, PHONE).rtcp_report(1.0)
    s.receive_rtcp(rtcp, ATTACKER, 12.0)
    assert s.remote_addr is None
    s.receive_rtcp(rtcp, (SDP_ADDR[0], 4001), 12.1)
    assert s.remote_addr == SDP_ADDR and s.confirmed


def test_first_rtp_packet_resumes_and_confirms() -> None:
    s = session()
    s.hold_sending()
    s.allow_sending(0.0, 0.5)
    assert s.check_unconfirmed(1.0)
    s.receive(audio(1, 160), PHONE, 2.0)
    assert s.remote_addr == PHONE and s.confirmed
    assert not s.check_unconfirmed(9.0)


def test_a_confirmed_peer_that_goes_quiet_keeps_receiving() -> None:
    s = session()
    s.allow_sending(0.0, 0.5)
    talking(s, 5)
    assert not s.check_unconfirmed(100.0) and s.remote_addr == PHONE


def test_moved_sdp_address_reopens_learning_and_the_bound() -> None:
    s = session()
    s.open_learning(0.0)
    talking(s, 5)
    new = ("10.0.0.99", 6000)
    s.update_remote(0, 8000, 160, 101, 8000, new, now=50.0)
    assert s.remote_addr == new and not s.confirmed
    s.allow_sending(50.0, 0.5)
    assert s.check_unconfirmed(51.0)
    s.receive(audio(1, 0, ssrc=0xC), ("192.0.2.77", 7000), 51.5)  # first packet after the offer
    assert s.remote_addr == ("192.0.2.77", 7000)
