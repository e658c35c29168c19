"""Names and locations of the built-in voice prompts, with per-room overrides.

The prompts live in ``bridge/prompts/<name>.wav`` (16 kHz mono 16-bit, made by
``scripts/make_prompts.sh`` with espeak-ng and sox). A room may replace any of
them with its own recording: ``prompt_path("welcome", {"welcome": "/srv/acme/hi.mp3"})``.
Nothing here opens a file; existence is the loader's (and the tests') business.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"

# name -> the words spoken (kept in step with scripts/make_prompts.sh).
PROMPT_TEXT: dict[str, str] = {
    "welcome": "Welcome to the conference bridge.",
    "enter_code": "Please enter your conference code, followed by the pound key.",
    "enter_pin": "Please enter the conference PIN, followed by the pound key.",
    "bad_pin": "That PIN is not valid. Please try again.",
    "bad_code": "That conference code is not valid. Please try again.",
    "goodbye": "Goodbye.",
    "too_many_attempts": "Too many attempts. Goodbye.",
    "alone": "You are currently the only person in this conference.",
    "wait_moderator": "Please wait, the conference will begin when the host arrives.",
    "not_started": "This conference has not started yet. Please call back later.",
    "ended": "This conference has ended. Goodbye.",
    "room_full": "This conference is full. Goodbye.",
    "muted": "You are now muted.",
    "unmuted": "You are now unmuted.",
    "locked": "The conference is locked.",
    "unlocked": "The conference is unlocked.",
    "room_locked": "This conference is locked. Goodbye.",
    "encryption_required": "Encrypted calls only. Goodbye.",
    "listeners_muted": "All listeners are muted.",
    "listeners_unmuted": "All listeners are unmuted.",
    "joined": "A participant has joined.",
    "left": "A participant has left.",
    "recording_started": "This call is being recorded.",
    "recording_stopped": "Recording stopped.",
    "there_are": "There are",
    "participants": "participants.",
    **{f"digit_{d}": d for d in "0123456789"},
}
PROMPT_NAMES: frozenset[str] = frozenset(PROMPT_TEXT)


class UnknownPrompt(KeyError):
    """A prompt name that is neither built in nor overridden by the room."""


def prompt_path(name: str, overrides: Mapping[str, str] | None = None) -> str:
    """File to play for prompt ``name``: the room's override if it has one, else the built-in WAV."""
    if overrides and name in overrides:
        return overrides[name]
    if name not in PROMPT_NAMES:
        raise UnknownPrompt(name)
    return str(PROMPT_DIR / f"{name}.wav")


def digits_prompts(number: int) -> list[str]:
    """Prompt names that read ``number`` digit by digit ("1", "2" for 12)."""
    if number < 0:
        raise ValueError("number must not be negative")
    return [f"digit_{d}" for d in str(number)]


def count_prompts(count: int) -> list[str]:
    """What to say for the participant count: "alone" for one, else "There are <n> participants"."""
    if count <= 1:
        return ["alone"]
    return ["there_are", *digits_prompts(count), "participants"]
