"""The committed voice prompts: present, 16 kHz mono 16-bit, audible, trimmed, small; and lookups."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from bridge.media.playback import DecodedAudioCache, FilePlayback
from bridge.media.prompts import (
    PROMPT_DIR,
    PROMPT_NAMES,
    UnknownPrompt,
    count_prompts,
    digits_prompts,
    prompt_path,
)
from bridge.media.tones import rms_dbov

REQUIRED = {
    "welcome", "enter_code", "enter_pin", "bad_pin", "bad_code", "goodbye", "too_many_attempts",
    "alone", "wait_moderator", "not_started", "ended", "room_full", "muted", "unmuted", "locked",
    "unlocked", "room_locked", "listeners_muted", "listeners_unmuted", "joined", "left",
}
# 16-bit 16 kHz costs 32 KB per second of speech; the longest sentence is about 3.5 s.
MAX_FILE_BYTES = 128 * 1024
MAX_TOTAL_BYTES = 1700 * 1024   # 1600 KB until encryption_required (about 2 s) came


def test_every_prompt_file_exists_and_nothing_else_is_there() -> None:
    assert REQUIRED <= PROMPT_NAMES
    on_disk = {p.stem for p in PROMPT_DIR.glob("*.wav")}
    assert on_disk == set(PROMPT_NAMES)


@pytest.mark.parametrize("name", sorted(PROMPT_NAMES))
def test_prompt_format_level_and_trim(name: str) -> None:
    path = PROMPT_DIR / f"{name}.wav"
    assert path.stat().st_size <= MAX_FILE_BYTES
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    assert 0.2 < len(pcm) / 16000 < 4.0
    assert rms_dbov(pcm) > -30.0                                 # clearly audible
    assert np.abs(pcm).max() < 32000                              # normalised below clipping
    # Trimmed: speech within the first and last 100 ms.
    loud = np.flatnonzero(np.abs(pcm) > 1000)
    assert loud[0] < 1600 and len(pcm) - loud[-1] < 1600


def test_prompt_folder_total_size() -> None:
    total = sum(p.stat().st_size for p in PROMPT_DIR.glob("*.wav"))
    assert total <= MAX_TOTAL_BYTES


def test_prompts_play_at_every_room_rate() -> None:
    cache = DecodedAudioCache()
    for rate in (8000, 16000, 48000):
        play = FilePlayback(prompt_path("goodbye"), rate=rate, cache=cache)
        frames = []
        while (f := play.read(rate // 50, rate)) is not None:
            frames.append(f)
        assert 0.3 < len(frames) * 0.02 < 1.5
        assert rms_dbov(np.concatenate(frames)) > -35.0


def test_prompt_path_overrides_and_unknown_names() -> None:
    assert prompt_path("welcome") == str(PROMPT_DIR / "welcome.wav")
    assert prompt_path("welcome", {"welcome": "/srv/acme/hello.mp3"}) == "/srv/acme/hello.mp3"
    assert prompt_path("goodbye", {"welcome": "/srv/acme/hello.mp3"}) == str(PROMPT_DIR / "goodbye.wav")
    assert prompt_path("custom_intro", {"custom_intro": "/x.wav"}) == "/x.wav"
    with pytest.raises(UnknownPrompt):
        prompt_path("no_such_prompt")


def test_number_prompts() -> None:
    assert digits_prompts(305) == ["digit_3", "digit_0", "digit_5"]
    assert count_prompts(1) == ["alone"]
    assert count_prompts(7) == ["there_are", "digit_7", "participants"]
    assert all(n in PROMPT_NAMES for n in count_prompts(1234567890))
    with pytest.raises(ValueError):
        digits_prompts(-1)
