"""Proves the e2e harness against the real clients themselves, without the bridge.

baresip calls baresip, SIPp calls SIPp or baresip: if these pass, a failing bridge
test points at the bridge, not at the harness.
"""

from __future__ import annotations

import random

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

try:  # package layout (tests/__init__.py present) or rootdir-relative import
    from .peers import audio
    from .peers.baresip import Baresip
    from .peers.fixtures import (  # noqa: F401  (fixtures are used by name)
        SippRunner, baresip_factory, needs_baresip, needs_sipp, port_allocator, sipp_runner, tone_factory,
    )
    from .peers.ports import PortAllocator, port_is_free
    from .peers.rtp_pcap import dtmf_digits, read_rtp_pcap, write_dtmf_pcap
    from .peers.sipp import reject_uas_scenario
except ImportError:
    from peers import audio  # type: ignore[no-redef]
    from peers.baresip import Baresip  # type: ignore[no-redef]
    from peers.fixtures import (  # type: ignore[no-redef]  # noqa: F401
        SippRunner, baresip_factory, needs_baresip, needs_sipp, port_allocator, sipp_runner, tone_factory,
    )
    from peers.ports import PortAllocator, port_is_free  # type: ignore[no-redef]
    from peers.rtp_pcap import dtmf_digits, read_rtp_pcap, write_dtmf_pcap  # type: ignore[no-redef]
    from peers.sipp import reject_uas_scenario  # type: ignore[no-redef]

SIPP_DTMF_5 = Path("/usr/share/sip-tester/dtmf_2833_5.pcap")


# ------------------------------------------------------------------ fast unit checks


def test_detectors_on_synthetic_signals() -> None:
    rate = 8000
    a = audio.tone(440, 1.0, rate, 0.3)
    b = audio.tone(1000, 1.0, rate, 0.3)
    silence = np.zeros(rate)
    padded = np.concatenate([silence, a, silence, silence])

    assert audio.goertzel_power(a, rate, 440) == pytest.approx(0.3**2 / 2, rel=0.05)
    assert audio.goertzel_power(a, rate, 1000) < 1e-5
    # Silence padding must not dilute the level or hide the tone.
    assert audio.tone_level_db(padded, rate, 440) > -1.0
    assert audio.tone_level_db(padded, rate, 1000) < -40.0
    assert audio.has_tone(padded, rate, 440)
    assert not audio.has_tone(padded, rate, 1000)
    assert audio.dominant_frequency(padded, rate) == pytest.approx(440, abs=2)
    assert audio.dominant_frequency(silence, rate) is None
    assert audio.tone_level_db(silence, rate, 440) == float("-inf")
    assert audio.rms_dbfs(a) == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.1)
    assert audio.first_activity(padded, rate) == pytest.approx(1.0, abs=0.03)
    assert audio.active_seconds(padded, rate) == pytest.approx(1.0, abs=0.05)
    assert len(audio.segment(padded, rate, 1.0, 1.5)) == rate // 2

    # A mix: both tones present, each about -3 dB of the total.
    mix = a + b
    assert audio.tone_level_db(mix, rate, 440) == pytest.approx(-3.0, abs=0.5)
    assert audio.has_tone(mix, rate, 1000) and audio.has_tone(mix, rate, 440)

    # Codec-like distortion: mu-law style companding + noise keeps the tone found.
    rng = np.random.default_rng(1)
    mu = 255.0
    companded = np.sign(a) * np.log1p(mu * np.abs(a)) / np.log1p(mu)
    quantised = np.round(companded * 127) / 127
    expanded = np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(mu)) / mu
    noisy = expanded + rng.normal(0, 0.01, len(expanded))
    assert audio.has_tone(noisy, rate, 440)
    assert not audio.has_tone(noisy, rate, 1000)
    # Broadband noise alone has no tone.
    assert not audio.has_tone(rng.normal(0, 0.1, rate), rate, 440)


def test_wav_roundtrip_and_formats(tmp_path: Path) -> None:
    path = audio.tone_wav(tmp_path / "o.wav", 700, 0.5, 48000, channels=2, lead_silence=0.25, tail_silence=0.25)
    samples, rate = audio.read_wav(path)
    assert rate == 48000
    assert len(samples) == 48000
    assert audio.first_activity(samples, rate) == pytest.approx(0.25, abs=0.03)
    assert audio.dominant_frequency(samples, rate) == pytest.approx(700, abs=2)


def test_port_allocator_blocks_do_not_overlap() -> None:
    alloc = PortAllocator(seed=7)
    blocks = [alloc.baresip() for _ in range(5)]
    used: set[int] = set()
    for b in blocks:
        ports = {b.sip, b.sip + 1, b.ctrl, *range(b.rtp_lo, b.rtp_hi + 1)}
        assert not ports & used
        used |= ports
        assert port_is_free(b.sip) and port_is_free(b.ctrl)


def test_port_allocator_recycles_the_oldest_blocks_when_the_range_is_full() -> None:
    # A whole-suite run takes more 40-port blocks than 20000-32000 holds.
    base = PortAllocator(seed=3).block(100)
    alloc = PortAllocator(base, base + 100, seed=3)
    # attempts=0: no random picks, the scan from the bottom (what a fragmented range gets).
    first, second = alloc.block(40, attempts=0), alloc.block(40, attempts=0)
    assert (first, second) == (base, base + 40)
    third = alloc.block(40, attempts=0)     # 20 ports left: the oldest block is reused
    assert third == first


def test_dtmf_pcap_writer_roundtrip(tmp_path: Path) -> None:
    path = write_dtmf_pcap(tmp_path / "d.pcap", "19#", payload_type=96)
    packets = read_rtp_pcap(path)
    assert dtmf_digits(packets, 96) == "19#"
    assert {p.payload_type for p in packets} == {96}
    assert [p.seq for p in packets] == list(range(packets[0].seq, packets[0].seq + len(packets)))
    ends = [p for p in packets if p.event and p.event[1]]
    assert len(ends) == 9  # 3 digits x 3 end packets
    # SIPp's shipped sample: one digit 5 on PT 101.
    if SIPP_DTMF_5.exists():
        sample = read_rtp_pcap(SIPP_DTMF_5)
        assert dtmf_digits(sample) == "5"
        assert {p.payload_type for p in sample} == {101}


# ------------------------------------------------------------------ real clients


@pytest.mark.e2e
@needs_baresip
def test_two_baresips_hear_each_other(
    baresip_factory: Callable[..., Baresip], tone_factory: Callable[..., Path]
) -> None:
    codecs = "PCMU"
    alice = baresip_factory("alice", codecs=codecs, mic_wav=tone_factory(440, codecs, 1.5))
    bob = baresip_factory("bob", codecs=codecs, mic_wav=tone_factory(1000, codecs, 1.5), auto_answer=True)

    alice.dial(bob.uri)
    alice.wait_event("CALL_ESTABLISHED", 5)
    bob.wait_event("CALL_ESTABLISHED", 5)
    alice.wait_event("CALL_RTPESTAB", 5)
    # The mic files end after 1.5 s tone + 2 s silence and baresip then hangs up.
    alice.wait_event("CALL_CLOSED", 10)
    bob.wait_event("CALL_CLOSED", 10)

    for me, own, other in ((alice, 440, 1000), (bob, 1000, 440)):
        heard, rate = me.heard()
        assert rate == 8000
        assert audio.has_tone(heard, rate, other, min_seconds=1.0), (
            f"{me.name} did not hear {other} Hz: level {audio.tone_level_db(heard, rate, other):.1f} dB"
        )
        assert audio.tone_level_db(heard, rate, own) < -40.0, f"{me.name} heard its own {own} Hz"


@pytest.mark.e2e
@needs_baresip
def test_baresip_hangup_dtmf_and_explicit_accept(
    baresip_factory: Callable[..., Baresip], tone_factory: Callable[..., Path]
) -> None:
    codecs = "G722/16000/1"
    carol = baresip_factory("carol", codecs=codecs, mic_wav=tone_factory(600, codecs, 10.0))
    dave = baresip_factory("dave", codecs=codecs, mic_wav=tone_factory(1300, codecs, 10.0))

    carol.dial(dave.uri)
    dave.wait_event("CALL_INCOMING", 5)
    dave.accept()
    carol.wait_event("CALL_ESTABLISHED", 5)
    carol.wait_event("CALL_RTPESTAB", 5)
    time.sleep(1.0)
    carol.send_dtmf("7")
    assert dave.wait_event("CALL_DTMF_START", 5)["param"] == "7"
    time.sleep(0.3)
    carol.hangup()
    assert dave.wait_event("CALL_CLOSED", 5)["param"] == "Connection reset by peer"

    heard, rate = dave.heard()
    assert rate == 16000
    assert audio.has_tone(heard, rate, 600, min_seconds=0.5)


@pytest.mark.e2e
@needs_sipp
def test_sipp_uac_against_sipp_uas(sipp_runner: SippRunner) -> None:
    uas = sipp_runner.start("uas", "", timeout=15)
    time.sleep(0.2)
    result = sipp_runner.run("uac", f"127.0.0.1:{uas.local_port}", timeout=10, extra_args=["-d", "200"])
    result.assert_ok(1)
    # Do not sit through the built-in uas's 4 s timewait: its answer is proven above.
    assert "SIP/2.0 200" in uas.stop().messages()


@pytest.mark.e2e
@needs_sipp
@pytest.mark.parametrize(("scenario", "status", "expect_ok"), [
    ("malformed_400", 400, True), ("unknown_room_404", 404, True), ("malformed_400", 404, False),
])
def test_negative_scenarios_against_rejecting_uas(
    sipp_runner: SippRunner, tmp_path: Path, scenario: str, status: int, expect_ok: bool
) -> None:
    uas_xml = tmp_path / f"uas_{status}.xml"
    uas_xml.write_text(reject_uas_scenario(status))
    uas = sipp_runner.start(uas_xml, "", timeout=10)
    time.sleep(0.2)
    result = sipp_runner.run(scenario, f"127.0.0.1:{uas.local_port}", timeout=3)
    assert result.ok is expect_ok, result.report()
    if not expect_ok:
        sipp_runner.results.remove(result)  # an expected failure, not worth printing


@pytest.mark.e2e
@needs_sipp
@needs_baresip
@pytest.mark.parametrize(("scenario", "answer", "args", "expect"), [
    ("basic_call", True, ["-d", "300"], ["CALL_ESTABLISHED", "CALL_CLOSED"]),
    ("options", True, [], []),
    ("reinvite", True, ["-d", "200"], ["CALL_ESTABLISHED", "CALL_CLOSED"]),
    ("info_dtmf", True, [], ["CALL_DTMF_START"]),
    ("late_offer", True, ["-d", "200"], ["CALL_ESTABLISHED"]),
    ("cancel", False, [], ["CALL_INCOMING", "CALL_CLOSED"]),
    ("dtmf_rfc4733_pt101", True, [], ["CALL_DTMF_START"]),
])
def test_scenario_against_baresip(
    baresip_factory: Callable[..., Baresip], sipp_runner: SippRunner,
    scenario: str, answer: bool, args: list[str], expect: list[str],
) -> None:
    if scenario == "dtmf_rfc4733_pt101" and not SIPP_DTMF_5.exists():
        pytest.skip("SIPp's dtmf_2833_5.pcap is not installed")
    bob = baresip_factory("bob", auto_answer=answer)
    result = sipp_runner.run(scenario, f"127.0.0.1:{bob.ports.sip}", service="bob", timeout=10, extra_args=args)
    result.assert_ok(1)
    for event in expect:
        bob.wait_event(event, 3)
    if "CALL_DTMF_START" in expect:
        assert bob.events and [e["param"] for e in bob.events if e["type"] == "CALL_DTMF_START"] == ["5"]


@pytest.mark.e2e
@needs_sipp
@needs_baresip
def test_expect_bye_scenario_gets_baresips_bye(
    baresip_factory: Callable[..., Baresip], sipp_runner: SippRunner
) -> None:
    bob = baresip_factory("bob", auto_answer=True)
    sipp = sipp_runner.start("expect_bye", f"127.0.0.1:{bob.ports.sip}", service="bob", timeout=10)
    bob.wait_event("CALL_ESTABLISHED", 5)
    bob.hangup()
    sipp.wait(10).assert_ok(1)


@pytest.mark.e2e
@needs_sipp
@needs_baresip
def test_generated_pt96_dtmf_reaches_baresip(
    baresip_factory: Callable[..., Baresip], sipp_runner: SippRunner
) -> None:
    bob = baresip_factory("bob", auto_answer=True)
    workdir = sipp_runner.workdir()
    write_dtmf_pcap(workdir / "dtmf_pt96.pcap", "19#", payload_type=96)
    result = sipp_runner.run("dtmf_pt96", f"127.0.0.1:{bob.ports.sip}", service="bob", timeout=10, workdir=workdir)
    result.assert_ok(1)
    digits = [bob.wait_event("CALL_DTMF_START", 3)["param"] for _ in range(3)]
    assert digits == ["1", "9", "#"]


def test_port_allocator_finds_large_blocks_in_a_fragmented_worker_share() -> None:
    # A worker's share of the range (two workers: 6,000 ports), a run of tests at random: mostly a
    # bridge (40 ports, 2 single ports) and two baresips, sometimes a 4-node cluster (240 RTP ports
    # a node). Recycling one oldest half at a time left no 240-port gap by the 26th test here.
    alloc = PortAllocator(26000, 32000, seed=0)
    pick = random.Random(0)
    for _ in range(100):
        if pick.random() < 0.15:
            for _ in range(4):
                alloc.block(240)
                alloc.port()
                alloc.port()
        else:
            alloc.block(40)
            alloc.port()
            alloc.port()
            alloc.block(14)
            alloc.block(14)
        newest = alloc._order[-16:]
        assert len({p for r in newest for p in r}) == sum(len(r) for r in newest)   # never reused
