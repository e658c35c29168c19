"""RFC 4733 receiver: one DtmfEvent per key press whatever the network does."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from bridge.rtp import DtmfEvent, DtmfReceiver, RtpPacket, RtpSession, build_dtmf_packets
from bridge.rtp.dtmf4733 import dtmf_payload


def feed(rx: DtmfReceiver, payloads: list[bytes], ts: int, t0: float, ssrc: int = 1) -> list[DtmfEvent]:
    out: list[DtmfEvent] = []
    for i, p in enumerate(payloads):
        out += rx.receive(p, ts, t0 + 0.02 * i, ssrc)
    return out


def test_sender_helper_shape() -> None:
    pkts = build_dtmf_packets("5", duration_ms=100, clock_rate=8000)
    assert len(pkts) == 4 + 3
    event, flags, duration = struct.unpack("!BBH", pkts[0])
    assert (event, flags & 0x80, duration) == (5, 0, 160)
    assert pkts[-1] == pkts[-2] == pkts[-3]
    event, flags, duration = struct.unpack("!BBH", pkts[-1])
    assert (flags & 0x80, duration) == (0x80, 800)
    assert struct.unpack("!B", build_dtmf_packets("#")[0][:1])[0] == 11
    assert struct.unpack("!B", build_dtmf_packets("d")[0][:1])[0] == 15


@pytest.mark.parametrize("digit", list("0123456789*#ABCD"))
def test_each_digit_reported_once_with_three_ends(digit: str) -> None:
    rx = DtmfReceiver(8000)
    events = feed(rx, build_dtmf_packets(digit, 120), ts=1000, t0=0.0)
    assert events == [DtmfEvent(digit, 120)]
    assert rx.poll(10.0) == []


def test_redundant_end_after_next_event_started_is_ignored() -> None:
    rx = DtmfReceiver(8000)
    first = build_dtmf_packets("1", 100)
    second = build_dtmf_packets("2", 100)
    events = feed(rx, first[:-1], ts=1000, t0=0.0)
    events += rx.receive(second[0], 5000, 1.0, 1)
    events += rx.receive(first[-1], 1000, 1.01, 1)      # late copy of the first key's end
    events += feed(rx, second[1:], ts=5000, t0=1.02)
    assert events == [DtmfEvent("1", 100), DtmfEvent("2", 100)]


def test_same_digit_twice_is_two_presses() -> None:
    rx = DtmfReceiver(8000)
    events = feed(rx, build_dtmf_packets("7", 100), ts=1000, t0=0.0)
    events += feed(rx, build_dtmf_packets("7", 100), ts=3000, t0=0.5)
    assert events == [DtmfEvent("7", 100), DtmfEvent("7", 100)]


def test_all_end_packets_lost_reported_on_next_event() -> None:
    rx = DtmfReceiver(8000)
    events = feed(rx, build_dtmf_packets("3", 100)[:-3], ts=1000, t0=0.0)
    assert events == []
    events = feed(rx, build_dtmf_packets("4", 100), ts=9000, t0=0.2)
    assert events == [DtmfEvent("3", 80), DtmfEvent("4", 100)]


def test_all_end_packets_lost_reported_on_timeout_once() -> None:
    rx = DtmfReceiver(8000, timeout=0.5)
    feed(rx, build_dtmf_packets("9", 100)[:-3], ts=1000, t0=0.0)
    assert rx.poll(0.3) == []
    assert rx.poll(0.7) == [DtmfEvent("9", 80)]
    assert rx.poll(5.0) == []
    # A late end packet for the already reported event does nothing.
    assert rx.receive(build_dtmf_packets("9", 100)[-1], 1000, 5.1, 1) == []


def test_only_end_packets_arrive() -> None:
    rx = DtmfReceiver(8000)
    assert feed(rx, build_dtmf_packets("6", 100)[-3:], ts=1000, t0=0.0) == [DtmfEvent("6", 100)]


@pytest.mark.parametrize("clock", [8000, 16000, 48000])
def test_duration_uses_clock_rate(clock: int) -> None:
    rx = DtmfReceiver(clock)
    assert feed(rx, build_dtmf_packets("1", 160, clock_rate=clock), ts=77, t0=0.0) == [DtmfEvent("1", 160)]


def test_flash_and_short_payload_ignored() -> None:
    rx = DtmfReceiver(8000)
    assert rx.receive(dtmf_payload(16, True, 10, 800), 1, 0.0) == []
    assert rx.receive(b"\x01", 2, 0.0) == []
    assert rx.malformed == 1 and rx.ignored == 1


def _session_with_dtmf(pt: int, clock: int = 8000) -> RtpSession:
    return RtpSession(0x42, 0, 8000, 160, pt, clock, ("127.0.0.1", 4000))


@pytest.mark.parametrize("pt", [101, 96, 97])
def test_session_reports_dtmf_once_at_any_pt(pt: int) -> None:
    s = _session_with_dtmf(pt)
    events: list[DtmfEvent] = []
    for i, p in enumerate(build_dtmf_packets("5", 100)):
        data = RtpPacket(pt, 100 + i, 8000, 0xAB, p, marker=(i == 0)).serialize()
        events += s.receive(data, ("127.0.0.1", 4000), 0.02 * i)
    assert events == [DtmfEvent("5", 100)]


def test_session_dtmf_48000_own_ssrc_other_port() -> None:
    s = RtpSession(0x42, 111, 48000, 960, 110, 48000, ("127.0.0.1", 4000))
    # Audio from the phone's main port latches first.
    for i in range(3):
        s.receive(RtpPacket(111, i, 960 * i, 0xA, b"op").serialize(), ("127.0.0.1", 4000), 0.02 * i)
    events: list[DtmfEvent] = []
    for i, p in enumerate(build_dtmf_packets("#", 200, clock_rate=48000)):
        data = RtpPacket(110, 500 + i, 123456, 0xD7, p).serialize()
        events += s.receive(data, ("127.0.0.1", 4002), 1.0 + 0.02 * i)
    assert events == [DtmfEvent("#", 200)]
    assert s.remote_addr == ("127.0.0.1", 4000) and s.ssrc_changes == 0


def test_session_poll_reports_lost_end() -> None:
    s = _session_with_dtmf(101)
    for i, p in enumerate(build_dtmf_packets("8", 100)[:-3]):
        assert s.receive(RtpPacket(101, i, 8000, 1, p).serialize(), ("127.0.0.1", 4000), 0.02 * i) == []
    assert s.poll(2.0) == [DtmfEvent("8", 80)]


SIPP_PCAP = Path("/usr/share/sip-tester/dtmf_2833_5.pcap")


def _pcap_udp_payloads(path: Path) -> list[tuple[float, bytes]]:
    """UDP payloads of an Ethernet/IPv4 pcap (classic little-endian format, as SIPp ships)."""
    data = path.read_bytes()
    assert struct.unpack_from("<I", data)[0] == 0xA1B2C3D4
    out, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = frame[14:]
        out.append((sec + usec / 1e6, ip[(ip[0] & 15) * 4 + 8:]))
    return out


@pytest.mark.skipif(not SIPP_PCAP.exists(), reason="sip-tester (SIPp) not installed")
def test_sipp_shipped_dtmf_pcap_reported_once() -> None:
    """SIPp's play_pcap_audio file: PT 101, digit 5, 3 end packets with the SAME sequence number."""
    s = _session_with_dtmf(101)
    packets = _pcap_udp_payloads(SIPP_PCAP)
    t0 = packets[0][0]
    events: list[DtmfEvent] = []
    for when, data in packets:
        events += s.receive(data, ("127.0.0.1", 6000), when - t0)
    assert events == [DtmfEvent("5", 280)]
    assert s.poll(10.0) == [] and s.malformed == 0
