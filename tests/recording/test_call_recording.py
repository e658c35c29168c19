"""Recording through the real call core (no sockets): record=true, keypad *4, permissions, leave."""

from __future__ import annotations

from pathlib import Path

from bridge.recording.control import RecordingSetup
from bridge.recording.model import RecordingOptions
from tests.recording.test_control import FakeRecorder
from tests.unit.call_harness import Bridge


def _names(bridge: Bridge) -> list[str]:
    return [e.name for e in bridge.events if e.name.startswith("recording.")]


def test_record_true_starts_with_the_conference_and_stops_when_it_empties(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path)
    recorder = FakeRecorder()
    bridge.core.recording = RecordingSetup(recorder, RecordingOptions(format="mp3"))
    bridge.directory.add("conf_r", record=True)
    alice = bridge.phone()
    alice.call("conf_r")
    bridge.run(0.2, speak={alice: None})
    assert _names(bridge) == ["recording.started"]
    info, tap, _ = recorder.begun[0]
    assert info.options.format == "mp3" and tap.tick > 0         # the mix sink is taking frames
    alice.bye()
    bridge.run(0.1)
    assert _names(bridge) == ["recording.started", "recording.stopped"] and tap.closed


def test_keypad_star4_moderators_or_everyone_when_allowed(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path)
    recorder = FakeRecorder()
    bridge.core.recording = RecordingSetup(recorder, RecordingOptions())
    bridge.directory.add("conf_k")
    bridge.directory.add("conf_p", allow_recording_by_participant=True)
    for room, expected in (("conf_k", []), ("conf_p", ["recording.started", "recording.stopped"])):
        bridge.events.clear()
        phone = bridge.phone()
        phone.call(room)
        bridge.run(0.2, speak={phone: None})
        for _ in range(2):
            phone.press("*")
            bridge.run(0.1, speak={phone: None})
            phone.press("4")
            bridge.run(0.2, speak={phone: None})
        assert _names(bridge) == expected, room
        phone.bye()
        bridge.run(0.1)
