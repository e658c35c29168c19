"""IVR flows driven with a fake clock: codes, PINs, retries, timeouts, barge-in."""

from __future__ import annotations

import pytest

from bridge.control.ivr import (
    Hangup,
    Ivr,
    IvrAction,
    Join,
    Phase,
    PlayPrompt,
    Role,
    RoomTarget,
    StopPrompt,
)

ROOMS = {
    "1000": RoomTarget("open-room"),
    "2000": RoomTarget("pin-room", member_pins=("1234",), moderator_pins=("9999",)),
    "3000": RoomTarget("host-only", moderator_pins=("4321",)),
}


class Caller:
    """Plays the adapter: feeds keys, finishes prompts, and keeps the clock."""

    def __init__(self, ivr: Ivr) -> None:
        self.ivr = ivr
        self.now = 100.0
        self.log: list[IvrAction] = []
        self.playing: PlayPrompt | None = None

    def _take(self, actions: list[IvrAction]) -> list[IvrAction]:
        for a in actions:
            if isinstance(a, PlayPrompt):
                self.playing = a
            elif isinstance(a, StopPrompt):
                assert self.playing is not None and self.playing.token == a.token
                self.playing = None
        self.log += actions
        return actions

    def start(self) -> list[IvrAction]:
        return self._take(self.ivr.start(self.now))

    def finish_prompt(self) -> list[IvrAction]:
        assert self.playing is not None
        token, self.playing = self.playing.token, None
        self.now += 1.0
        return self._take(self.ivr.on_prompt_finished(self.now, token))

    def keys(self, digits: str) -> list[IvrAction]:
        out: list[IvrAction] = []
        for d in digits:
            self.now += 0.3
            out += self._take(self.ivr.on_digit(d, self.now))
        return out

    def wait(self, seconds: float) -> list[IvrAction]:
        """Advance the clock, firing the timer at each deadline that falls inside."""
        end = self.now + seconds
        out: list[IvrAction] = []
        while (deadline := self.ivr.next_deadline()) is not None and deadline <= end:
            self.now = deadline
            out += self._take(self.ivr.on_timer(self.now))
        self.now = end
        return out


def prompts(actions: list[IvrAction]) -> list[list[str]]:
    return [a.names for a in actions if isinstance(a, PlayPrompt)]


def access() -> Caller:
    return Caller(Ivr(lookup_code=ROOMS.get))


def test_access_number_open_room_joins_as_member() -> None:
    c = access()
    assert prompts(c.start()) == [["welcome", "enter_code"]]
    assert c.ivr.next_deadline() is None           # waiting for the prompt, not the caller
    c.finish_prompt()
    assert c.keys("1000#") == [Join("open-room", "member")]
    assert c.ivr.phase is Phase.DONE and c.ivr.next_deadline() is None


def test_code_then_member_and_moderator_pins() -> None:
    cases: list[tuple[str, Role]] = [("1234", "member"), ("9999", "moderator")]
    for pin, role in cases:
        c = access()
        c.start()
        c.finish_prompt()
        assert prompts(c.keys("2000#")) == [["enter_pin"]]
        c.finish_prompt()
        assert c.keys(pin + "#") == [Join("pin-room", role)]


def test_three_wrong_codes_hang_up_after_the_goodbye_prompt() -> None:
    c = access()
    c.start()
    c.finish_prompt()
    assert prompts(c.keys("555#")) == [["bad_code"]]
    c.finish_prompt()
    assert prompts(c.keys("556#")) == [["bad_code"]]
    c.finish_prompt()
    assert prompts(c.keys("557#")) == [["too_many_attempts"]]
    assert c.keys("1000#") == []                   # keys during the goodbye are ignored
    assert c.ivr.next_deadline() is None
    assert c.finish_prompt() == [Hangup("too_many_attempts")]
    assert c.ivr.phase is Phase.DONE
    assert c.keys("1") == [] and c.ivr.on_timer(c.now + 100) == []


def test_two_wrong_codes_then_right_one_still_joins() -> None:
    c = access()
    c.start()
    c.finish_prompt()
    c.keys("1#")
    c.finish_prompt()
    c.keys("2#")
    c.finish_prompt()
    assert c.keys("1000#") == [Join("open-room", "member")]


def test_three_wrong_pins_hang_up_and_pin_attempts_are_counted_separately() -> None:
    c = access()
    c.start()
    c.finish_prompt()
    c.keys("77#")                                  # one wrong code first
    c.finish_prompt()
    c.keys("2000#")
    c.finish_prompt()
    assert prompts(c.keys("0000#")) == [["bad_pin"]]
    c.finish_prompt()
    assert prompts(c.keys("1111#")) == [["bad_pin"]]
    c.finish_prompt()
    assert prompts(c.keys("2222#")) == [["too_many_attempts"]]
    assert c.finish_prompt() == [Hangup("too_many_attempts")]


def test_direct_dial_room_with_pins_asks_for_pin_after_welcome() -> None:
    c = Caller(Ivr(room=ROOMS["2000"]))
    assert prompts(c.start()) == [["welcome", "enter_pin"]]
    c.finish_prompt()
    assert c.keys("9999#") == [Join("pin-room", "moderator")]


def test_direct_dial_room_without_pins_joins_at_once() -> None:
    c = Caller(Ivr(room=ROOMS["1000"]))
    assert c.start() == [Join("open-room", "member")]


def test_moderator_only_room_lets_empty_entry_in_as_member() -> None:
    c = Caller(Ivr(room=ROOMS["3000"], welcome=False))
    assert prompts(c.start()) == [["enter_pin"]]
    c.finish_prompt()
    assert c.keys("#") == [Join("host-only", "member")]
    c = Caller(Ivr(room=ROOMS["3000"], welcome=False))
    c.start()
    c.finish_prompt()
    assert c.keys("4321#") == [Join("host-only", "moderator")]


def test_inter_digit_timeout_submits_without_pound() -> None:
    c = Caller(Ivr(room=ROOMS["2000"]))
    c.start()
    c.finish_prompt()
    assert c.keys("1234") == []
    last_key = c.now
    assert c.ivr.next_deadline() == pytest.approx(last_key + 5.0)
    assert c.wait(4.9) == []
    assert c.wait(0.2) == [Join("pin-room", "member")]


def test_silence_replays_prompt_then_gives_up() -> None:
    c = access()
    c.start()
    c.finish_prompt()
    quiet_from = c.now
    assert c.ivr.next_deadline() == pytest.approx(quiet_from + 15.0)
    assert c.wait(14.9) == []
    assert prompts(c.wait(0.2)) == [["enter_code"]]
    for _ in range(2):
        c.finish_prompt()
        assert prompts(c.wait(15.0)) == [["enter_code"]]
    c.finish_prompt()
    assert prompts(c.wait(15.0)) == [["goodbye"]]
    assert c.finish_prompt() == [Hangup("no_input")]


def test_barge_in_stops_prompt_and_keeps_the_digits() -> None:
    c = access()
    c.start()
    first = c.keys("1")                            # while welcome+enter_code plays
    assert first == [StopPrompt(1)]
    assert c.ivr.on_prompt_finished(c.now, 1) == []   # late completion of the stopped prompt
    assert c.keys("000#") == [Join("open-room", "member")]


def test_barge_in_during_bad_pin_prompt() -> None:
    c = Caller(Ivr(room=ROOMS["2000"]))
    c.start()
    c.finish_prompt()
    c.keys("5555#")
    acts = c.keys("1234#")                         # typed over "That PIN is not valid..."
    assert isinstance(acts[0], StopPrompt)
    assert acts[-1] == Join("pin-room", "member")


def test_star_clears_the_entry() -> None:
    c = Caller(Ivr(room=ROOMS["2000"]))
    c.start()
    c.finish_prompt()
    assert c.keys("12*1234#") == [Join("pin-room", "member")]


def test_empty_code_replays_prompt_without_counting_an_attempt() -> None:
    c = access()
    c.start()
    c.finish_prompt()
    for _ in range(4):
        assert prompts(c.keys("#")) == [["enter_code"]]
        c.finish_prompt()
    assert c.keys("1000#") == [Join("open-room", "member")]


def test_overlong_entry_is_judged_without_waiting() -> None:
    c = access()
    c.start()
    c.finish_prompt()
    assert prompts(c.keys("1" * 16)) == [["bad_code"]]


def test_constructor_needs_exactly_one_mode_and_single_start() -> None:
    with pytest.raises(ValueError):
        Ivr()
    with pytest.raises(ValueError):
        Ivr(lookup_code=ROOMS.get, room=ROOMS["1000"])
    ivr = Ivr(lookup_code=ROOMS.get)
    ivr.start(0.0)
    with pytest.raises(RuntimeError):
        ivr.start(0.0)


def test_stale_prompt_token_is_ignored() -> None:
    c = access()
    c.start()
    assert c.ivr.on_prompt_finished(c.now, token=99) == []
    assert c.ivr.next_deadline() is None
