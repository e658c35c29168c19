"""SIP behaviour against SIPp, an independent SIP implementation."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from bridge_codecs import make_encoder

from bridge.media.dtmf_detect import dtmf_pair

from tests.e2e.calls import dial_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.e2e.peers.rtp_pcap import RtpPacket, write_dtmf_pcap, write_rtp_pcap
from tests.e2e.peers.sipp import SippProcess, run_sipp
from tests.support.bridge_proc import BridgeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_sipp")]


def sipp(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path, scenario: str, room: str = "room1",
         **kw: object) -> object:
    p = ports.sipp()
    return run_sipp(
        scenario, f"127.0.0.1:{bridge.sip_port}", local_port=p.sip, media_port=p.media, service=room,
        workdir=tmp_path / f"sipp-{scenario}-{p.sip}", **kw,  # type: ignore[arg-type]
    )


def wait_for_log(bridge: BridgeProcess, pattern: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = bridge.log_path.read_text(errors="replace")
        match = re.search(pattern, text)
        if match:
            return match.group(0)
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in bridge log:\n{bridge.log_tail()}")


def test_basic_call(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    sipp(bridge, ports, tmp_path, "basic_call", extra_args=["-d", "1000"]).assert_ok()
    wait_for_log(bridge, r"part_\w+ left conf_room1 \(bye\)")


def test_dial_in_code_routes_to_room(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    sipp(bridge, ports, tmp_path, "basic_call", room="1002").assert_ok()
    wait_for_log(bridge, r"joined conf_room2")


def test_cancel_before_answer(bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator,
                              tmp_path: Path) -> None:
    bridge = bridge_factory(sip={"answer_delay_ms": 3000})
    sipp(bridge, ports, tmp_path, "cancel").assert_ok()
    wait_for_log(bridge, r"part_\w+ left conf_room1 \(cancel\)")
    assert "joined conf_room1" not in bridge.log_path.read_text()


def test_unknown_room_404(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    sipp(bridge, ports, tmp_path, "unknown_room_404", room="no-such-room").assert_ok()


def test_options_200(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    sipp(bridge, ports, tmp_path, "options").assert_ok()


def test_reinvite_hold_and_resume(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    sipp(bridge, ports, tmp_path, "reinvite", extra_args=["-d", "300"]).assert_ok()
    wait_for_log(bridge, r"part_\w+ held")
    wait_for_log(bridge, r"part_\w+ resumed")


def test_late_offer(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    sipp(bridge, ports, tmp_path, "late_offer", extra_args=["-d", "500"]).assert_ok()
    wait_for_log(bridge, r"answered \(sipp, codec PCMU/8000")


def test_info_dtmf(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    sipp(bridge, ports, tmp_path, "info_dtmf", extra_args=["-d", "300"]).assert_ok()
    wait_for_log(bridge, r"DTMF 5 \(info\)")


def test_rfc4733_dtmf_pt101(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    sipp(bridge, ports, tmp_path, "dtmf_rfc4733_pt101").assert_ok()
    wait_for_log(bridge, r"DTMF 5 \(rfc4733\)")


def test_rfc4733_dtmf_pt96(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    p = ports.sipp()
    workdir = tmp_path / "sipp-pt96"
    workdir.mkdir()
    write_dtmf_pcap(workdir / "dtmf_pt96.pcap", "19#", payload_type=96)
    run_sipp("dtmf_pt96", f"127.0.0.1:{bridge.sip_port}", local_port=p.sip, media_port=p.media,
             service="room1", workdir=workdir).assert_ok()
    for digit in "19#":
        wait_for_log(bridge, rf"DTMF {re.escape(digit)} \(rfc4733\)")
    log = bridge.log_path.read_text()
    assert len(re.findall(r"DTMF \S \(rfc4733\)", log)) == 3, "each key press is reported exactly once"


def inband_dtmf_packets(digits: str) -> list[RtpPacket]:
    """PCMU RTP whose audio carries DTMF tones (120 ms on, 120 ms off, -10 dBov per tone)."""
    encoder = make_encoder("PCMU")
    rate = 8000
    pcm: list[np.ndarray] = [np.zeros(rate // 5)]
    t = np.arange(int(0.12 * rate)) / rate
    for digit in digits:
        low, high = dtmf_pair(digit)
        pcm.append(0.2 * 32767 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)))
        pcm.append(np.zeros(int(0.12 * rate)))
    pcm.append(np.zeros(rate // 5))
    audio_pcm = np.concatenate(pcm).astype(np.int16)
    frames = len(audio_pcm) // 160
    return [
        RtpPacket(time=1_700_000_000.0 + i * 0.02, payload_type=0, marker=i == 0, seq=2000 + i,
                  timestamp=80000 + 160 * i, ssrc=0x5EED1234,
                  payload=encoder.encode(audio_pcm[i * 160:(i + 1) * 160]))
        for i in range(frames)
    ]


def test_inband_dtmf_for_g711_without_telephone_event(bridge: BridgeProcess, ports: PortAllocator,
                                                      tmp_path: Path) -> None:
    p = ports.sipp()
    workdir = tmp_path / "sipp-inband"
    workdir.mkdir()
    write_rtp_pcap(workdir / "inband.pcap", inband_dtmf_packets("42#"))
    run_sipp("inband_dtmf", f"127.0.0.1:{bridge.sip_port}", local_port=p.sip, media_port=p.media,
             service="room1", workdir=workdir).assert_ok()
    for digit in "42#":
        wait_for_log(bridge, rf"DTMF {re.escape(digit)} \(inband\)")
    assert len(re.findall(r"DTMF \S \(inband\)", bridge.log_path.read_text())) == 3


def test_malformed_request_400_leaves_call_unharmed(
    bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path
) -> None:
    specs = [("alice", "PCMU", 500.0), ("bob", "PCMU", 1000.0)]
    with participants(tmp_path, ports, specs) as people:
        alice, bob = people
        dial_all(bridge, people, "room1")
        talk(1.0)
        sipp(bridge, ports, tmp_path, "malformed_400").assert_ok()
        talk(2.0)
        assert "CALL_CLOSED" not in alice.phone.event_types()
        assert "CALL_CLOSED" not in bob.phone.event_types()
        alice.phone.hangup()
        bob.phone.hangup()
        bob.phone.wait_event("CALL_CLOSED")
        samples, rate = bob.heard()
        # Alice is still heard after the malformed request (the last second of the call).
        tail = audio.segment(samples, rate, max(0.0, len(samples) / rate - 1.5), len(samples) / rate - 0.3)
        assert audio.has_tone(tail, rate, 500.0, min_seconds=0.5), "call disturbed by a malformed request"


def test_sigterm_sends_bye_to_every_client(
    bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path
) -> None:
    waiting = []
    for i in range(2):
        p = ports.sipp()
        waiting.append(SippProcess(
            "expect_bye", f"127.0.0.1:{bridge.sip_port}", local_port=p.sip, media_port=p.media,
            service="room1", timeout=20, workdir=tmp_path / f"sipp-bye-{i}",
        ))
    with participants(tmp_path, ports, [("carol", "PCMU", 500.0)]) as people:
        dial_all(bridge, people, "room1")
        deadline = time.monotonic() + 5
        while bridge.log_path.read_text().count("joined conf_room1") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bridge.log_path.read_text().count("joined conf_room1") == 3, bridge.log_tail()
        t0 = time.monotonic()
        code = bridge.terminate(timeout=10)
        elapsed = time.monotonic() - t0
        assert code == 0, bridge.log_tail()
        assert elapsed < 5.0, f"shutdown took {elapsed:.1f}s"
        people[0].phone.wait_event("CALL_CLOSED", timeout=5)
    for proc in waiting:
        proc.wait(10).assert_ok()
