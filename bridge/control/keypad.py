"""In-call keypad menu (sans-IO): DTMF keys in, conference actions out.

Every command is '*' followed by one key (as in Asterisk ConfBridge). The table,
ready for the README:

| Keys | Who        | Action                                             | Caller hears                    |
|------|------------|----------------------------------------------------|---------------------------------|
| *6   | everyone   | mute / unmute yourself                             | "You are now muted / unmuted."  |
| *3   | everyone   | how many are in the conference                     | "There are 4 participants."     |
| *7   | everyone   | hear the others quieter (-3 dB a press, to -12 dB) | the change itself               |
| *9   | everyone   | hear the others louder (+3 dB a press, to +12 dB)  | the change itself               |
| *8   | everyone   | leave the conference                               | "Goodbye."                      |
| *1   | moderators | lock / unlock (nobody new gets in while locked)    | "The conference is (un)locked." |
| *2   | moderators | mute / unmute all non-moderators                   | "All listeners are (un)muted."  |
| *5   | moderators | remove whoever joined last                         | the exit beep                   |
| *4   | moderators¹ | start / stop recording the conference             | start: everyone hears "This call is being recorded."; stop: "Recording stopped." |

¹ and every participant of a conference with ``allow_recording_by_participant``.

Rules:
  - The key after '*' must come within STAR_TIMEOUT (3 s), else the '*' is dropped.
    '**' starts over (the second star is a fresh prefix). Unknown pairs, '#' and
    moderator keys pressed by a member are ignored.
  - Single-key shortcuts are off by default: a lone digit does nothing. In-band DTMF
    detection can be fooled by speech or music now and then, and a stray key should
    not mute someone or lock the room; the star makes a command deliberate. Rooms may
    turn them on (``single_key=True``): then a bare '6' acts as '*6', and so on.
  - The caller's current state comes in with each key (``CallState``) because REST
    and other callers can change mute and lock at any time; the prompt tells the new
    state.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.control.ivr import PlayPrompt
from bridge.media.prompts import count_prompts

STAR_TIMEOUT = 3.0
VOLUME_STEP_DB = 3.0
VOLUME_LIMIT_DB = 12.0


@dataclass(frozen=True)
class CallState:
    """Snapshot the service passes with each key."""

    is_moderator: bool
    muted: bool
    room_locked: bool
    listeners_muted: bool
    participants: int
    recording: bool = False       # the conference is being recorded
    may_record: bool = False      # this caller may start/stop recording (*4)


@dataclass(frozen=True)
class ToggleMute:
    leg: str


@dataclass(frozen=True)
class SetLocked:
    locked: bool


@dataclass(frozen=True)
class MuteAllNonModerators:
    muted: bool


@dataclass(frozen=True)
class SetListenGain:
    """What this leg hears, scaled by ``gain_db`` (absolute, 0 = unchanged)."""

    leg: str
    gain_db: float


@dataclass(frozen=True)
class Leave:
    """Say goodbye to this leg and hang it up."""

    leg: str


@dataclass(frozen=True)
class KickLast:
    """Remove the most recently joined participant (other than the one asking)."""

    requested_by: str


@dataclass(frozen=True)
class ToggleRecording:
    """Start recording the conference, or stop the recording in progress."""

    requested_by: str


KeypadAction = (ToggleMute | SetLocked | MuteAllNonModerators | SetListenGain | Leave | KickLast
                | ToggleRecording | PlayPrompt)


class Keypad:
    """One leg's keypad."""

    def __init__(self, leg: str, single_key: bool = False, star_timeout: float = STAR_TIMEOUT) -> None:
        self.leg = leg
        self.single_key = single_key
        self.star_timeout = star_timeout
        self.listen_gain_db = 0.0
        self._star_at: float | None = None

    def on_digit(self, digit: str, now: float, state: CallState) -> list[KeypadAction]:
        self.on_timer(now)                         # an expired '*' must not combine with this key
        if digit == "*":
            self._star_at = now
            return []
        if self._star_at is None:
            return self._command(digit, state) if self.single_key else []
        self._star_at = None
        return self._command(digit, state)

    def on_timer(self, now: float) -> list[KeypadAction]:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._star_at = None
        return []

    def next_deadline(self) -> float | None:
        return None if self._star_at is None else self._star_at + self.star_timeout

    def _command(self, key: str, state: CallState) -> list[KeypadAction]:
        if key == "6":
            return [ToggleMute(self.leg), PlayPrompt(["unmuted" if state.muted else "muted"])]
        if key == "3":
            return [PlayPrompt(count_prompts(state.participants))]
        if key in ("7", "9"):
            step = VOLUME_STEP_DB if key == "9" else -VOLUME_STEP_DB
            gain = max(-VOLUME_LIMIT_DB, min(VOLUME_LIMIT_DB, self.listen_gain_db + step))
            if gain == self.listen_gain_db:
                return []
            self.listen_gain_db = gain
            return [SetListenGain(self.leg, gain)]
        if key == "8":
            return [Leave(self.leg)]
        if key == "4":
            if not state.may_record:
                return []
            # Starting is announced to everyone by the conference; stopping is told to the caller.
            actions: list[KeypadAction] = [ToggleRecording(self.leg)]
            if state.recording:
                actions.append(PlayPrompt(["recording_stopped"]))
            return actions
        if not state.is_moderator:
            return []
        if key == "1":
            locked = not state.room_locked
            return [SetLocked(locked), PlayPrompt(["locked" if locked else "unlocked"])]
        if key == "2":
            muted = not state.listeners_muted
            return [MuteAllNonModerators(muted),
                    PlayPrompt(["listeners_muted" if muted else "listeners_unmuted"])]
        if key == "5":
            return [KickLast(self.leg)]
        return []
