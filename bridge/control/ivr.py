"""Getting a caller into a room: conference code and PIN entry, as a sans-IO state machine.

Driven by digits (RFC 4733, SIP INFO or in-band, all the same here), prompt
completion and the clock; every method returns the actions to carry out, in order.

Flows
  access number  welcome + enter_code -> digits until '#' -> lookup_code(code)
                   unknown: bad_code, try again; the 3rd wrong code: too_many_attempts, hang up
                   known, no PINs: Join(room, "member"); with PINs: the PIN flow below
  PIN            enter_pin (after welcome when the room was dialled directly) -> digits until '#'
                   a moderator PIN: Join as moderator; a member PIN: Join as member
                   wrong: bad_pin, try again; the 3rd wrong PIN: too_many_attempts, hang up
                   a room with moderator PINs only lets an empty entry ('#' alone) in as member

Entry rules (both flows)
  - '#' ends the entry. After INTER_DIGIT_TIMEOUT (5 s) without a key, what was typed
    counts as entered, so callers who never press '#' still get in.
  - Nothing typed for FIRST_DIGIT_TIMEOUT (15 s) after the prompt: the prompt is replayed;
    after MAX_REPROMPTS replays with no input the caller hears goodbye and is hung up.
  - '*' clears what was typed so far. An empty code entry just replays the prompt.
  - Barge-in: a key pressed while enter/bad prompts play stops the prompt (StopPrompt)
    and is kept. Keys pressed during the final goodbye prompts are ignored.

PIN guessing: with a ``pin_check`` (the caller's address bound to a ``PinGuard``), wrong PINs
also count across calls; while it asks us to wait, keys are ignored, and a locked-out caller hears
too_many_attempts and is hung up without the entry being compared.

Prompt tokens: every PlayPrompt carries a token; ``on_prompt_finished(now, token)``
with a stale token (a prompt already stopped by barge-in) is ignored.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["member", "moderator"]

INTER_DIGIT_TIMEOUT = 5.0
FIRST_DIGIT_TIMEOUT = 15.0
MAX_ATTEMPTS = 3
MAX_REPROMPTS = 3
MAX_DIGITS = 16          # longer than any code or PIN: stop collecting and judge it


@dataclass(frozen=True)
class RoomTarget:
    """What the IVR needs to know about a room: its name and PINs (empty: no PIN asked)."""

    room: str
    member_pins: tuple[str, ...] = ()
    moderator_pins: tuple[str, ...] = ()

    @property
    def needs_pin(self) -> bool:
        return bool(self.member_pins or self.moderator_pins)

    def role_for(self, pin: str) -> Role | None:
        if pin and pin in self.moderator_pins:
            return "moderator"
        if pin in self.member_pins or (not pin and not self.member_pins):
            return "member"
        return None


@dataclass(frozen=True)
class PlayPrompt:
    names: list[str]
    token: int = 0


@dataclass(frozen=True)
class StopPrompt:
    token: int


@dataclass(frozen=True)
class Join:
    room: str
    role: Role


@dataclass(frozen=True)
class Hangup:
    reason: Literal["too_many_attempts", "no_input", "locked_out"]


class PinCheck(Protocol):
    """Cross-call PIN limits for this caller: seconds to wait (0 now, inf locked out)."""

    def wait(self, room: str, now: float) -> float: ...

    def failed(self, room: str, now: float) -> float: ...

    def succeeded(self, room: str) -> None: ...


IvrAction = PlayPrompt | StopPrompt | Join | Hangup


class Phase(enum.Enum):
    IDLE = "idle"
    CODE = "code"            # collecting the conference code
    PIN = "pin"              # collecting the PIN
    ENDING = "ending"        # playing the last prompt before hanging up
    DONE = "done"            # joined or hung up: nothing more to do


class Ivr:
    """One caller's way in. Give ``lookup_code`` (access number) or ``room`` (dialled directly)."""

    def __init__(self, lookup_code: Callable[[str], RoomTarget | None] | None = None,
                 room: RoomTarget | None = None, *, welcome: bool = True,
                 max_attempts: int = MAX_ATTEMPTS, inter_digit_timeout: float = INTER_DIGIT_TIMEOUT,
                 first_digit_timeout: float = FIRST_DIGIT_TIMEOUT,
                 max_reprompts: int = MAX_REPROMPTS) -> None:
        if (lookup_code is None) == (room is None):
            raise ValueError("give exactly one of lookup_code (access number) or room (direct dial)")
        self._lookup = lookup_code
        self._room = room
        self._welcome = welcome
        self.max_attempts = max_attempts
        self.inter_digit_timeout = inter_digit_timeout
        self.first_digit_timeout = first_digit_timeout
        self.max_reprompts = max_reprompts
        self.phase = Phase.IDLE
        self.result: Join | Hangup | None = None
        self._digits = ""
        self._attempts = 0
        self._reprompts = 0
        self._token = 0
        self._playing = False          # a prompt of ours is playing (token self._token)
        self._interruptible = False
        self._idle_since: float | None = None   # last key, or when the prompt ended
        self.pin_check: PinCheck | None = None
        self._blocked_until = 0.0               # PIN keys before this are ignored (back-off)

    # -- inputs ---------------------------------------------------------------------------

    def start(self, now: float) -> list[IvrAction]:
        if self.phase is not Phase.IDLE:
            raise RuntimeError("Ivr.start called twice")
        intro = ["welcome"] if self._welcome else []
        if self._room is None:
            return self._enter(Phase.CODE, intro + ["enter_code"])
        if not self._room.needs_pin:
            return self._finish(Join(self._room.room, "member"))
        return self._enter_pin(intro + ["enter_pin"], now)

    def on_digit(self, digit: str, now: float) -> list[IvrAction]:
        if self.phase not in (Phase.CODE, Phase.PIN):
            return []
        if self.phase is Phase.PIN and now < self._blocked_until:
            return []
        actions: list[IvrAction] = []
        if self._playing:
            if not self._interruptible:
                return []
            actions.append(StopPrompt(self._token))    # barge-in: the key is kept
            self._playing = False
        self._idle_since = now
        if digit == "#":
            return actions + self._submit(now)
        if digit == "*":
            self._digits = ""
            return actions
        if len(digit) == 1 and digit in "0123456789":      # A-D and anything else: ignored
            self._digits += digit
            if len(self._digits) >= MAX_DIGITS:
                return actions + self._submit(now)
        return actions

    def on_prompt_finished(self, now: float, token: int | None = None) -> list[IvrAction]:
        if not self._playing or (token is not None and token != self._token):
            return []
        self._playing = False
        if self.phase is Phase.ENDING:
            assert isinstance(self.result, Hangup)
            self.phase = Phase.DONE
            return [self.result]
        self._idle_since = now
        return []

    def on_timer(self, now: float) -> list[IvrAction]:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        if self._digits:
            return self._submit(now)
        self._reprompts += 1
        if self._reprompts > self.max_reprompts:
            return self._end(["goodbye"], Hangup("no_input"))
        prompt = "enter_code" if self.phase is Phase.CODE else "enter_pin"
        return self._play([prompt], interruptible=True)

    def next_deadline(self) -> float | None:
        """When ``on_timer`` must next be called (None: waiting for a prompt or finished)."""
        if self.phase not in (Phase.CODE, Phase.PIN) or self._playing:
            return None
        if self._idle_since is None:
            return None
        return self._idle_since + (self.inter_digit_timeout if self._digits else self.first_digit_timeout)

    # -- internals ------------------------------------------------------------------------

    def _submit(self, now: float) -> list[IvrAction]:
        entry, self._digits = self._digits, ""
        if self.phase is Phase.CODE:
            if not entry:
                return self._play(["enter_code"], interruptible=True)
            assert self._lookup is not None
            target = self._lookup(entry)
            if target is None:
                return self._wrong("bad_code")
            self._room = target
            if not target.needs_pin:
                return self._finish(Join(target.room, "member"))
            self._attempts = 0
            return self._enter_pin(["enter_pin"], now)
        assert self._room is not None
        room, check = self._room.room, self.pin_check
        if check is not None and entry:
            wait = check.wait(room, now)
            if math.isinf(wait):
                return self._end(["too_many_attempts"], Hangup("locked_out"))
            if wait > 0:                        # another call of this caller just failed
                self._blocked_until = now + wait
                return self._play(["enter_pin"], interruptible=True)
        role = self._room.role_for(entry)
        if role is None:
            if not entry:
                return self._play(["enter_pin"], interruptible=True)
            if check is not None:
                delay = check.failed(room, now)
                if math.isinf(delay):
                    return self._end(["too_many_attempts"], Hangup("locked_out"))
                self._blocked_until = now + delay
            return self._wrong("bad_pin")
        if check is not None and entry:
            check.succeeded(room)
        return self._finish(Join(room, role))

    def _enter_pin(self, prompts: list[str], now: float) -> list[IvrAction]:
        if self.pin_check is not None and self._room is not None:
            wait = self.pin_check.wait(self._room.room, now)
            if math.isinf(wait):
                self.phase = Phase.PIN
                return self._end(["too_many_attempts"], Hangup("locked_out"))
            self._blocked_until = now + wait
        return self._enter(Phase.PIN, prompts)

    def _wrong(self, prompt: str) -> list[IvrAction]:
        self._attempts += 1
        if self._attempts >= self.max_attempts:
            return self._end(["too_many_attempts"], Hangup("too_many_attempts"))
        self._reprompts = 0
        return self._play([prompt], interruptible=True)

    def _enter(self, phase: Phase, prompts: list[str]) -> list[IvrAction]:
        self.phase = phase
        self._digits = ""
        self._reprompts = 0
        return self._play(prompts, interruptible=True)

    def _play(self, names: list[str], interruptible: bool) -> list[IvrAction]:
        actions: list[IvrAction] = []
        if self._playing:
            actions.append(StopPrompt(self._token))
        self._token += 1
        self._playing = True
        self._interruptible = interruptible
        self._idle_since = None
        return actions + [PlayPrompt(names, self._token)]

    def _end(self, names: list[str], hangup: Hangup) -> list[IvrAction]:
        self.result = hangup
        actions = self._play(names, interruptible=False)
        self.phase = Phase.ENDING
        return actions

    def _finish(self, join: Join) -> list[IvrAction]:
        actions: list[IvrAction] = [StopPrompt(self._token)] if self._playing else []
        self._playing = False
        self.phase = Phase.DONE
        self.result = join
        return actions + [join]
