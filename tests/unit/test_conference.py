"""LiveConference rules without sockets: waiting for the host, alone music, beeps, keypad."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from bridge.conference import LiveConference
from bridge.control.model import Conference
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
class Media:
    codec: str = "PCMU"
    payload_type: int = 0


@dataclass
class FakeLeg:
    leg_id: str
    port: Port = field(default_factory=Port)
    media: Media = field(default_factory=Media)
    encoder_opts: dict[str, Any] = field(default_factory=dict)
    on_hold: bool = False
    muted: bool = False
    deaf: bool = False
    role: str = "member"


def conference(**settings: Any) -> tuple[LiveConference, list[str]]:
    conf = Conference(id="conf_t", account_id="a", name="t", dial_in_code="1",
                      created_at=datetime.now(timezone.utc), rate=8000, comfort_noise=False, **settings)
    hung_up: list[str] = []
    live = LiveConference(conf, lambda c: c.max_talkers or 0, FakeAssets(),  # type: ignore[arg-type]
                          lambda leg: hung_up.append(leg.leg_id))
    return live, hung_up


def sources(live: LiveConference) -> dict[str, str | None]:
    live.tick(0.0)  # apply the queued ops
    return {leg_id: getattr(leg.source, "tag", None) for leg_id, leg in live.room._legs.items()}


def test_lone_caller_hears_alone_prompt_then_music_until_someone_arrives() -> None:
    live, _ = conference()
    live.join(FakeLeg("a"), "member")  # type: ignore[arg-type]
    assert sources(live) == {"a": "prompt:alone>music"}
    live.join(FakeLeg("b"), "member")  # type: ignore[arg-type]
    assert sources(live) == {"a": None, "b": None}
    live.leave("b")
    assert sources(live) == {"a": "music"}  # the alone prompt is said once


def test_members_wait_isolated_until_a_moderator_joins() -> None:
    live, _ = conference(wait_for_moderator=True, moderator_pins=("9999",))
    live.join(FakeLeg("m1"), "member")  # type: ignore[arg-type]
    live.join(FakeLeg("m2"), "member")  # type: ignore[arg-type]
    assert sources(live) == {"m1": "prompt:wait_moderator>music", "m2": "prompt:wait_moderator>music"}
    assert all(leg.isolated for leg in live.room._legs.values())
    live.join(FakeLeg("host"), "moderator")  # type: ignore[arg-type]
    assert sources(live) == {"m1": None, "m2": None, "host": None}
    assert not any(leg.isolated for leg in live.room._legs.values())


def test_last_moderator_leaving_can_end_the_conference() -> None:
    live, hung_up = conference(end_when_moderator_leaves=True)
    live.join(FakeLeg("host"), "moderator")  # type: ignore[arg-type]
    live.join(FakeLeg("m"), "member")  # type: ignore[arg-type]
    live.leave("host")
    assert live.ending
    live.housekeeping(0.0)
    live.housekeeping(100.0)  # the closing prompt never finished: BYE anyway
    assert hung_up == ["m"]


def test_beep_modes() -> None:
    for beep, entry, leave in (("always", 1, 1), ("on_enter", 1, 0), ("on_exit", 0, 1), ("never", 0, 0)):
        live, _ = conference(beep=beep)
        live.join(FakeLeg("a"), "member")  # type: ignore[arg-type]
        live.join(FakeLeg("b"), "member")  # type: ignore[arg-type]
        joined = live._beeps
        live.leave("b")
        assert (joined, live._beeps - joined) == (2 * entry, leave), beep


def test_webinar_members_are_listeners_and_full_or_locked_rooms_refuse() -> None:
    live, _ = conference(profile="webinar", max_participants=2)
    live.join(FakeLeg("l"), "member")  # type: ignore[arg-type]
    assert live.members["l"].role == "listener"
    live.tick(0.0)
    assert live.room._legs["l"].listen_only
    live.locked = True
    assert live.refuses("member") == "room_locked"
    assert live.refuses("moderator") is None
    live.join(FakeLeg("p"), "moderator")  # type: ignore[arg-type]
    assert live.refuses("moderator") == "room_full"


def test_keypad_self_mute_and_moderator_mute_all() -> None:
    live, _ = conference()
    host, member = FakeLeg("host"), FakeLeg("m")
    live.join(host, "moderator")  # type: ignore[arg-type]
    live.join(member, "member")  # type: ignore[arg-type]
    for key in "*6":
        live.on_digit("m", key, 1.0)
    assert member.muted
    for key in "*6":
        live.on_digit("m", key, 2.0)
    assert not member.muted
    for key in "*2":
        live.on_digit("m", key, 3.0)  # members may not
    assert not member.muted
    for key in "*2":
        live.on_digit("host", key, 4.0)
    assert member.muted and not host.muted


def test_settings_changed_during_the_meeting_reach_the_live_room() -> None:
    import dataclasses
    live, _ = conference(max_participants=10)
    live.join(FakeLeg("a"), "member")  # type: ignore[arg-type]
    assert live.refuses("member") is None
    live.apply_settings(dataclasses.replace(live.conf, max_participants=1, mute_on_entry=True,
                                            max_talkers=2, comfort_noise=True))
    assert live.refuses("member") == "room_full"
    live.tick(0.0)
    assert live.room.mixer.max_talkers == 2 and "comfort-noise" in live.room._room_sources
    live.apply_settings(dataclasses.replace(live.conf, max_participants=5))
    late = FakeLeg("b")
    live.join(late, "member")  # type: ignore[arg-type]
    assert late.muted                                   # mute_on_entry reached the live room


def test_turning_wait_for_moderator_off_releases_the_waiting_callers() -> None:
    import dataclasses
    live, _ = conference(wait_for_moderator=True)
    live.join(FakeLeg("m1"), "member")  # type: ignore[arg-type]
    live.join(FakeLeg("m2"), "member")  # type: ignore[arg-type]
    assert sources(live) == {"m1": "prompt:wait_moderator>music", "m2": "prompt:wait_moderator>music"}
    live.apply_settings(dataclasses.replace(live.conf, wait_for_moderator=False))
    assert sources(live) == {"m1": None, "m2": None}
    assert not any(leg.isolated for leg in live.room._legs.values())


def test_new_hold_music_replaces_what_a_lone_caller_hears() -> None:
    import dataclasses
    live, _ = conference()
    live.join(FakeLeg("a"), "member")  # type: ignore[arg-type]
    assert sources(live) == {"a": "prompt:alone>music"}
    live.apply_settings(dataclasses.replace(live.conf, hold_music_path="/music/new.mp3"))
    assert sources(live) == {"a": "music"}              # the new music at once, no second prompt
