from __future__ import annotations

import numpy as np

from bridge.audio_assets import COMFORT_NOISE_DBOV, builtin_music, comfort_noise
from bridge.media.tones import rms_dbov


def test_comfort_noise_is_quiet_continuous_and_loops() -> None:
    for rate in (8000, 16000, 48000):
        source = comfort_noise(rate)
        frames = [source.read(rate // 50, rate) for _ in range(200)]  # 4 s: wraps the 3 s buffer
        assert all(f is not None and len(f) == rate // 50 for f in frames)
        pcm = np.concatenate([f for f in frames if f is not None])
        assert abs(rms_dbov(pcm) - COMFORT_NOISE_DBOV) < 3.0
        assert np.count_nonzero(pcm) > len(pcm) // 2  # noise, not digital silence


def test_builtin_music_never_ends_and_is_audible() -> None:
    music = builtin_music()
    frames = [music.read(320, 16000) for _ in range(300)]  # 6 s, longer than one cycle
    assert all(f is not None for f in frames)
    level = rms_dbov(np.concatenate([f for f in frames if f is not None]))
    assert -35.0 < level < -20.0
