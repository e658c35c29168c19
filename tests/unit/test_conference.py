"""LiveConference rules without sockets: waiting for the host, alone music, beeps, keypad."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from bridge.call.live import LiveConference
from bridge.control.events import EventBus
from bridge.control.model import Conference
from bridge.control.participants import Participant
from bridge.media.ports import PcmSource
from bridge.rtp.jitter import Empty


class FakeAssets:
    """Marks every source with what it is, so a test can see what each leg is fed."""

    def prompt(self, names: list[str], rate: int) -> Any:
        return _Tagged(f"prompt:{'+'.join(names)}", rate)

    def music(self, location: str | None, rate: int) -> Any:
        return _Tagged("music", rate)

    def then(self, first: Any, second: Any) -> Any:
        return _Tagged(f"{first.tag}>{second.tag}", first.rate)


class _Tagged(PcmSource):
    def __init__(self, tag: str, rate: int) -> None:
        super().__init__(np.zeros(rate, dtype=np.int16), rate, loop=True)
        self.tag = tag


class Port:
    def pop_frame(self) -> Any:
        return Empty()

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        return payload


@dataclass
class FakeConn:
    room_port: Port = field(default_factory=Port)
    codec: str = "PCMU"
    payload_type: int = 0
    encoder_opts: dict[str, Any] = field(default_factory=dict)


NOW = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)


def join(live: LiveConference, pid: str, role: str) -> Participant:
    p = Participant(pid, "sip_inbound", "100", "", created_at=NOW)
    live.join(p, FakeConn(), role, NOW)
    return p


def conference(**settings: Any) -> tuple[LiveConference, list[str]]:
    conf = Conference(id="conf_t", account_id="a", name="t", dial_in_code="1",
                      created_at=datetime.now(timezone.utc), rate=8000, comfort_noise=False, **settings)
    hung_up: list[str] = []
    live = LiveConference(conf, lambda c: c.max_talkers or 0, FakeAssets(), EventBus(lambda: NOW),
                          lambda pid, reason: hung_up.append(pid))
    return live, hung_up


def sources(live: LiveConference) -> dict[str, str | None]:
    live.tick(0.0)  # apply the queued ops
    return {leg_id: getattr(leg.source, "tag", None) for leg_id, leg in live.room._legs.items()}


def test_lone_caller_hears_alone_prompt_then_music_until_someone_arrives() -> None:
    live, _ = conference()
    join(live, "a", "member")
    assert sources(live) == {"a": "prompt:alone>music"}
    join(live, "b", "member")
    assert sources(live) == {"a": None, "b": None}
    live.leave("b", "hangup", NOW)
    assert sources(live) == {"a": "music"}  # the alone prompt is said once


def test_members_wait_isolated_until_a_moderator_joins() -> None:
    live, _ = conference(wait_for_moderator=True, moderator_pins=("9999",))
    join(live, "m1", "member")
    join(live, "m2", "member")
    assert sources(live) == {"m1": "prompt:wait_moderator>music", "m2": "prompt:wait_moderator>music"}
    assert all(leg.isolated for leg in live.room._legs.values())
    join(live, "host", "moderator")
    assert sources(live) == {"m1": None, "m2": None, "host": None}
    assert not any(leg.isolated for leg in live.room._legs.values())


def test_last_moderator_leaving_can_end_the_conference() -> None:
    live, hung_up = conference(end_when_moderator_leaves=True)
    join(live, "host", "moderator")
    join(live, "m", "member")
    live.leave("host", "hangup", NOW)
    assert live.ending
    live.housekeeping(0.0)
    live.housekeeping(100.0)  # the closing prompt never finished: BYE anyway
    assert hung_up == ["m"]


def test_beep_modes() -> None:
    for beep, entry, leave in (("always", 1, 1), ("on_enter", 1, 0), ("on_exit", 0, 1), ("never", 0, 0)):
        live, _ = conference(beep=beep)
        join(live, "a", "member")
        join(live, "b", "member")
        joined = live._beeps
        live.leave("b", "hangup", NOW)
        assert (joined, live._beeps - joined) == (2 * entry, leave), beep


def test_webinar_members_are_listeners_and_full_or_locked_rooms_refuse() -> None:
    live, _ = conference(profile="webinar", max_participants=2)
    join(live, "l", "member")
    assert live.members["l"].participant.role == "listener"
    live.tick(0.0)
    assert live.room._legs["l"].listen_only
    live.locked = True
    assert live.refuses("member") == "room_locked"
    assert live.refuses("moderator") is None
    join(live, "p", "moderator")
    assert live.refuses("moderator") == "room_full"


def test_keypad_self_mute_and_moderator_mute_all() -> None:
    live, _ = conference()
    host, member = join(live, "host", "moderator"), join(live, "m", "member")
    for key in "*6":
        live.on_digit("m", key, "rfc4733", 1.0)
    assert member.muted
    for key in "*6":
        live.on_digit("m", key, "rfc4733", 2.0)
    assert not member.muted
    for key in "*2":
        live.on_digit("m", key, "rfc4733", 3.0)  # members may not
    assert not member.muted
    for key in "*2":
        live.on_digit("host", key, "rfc4733", 4.0)
    assert member.muted and not host.muted


def test_settings_changed_during_the_meeting_reach_the_live_room() -> None:
    import dataclasses
    live, _ = conference(max_participants=10)
    join(live, "a", "member")
    assert live.refuses("member") is None
    live.apply_settings(dataclasses.replace(live.conf, max_participants=1, mute_on_entry=True,
                                            max_talkers=2, comfort_noise=True))
    assert live.refuses("member") == "room_full"
    live.tick(0.0)
    assert live.room.mixer.max_talkers == 2 and "comfort-noise" in live.room._room_sources
    live.apply_settings(dataclasses.replace(live.conf, max_participants=5))
    late = join(live, "b", "member")
    assert late.muted                                   # mute_on_entry reached the live room


def test_turning_wait_for_moderator_off_releases_the_waiting_callers() -> None:
    import dataclasses
    live, _ = conference(wait_for_moderator=True)
    join(live, "m1", "member")
    join(live, "m2", "member")
    assert sources(live) == {"m1": "prompt:wait_moderator>music", "m2": "prompt:wait_moderator>music"}
    live.apply_settings(dataclasses.replace(live.conf, wait_for_moderator=False))
    assert sources(live) == {"m1": None, "m2": None}
    assert not any(leg.isolated for leg in live.room._legs.values())


def test_new_hold_music_replaces_what_a_lone_caller_hears() -> None:
    import dataclasses
    live, _ = conference()
    join(live, "a", "member")
    assert sources(live) == {"a": "prompt:alone>music"}
    live.apply_settings(dataclasses.replace(live.conf, hold_music_path="/music/new.mp3"))
    assert sources(live) == {"a": "music"}              # the new music at once, no second prompt
