"""A scripted conference yields exactly the expected domain events, in order, with reasons."""

from __future__ import annotations

from pathlib import Path

from bridge.control import events as ev
from tests.unit.call_harness import Bridge


def test_two_callers_join_one_talks_one_is_muted_both_leave(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path)
    bridge.directory.add("conf_s")
    alice, bob = bridge.phone(), bridge.phone()
    alice.call("conf_s")
    bridge.run(0.1, speak={alice: None})
    bob.call("conf_s")
    bridge.run(0.2, speak={alice: None, bob: None})
    bridge.run(1.0, speak={alice: 1000.0, bob: None})            # alice talks
    a, b = sorted(bridge.core.book.connected("conf_s"), key=lambda p: p.caller_number)
    bridge.core.act("conf_s", b.participant_id, "mute", bridge.now)
    bridge.run(1.5, speak={alice: None, bob: None})              # alice falls silent
    alice.bye()
    bridge.run(0.1, speak={bob: None})
    bob.bye()
    bridge.run(0.1)

    got = [(e.seq, type(e), getattr(e, "participant_id", None)) for e in bridge.events]
    assert got == [
        (1, ev.ParticipantJoined, a.participant_id),
        (2, ev.ConferenceStarted, None),
        (3, ev.ParticipantJoined, b.participant_id),
        (4, ev.TalkingStarted, a.participant_id),
        (5, ev.FloorChanged, a.participant_id),
        (6, ev.ParticipantMuteChanged, b.participant_id),
        (7, ev.TalkingStopped, a.participant_id),
        (8, ev.ParticipantLeft, a.participant_id),
        (9, ev.FloorChanged, None),                  # the floor holder left
        (10, ev.ParticipantLeft, b.participant_id),
        (11, ev.ConferenceEnded, None),
    ]
    by_seq = {e.seq: e for e in bridge.events}
    assert isinstance(by_seq[1], ev.ParticipantJoined) and by_seq[1].caller_number == "+15550000001"
    assert isinstance(by_seq[6], ev.ParticipantMuteChanged) and by_seq[6].muted
    assert isinstance(by_seq[8], ev.ParticipantLeft) and by_seq[8].reason == "hangup"
    assert isinstance(by_seq[9], ev.FloorChanged) and by_seq[9].previous_id == a.participant_id
    assert isinstance(by_seq[11], ev.ConferenceEnded) and by_seq[11].reason == "all_left"
    assert all(e.conference_id == "conf_s" for e in bridge.events)
    assert [e.at for e in bridge.events] == sorted(e.at for e in bridge.events)
    assert len({e.event_id for e in bridge.events}) == 11
    # Both stay listed, with their times.
    listing = bridge.core.participants("conf_s")
    assert [(v.status, v.leave_reason) for v in listing] == [("disconnected", "hangup")] * 2
    assert all(v.left_at is not None and v.left_at > v.joined_at for v in listing)


def test_the_api_ending_a_conference_says_so(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path)
    bridge.directory.add("conf_e")
    alice = bridge.phone()
    alice.call("conf_e")
    bridge.run(0.1, speak={alice: None})
    bridge.core.end_conference("conf_e", "ended_via_api", bridge.now)
    bridge.run(0.5, speak={alice: None})          # the closing prompt, then BYE
    assert any(r.method == "BYE" for r in alice.requests)
    names = bridge.names()
    assert names[-4:] == ["playback.started", "playback.ended", "participant.left", "conference.ended"]
    left = [e for e in bridge.events if isinstance(e, ev.ParticipantLeft)]
    ended = [e for e in bridge.events if isinstance(e, ev.ConferenceEnded)]
    assert left[0].reason == "conference_ended" and ended[0].reason == "ended_via_api"
