"""Real softphones in real rooms: everyone hears everyone else, never themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.calls import dial_all, hang_up_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]


def assert_mix_minus(people: list, freqs: list[float]) -> None:
    for p in people:
        samples, rate = p.heard()
        # Judge the conversation itself: skip the first second (the first caller hears the
        # "you are alone" prompt until the others arrive, then entry beeps) and the hang-up.
        samples = audio.segment(samples, rate, 1.0, len(samples) / rate - 0.3)
        assert audio.rms_dbfs(samples) > -40, f"{p.name} heard (almost) nothing"
        for other in people:
            if other is p or other.freq is None:
                continue
            assert audio.has_tone(samples, rate, other.freq, min_rel_db=-15, min_seconds=1.0), (
                f"{p.name} ({p.codecs}) did not hear {other.name}'s {other.freq} Hz: "
                f"level {audio.tone_level_db(samples, rate, other.freq):.1f} dB"
            )
        if p.freq is not None:
            own = audio.tone_level_db(samples, rate, p.freq)
            assert own < -30, f"{p.name} heard its own {p.freq} Hz tone at {own:.1f} dB"


@pytest.mark.parametrize("codecs", ["PCMU", "G722/16000/1"])
def test_three_participants_hear_each_other_not_themselves(
    bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path, codecs: str
) -> None:
    specs = [("alice", codecs, 500.0), ("bob", codecs, 1000.0), ("carol", codecs, 1500.0)]
    with participants(tmp_path, ports, specs) as people:
        dial_all(bridge, people, "room1")
        talk(3.0)
        hang_up_all(people)
        assert_mix_minus(people, [500.0, 1000.0, 1500.0])


def test_g711_callers_in_an_8khz_room_through_the_steady_lanes(
    bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path
) -> None:
    """An 8 kHz room is where G.711 legs are read, played and sent through the numpy lanes
    (bridge/rtp/lanes.py): real softphones' timing, PCMU and PCMA groups side by side."""
    specs = [("alice", "PCMU", 500.0), ("bob", "PCMA", 1000.0), ("carol", "PCMU", 1500.0)]
    with participants(tmp_path, ports, specs) as people:
        dial_all(bridge, people, "room2")
        talk(4.0)
        hang_up_all(people)
        assert_mix_minus(people, [500.0, 1000.0, 1500.0])


@pytest.mark.parametrize("room", ["room1", "wide"])
def test_g711_callers_in_16_and_48khz_rooms_through_the_steady_lanes(
    bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path, room: str
) -> None:
    """16 kHz (the default) and 48 kHz rooms read G.711 legs through the same lanes and
    resample all of them in one product (bridge/media/row_resample.py)."""
    specs = [("alice", "PCMU", 500.0), ("bob", "PCMA", 1000.0), ("carol", "PCMU", 1500.0)]
    with participants(tmp_path, ports, specs) as people:
        dial_all(bridge, people, room)
        talk(4.0)
        hang_up_all(people)
        assert_mix_minus(people, [500.0, 1000.0, 1500.0])


def test_transcoding_pcmu_pcma_g722_opus(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    specs = [
        ("ulaw", "PCMU", 500.0),
        ("alaw", "PCMA", 1000.0),
        ("g722", "G722/16000/1", 1500.0),
        ("opus", "opus/48000/2", 700.0),
    ]
    with participants(tmp_path, ports, specs) as people:
        dial_all(bridge, people, "wide")
        talk(3.0)
        hang_up_all(people)
        assert_mix_minus(people, [s[2] for s in specs])


def test_two_rooms_stay_isolated(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    specs = [("a1", "PCMU", 500.0), ("a2", "PCMU", 1000.0), ("b1", "PCMU", 1500.0), ("b2", "PCMU", 700.0)]
    with participants(tmp_path, ports, specs) as people:
        a1, a2, b1, b2 = people
        dial_all(bridge, [a1, a2], "room1")
        dial_all(bridge, [b1, b2], "room2")
        talk(3.0)
        hang_up_all(people)
        for listener, partner, strangers in ((a1, a2, (b1, b2)), (a2, a1, (b1, b2)), (b1, b2, (a1, a2)), (b2, b1, (a1, a2))):
            samples, rate = listener.heard()
            samples = audio.segment(samples, rate, 1.0, len(samples) / rate - 0.3)  # skip prompt + beeps
            assert audio.has_tone(samples, rate, partner.freq, min_rel_db=-15, min_seconds=1.0)
            for s in strangers:
                leak = audio.tone_level_db(samples, rate, s.freq)
                assert leak < -30, f"{s.name}'s tone leaked into {listener.name} at {leak:.1f} dB"
