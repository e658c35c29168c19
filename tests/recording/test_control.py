"""The pure parts: controller on a real Room, keypad *4, options, webhook routing of saved recordings."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from bridge.config import WebhookAccountConfig
from bridge.control import events as ev
from bridge.control import keypad as kp
from bridge.control.errors import ControlError
from bridge.control.ivr import PlayPrompt
from bridge.control.model import Conference
from bridge.media.room import Room
from bridge.recording.control import ConferenceRecording
from bridge.recording.model import RecordingInfo, RecordingOptions, parse_options
from bridge.recording.tap import Tap
from bridge.webhooks.routing import Router

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FakeRecorder:
    def __init__(self) -> None:
        self.begun: list[tuple[RecordingInfo, Tap, Callable[[RecordingInfo], None]]] = []

    def begin(self, info: RecordingInfo, tap: Tap, finished: Callable[[RecordingInfo], None]) -> None:
        self.begun.append((info, tap, finished))


def _names(bus: ev.EventBus) -> list[str]:
    out: list[str] = []
    bus.subscribe("t", lambda e: out.append(e.name))
    return out


def test_start_pause_resume_stop_and_failure() -> None:
    bus = ev.EventBus(lambda: T0)
    names = _names(bus)
    rec = FakeRecorder()
    room = Room("c1", 16000)
    cr = ConferenceRecording("c1", "acct1", room, rec, bus, lambda: T0)
    with pytest.raises(ControlError) as err:
        cr.stop()
    assert err.value.status == 409
    info = cr.start(RecordingOptions(), [])
    with pytest.raises(ControlError):
        cr.start(RecordingOptions(), [])
    tap = rec.begun[0][1]
    assert tap.legs == 0 and info.state == "recording"
    cr.pause()
    assert tap.paused and info.state == "paused"
    cr.resume()
    assert not tap.paused and info.state == "recording"
    cr.stop("api")
    assert tap.closed and cr.active is None
    rec.begun[0][2](RecordingInfo(**{**info.__dict__, "state": "saved", "files": {"mix": "x.wav"}}))
    bus.drain()
    assert names == ["recording.started", "recording.paused", "recording.resumed", "recording.stopped",
                     "recording.saved"]
    # A failure while recording detaches the taps and says so.
    info2 = cr.start(RecordingOptions(), [])
    rec.begun[1][2](RecordingInfo(**{**info2.__dict__, "state": "failed", "error": "disk full"}))
    assert cr.active is None and rec.begun[1][1].closed
    bus.drain()
    assert names[-1] == "recording.failed"


def test_keypad_star4_only_for_who_may_record() -> None:
    pad = kp.Keypad("p1")
    member = kp.CallState(False, False, False, False, 2)
    assert pad.on_digit("*", 0, member) == [] and pad.on_digit("4", 0.1, member) == []
    allowed = kp.CallState(False, False, False, False, 2, may_record=True)
    pad.on_digit("*", 1, allowed)
    assert pad.on_digit("4", 1.1, allowed) == [kp.ToggleRecording("p1")]
    recording = kp.CallState(False, False, False, False, 2, recording=True, may_record=True)
    pad.on_digit("*", 2, recording)
    assert pad.on_digit("4", 2.1, recording) == [kp.ToggleRecording("p1"), PlayPrompt(["recording_stopped"])]


def test_options_follow_telnyx_record_start() -> None:
    d = RecordingOptions()
    o = parse_options({"format": "mp3", "channels": "dual", "custom_file_name": "board", "play_beep": True}, d)
    assert (o.format, o.channels, o.custom_file_name, o.play_beep) == ("mp3", "dual", "board", True)
    for bad in ({"format": "flac"}, {"channels": "quad"}, {"custom_file_name": "../x"}, {"nope": 1},
                {"trim": "trim-silence"}):
        with pytest.raises(ControlError):
            parse_options(bad, d)


def test_saved_recording_webhooks_and_freeclimb_after_empty() -> None:
    conf = Conference(id="c1", account_id="acct1", name="n", dial_in_code="1", created_at=T0,
                      status_callback_url="https://fc.example/cb")
    router = Router({"acct1": WebhookAccountConfig(account="acct1", url="https://tx.example/h")},
                    lambda cid: conf, lambda e: {"wav": f"https://b/{e.recording_id}?signature=s"})
    bus = ev.EventBus(lambda: T0)
    joined = bus.publish(ev.ParticipantJoined("c1", participant_id="p1"))
    router.route(joined)
    saved = bus.publish(ev.RecordingSaved("c1", recording_id="rec_1", account_id="acct1", started_at=T0,
                                          ended_at=T0 + timedelta(seconds=61.2)))
    out = router.route(saved)
    assert [d.event_type for d in out] == ["conference.recording.saved"]     # FreeClimb waits
    payload = json.loads(out[0].body)["data"]["payload"]
    assert payload["recording_urls"] == {"wav": "https://b/rec_1?signature=s"}
    left = bus.publish(ev.ParticipantLeft("c1", participant_id="p1"))
    out = router.route(left)
    assert [d.event_type for d in out] == ["conference.participant.left", "conferenceStatus.empty",
                                          "conferenceRecordingStatus"]
    body = json.loads(out[2].body)
    assert (body["requestType"], body["recordingId"], body["recordingDurationSec"]) == (
        "conferenceRecordingStatus", "rec_1", 62)
    assert body["recordingUrl"] == "https://b/rec_1?signature=s"
