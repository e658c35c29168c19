"""In-call keypad menu."""

from __future__ import annotations

from dataclasses import replace

from bridge.control.ivr import PlayPrompt
from bridge.control.keypad import (
    CallState,
    Keypad,
    KeypadAction,
    KickLast,
    Leave,
    MuteAllNonModerators,
    SetListenGain,
    SetLocked,
    ToggleMute,
)

MEMBER = CallState(is_moderator=False, muted=False, room_locked=False, listeners_muted=False,
                   participants=4)
MODERATOR = replace(MEMBER, is_moderator=True)


def press(pad: Keypad, keys: str, state: CallState, now: float = 10.0) -> list[KeypadAction]:
    out: list[KeypadAction] = []
    for i, k in enumerate(keys):
        out += pad.on_digit(k, now + 0.2 * i, state)
    return out


def test_star6_toggles_mute_for_everyone_with_matching_prompt() -> None:
    pad = Keypad("leg1")
    assert press(pad, "*6", MEMBER) == [ToggleMute("leg1"), PlayPrompt(["muted"])]
    assert press(pad, "*6", replace(MEMBER, muted=True)) == [ToggleMute("leg1"), PlayPrompt(["unmuted"])]


def test_moderator_lock_and_mute_listeners() -> None:
    pad = Keypad("m")
    assert press(pad, "*1", MODERATOR) == [SetLocked(True), PlayPrompt(["locked"])]
    assert press(pad, "*1", replace(MODERATOR, room_locked=True)) == [SetLocked(False),
                                                                    PlayPrompt(["unlocked"])]
    assert press(pad, "*2", MODERATOR) == [MuteAllNonModerators(True), PlayPrompt(["listeners_muted"])]
    assert press(pad, "*2", replace(MODERATOR, listeners_muted=True)) == [
        MuteAllNonModerators(False), PlayPrompt(["listeners_unmuted"])]
    assert press(pad, "*5", MODERATOR) == [KickLast("m")]


def test_members_cannot_use_moderator_keys() -> None:
    pad = Keypad("leg1")
    assert press(pad, "*1*2*5", MEMBER) == []


def test_participant_count_and_leave() -> None:
    pad = Keypad("leg1")
    assert press(pad, "*3", MEMBER) == [PlayPrompt(["there_are", "digit_4", "participants"])]
    assert press(pad, "*3", replace(MEMBER, participants=12)) == [
        PlayPrompt(["there_are", "digit_1", "digit_2", "participants"])]
    assert press(pad, "*3", replace(MEMBER, participants=1)) == [PlayPrompt(["alone"])]
    assert press(pad, "*8", MEMBER) == [Leave("leg1")]


def test_listen_volume_steps_and_clamps() -> None:
    pad = Keypad("leg1")
    assert press(pad, "*9", MEMBER) == [SetListenGain("leg1", 3.0)]
    gains = [a.gain_db for _ in range(6) for a in press(pad, "*9", MEMBER) if isinstance(a, SetListenGain)]
    assert gains == [6.0, 9.0, 12.0]               # clamped at +12: no action once at the limit
    downs = [a.gain_db for _ in range(10) for a in press(pad, "*7", MEMBER)
             if isinstance(a, SetListenGain)]
    assert downs[-1] == -12.0 and len(downs) == 8


def test_bare_digits_ignored_unless_single_key() -> None:
    assert press(Keypad("leg1"), "6138#", MODERATOR) == []
    pad = Keypad("leg1", single_key=True)
    assert press(pad, "6", MEMBER) == [ToggleMute("leg1"), PlayPrompt(["muted"])]
    assert press(pad, "#", MEMBER) == []


def test_star_expires_after_timeout() -> None:
    pad = Keypad("leg1")
    assert pad.on_digit("*", 10.0, MEMBER) == []
    assert pad.next_deadline() == 13.0
    assert pad.on_digit("6", 13.5, MEMBER) == []       # too late: the '*' was dropped
    assert pad.next_deadline() is None
    pad.on_digit("*", 20.0, MEMBER)
    pad.on_timer(23.0)
    assert pad.next_deadline() is None
    assert pad.on_digit("6", 23.1, MEMBER) == []


def test_double_star_restarts_and_unknown_pairs_do_nothing() -> None:
    pad = Keypad("leg1")
    assert press(pad, "**6", MEMBER) == [ToggleMute("leg1"), PlayPrompt(["muted"])]
    assert press(pad, "*4*#*0", MODERATOR) == []
