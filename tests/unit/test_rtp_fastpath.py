"""Receive/jitter fast paths: same results as the general path, and actually taken."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.rtp import Frame, JitterBuffer, RtpPacket, RtpSession, build_rtp_header
from bridge.rtp.dtmf4733 import dtmf_payload
from bridge.rtp.rtcp import ReceiverReport, build_compound

PHONE = ("192.0.2.10", 4000)
OTHER = ("192.0.2.99", 5000)


def pair(codec: tuple[int, int, int]) -> tuple[RtpSession, RtpSession]:
    pt, clock, frame = codec
    fast = RtpSession(0x1234, pt, clock, frame, 101, 8000, ("10.0.0.10", 4000), initial_seq=1, initial_ts=1)
    ref = RtpSession(0x1234, pt, clock, frame, 101, 8000, ("10.0.0.10", 4000), initial_seq=1, initial_ts=1)
    ref._use_general_path()
    return fast, ref


def build_stream(ops: list[tuple[int, int]], pt: int, frame: int) -> list[tuple[bytes, tuple[str, int], float, int]]:
    """(datagram, source address, arrival, pops after it) from a list of perturbations."""
    seq, ts, ssrc, now = 65530, 2**32 - 3 * frame, 0xAAAA, 0.0
    out: list[tuple[bytes, tuple[str, int], float, int]] = []
    for kind, arg in ops:
        csrcs: list[int] = []
        addr, size, ptype, marker, padding = PHONE, frame, pt, False, 0
        stray = False
        body: bytes | None = None
        now += (0.02, 0.02, 0.0, 0.04, 0.013, 0.02, 0.031, 0.6)[arg]
        if kind == 1:
            seq, ts = (seq + arg + 1) % 65536, (ts + (arg + 1) * frame) % 2**32    # gap
        elif kind == 2:
            seq, ts = (seq - arg - 1) % 65536, (ts - (arg + 1) * frame) % 2**32    # back: dup/reorder
        elif kind == 3:
            ssrc = 0xAAAA + arg % 3
        elif kind == 4:      # odd arg: NAT rebinding; even: a stray packet from another source
            addr = OTHER
            stray = not arg % 2
        elif kind == 5:
            ptype, body = 101, dtmf_payload(arg % 4, arg >= 4, 10, 160 * (arg + 1))
        elif kind == 6:
            ptype = (13, 8, 0x7F)[arg % 3]
        elif kind == 7:
            marker = True
        elif kind == 8:
            csrcs, padding = ([7], 0) if arg % 2 else ([], 4)
        elif kind == 9:
            size = (0, 1, frame // 2, 2 * frame, 3 * frame // 2, frame, frame, frame)[arg]
        elif kind == 10:
            out.append((b"\x80\x00\x01" if arg % 2 else build_compound([ReceiverReport(7, [])]), PHONE, now, 1))
            continue
        payload = body if body is not None else bytes([seq % 251]) * size
        data = RtpPacket(ptype, seq, ts, 0xBBBB if stray else ssrc, payload, marker, csrcs, None,
                         padding).serialize()
        out.append((data, addr, now, (1, 1, 1, 0, 2, 1, 1, 1)[arg]))
        if not stray:
            seq, ts = (seq + 1) % 65536, (ts + frame) % 2**32
    return out


def same_state(a: RtpSession, b: RtpSession) -> None:
    assert a.stats() == b.stats()
    assert a.last_received == b.last_received and a.remote_addr == b.remote_addr
    assert a.jitter.target_frames == b.jitter.target_frames and a.jitter.playing == b.jitter.playing
    assert a.jitter._slots.keys() == b.jitter._slots.keys()     # same slots, maybe stored differently


CODECS = [(0, 8000, 160), (8, 8000, 80), (111, 48000, 960)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CODECS), st.lists(st.tuples(st.sampled_from([0] * 12 + list(range(1, 11))),
                                                   st.integers(0, 7)), max_size=150))
def test_session_fast_path_matches_general_path(codec: tuple[int, int, int],
                                                ops: list[tuple[int, int]]) -> None:
    fast, ref = pair(codec)
    for data, addr, now, pops in build_stream(ops, codec[0], codec[2]):
        assert fast.receive(data, addr, now) == ref.receive(data, addr, now)
        for _ in range(pops):
            assert fast.pop_frame() == ref.pop_frame()
        same_state(fast, ref)
    assert fast.poll(1e6) == ref.poll(1e6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-3, 60), st.integers(0, 5)), max_size=200),
       st.sampled_from([None, 1]))
def test_jitter_fast_path_matches_general_path(ops: list[tuple[int, int, int]], bpt: int | None) -> None:
    fast = JitterBuffer(8000, 160, 20, 200, bytes_per_tick=bpt)
    ref = JitterBuffer(8000, 160, 20, 200, bytes_per_tick=bpt)
    ref._use_general_path()
    seq, now = 0, 0.0
    for kind, arg, size in ops:
        # 0-2: next packet then a pop; 3: pop only; 4: jump (loss, reorder, resync); 5: off the grid
        if kind != 3:
            seq = seq + arg if kind == 4 else seq + 1
            ts = seq * 160 + (arg % 160 if kind == 5 else 0)
            body = bytes([seq % 256]) * (160, 160, 160, 80, 320, 0)[size]
            fast.put(seq, ts, body, now)
            ref.put(seq, ts, body, now)
            assert fast.stats() == ref.stats() and fast._slots.keys() == ref._slots.keys()
        if kind <= 3:
            assert fast.pop() == ref.pop()
            now += 0.02 + arg / 2000
    for _ in range(12):
        assert fast.pop() == ref.pop()
    assert fast.stats() == ref.stats()


def audio(seq: int, ts: int, size: int = 160, pt: int = 0) -> bytes:
    return RtpPacket(pt, seq, ts, 0xAAAA, bytes([seq % 256]) * size).serialize()


def test_in_order_packets_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    s = RtpSession(1, 0, 8000, 160, 101, 8000, PHONE)
    for i in range(3):                       # probation and latching: general path
        s.receive(audio(100 + i, 160 * i), PHONE, 0.02 * i)

    def general(*args: Any) -> Any:
        raise AssertionError("general path used")

    monkeypatch.setattr(RtpSession, "_receive", general)   # slotted: patch the class
    for i in range(3, 10):
        assert s.receive(audio(100 + i, 160 * i), PHONE, 0.02 * i) == []
    # The probation packet (100) is counted, not played.
    assert s.packets_received == 10 and s.octets_received == 1600 and s.jitter.received == 9
    items = [s.pop_frame() for _ in range(10)]
    assert items[0] == Frame(bytes([101]) * 160, 160)
    assert [i.payload[0] for i in items if isinstance(i, Frame)] == list(range(101, 110))
    with pytest.raises(AssertionError):      # anything unusual still goes the general way
        s.receive(audio(111, 160 * 11), PHONE, 0.22)


def test_dtmf_timeout_reported_by_a_fast_path_audio_packet() -> None:
    s = RtpSession(1, 0, 8000, 160, 101, 8000, PHONE)
    for i in range(3):
        s.receive(audio(i, 160 * i), PHONE, 0.02 * i)
    start = RtpPacket(101, 3, 480, 0xAAAA, dtmf_payload(5, False, 10, 160), True).serialize()
    assert s.receive(start, PHONE, 0.06) == []
    assert s.dtmf.pending
    assert s.receive(audio(4, 640), PHONE, 0.08) == []
    events = s.receive(audio(5, 800), PHONE, 0.6)      # end packets all lost: 0.5 s timeout
    assert [e.digit for e in events] == ["5"] and not s.dtmf.pending


def test_pt_shared_with_dtmf_after_reinvite_is_not_audio() -> None:
    s = RtpSession(1, 0, 8000, 160, 101, 8000, PHONE)
    for i in range(3):
        s.receive(audio(i, 160 * i), PHONE, 0.02 * i)
    s.update_remote(0, 8000, 160, 0, 8000, PHONE)      # odd offer: DTMF on PT 0
    received = s.jitter.received
    s.receive(RtpPacket(0, 3, 480, 0xAAAA, dtmf_payload(1, True, 10, 800)).serialize(), PHONE, 0.06)
    assert s.jitter.received == received                # went to the DTMF receiver
    s.dtmf_pt = 101
    s.receive(audio(4, 640), PHONE, 0.08)
    assert s.jitter.received == received + 1


def test_packetize_matches_build_rtp_header_across_wraps() -> None:
    s = RtpSession(0xFFFFFFFF, 96, 48000, 960, None, None, PHONE, initial_seq=65534, initial_ts=2**32 - 960)
    for i, marker in enumerate([True, False, True, False]):
        expected = build_rtp_header(96, 65534 + i, 2**32 - 960 + 960 * i, 0xFFFFFFFF, marker) + b"ab"
        assert s.packetize(b"ab", 960, marker) == expected
