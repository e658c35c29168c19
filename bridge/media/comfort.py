"""Comfort noise: quiet pink noise under a room's mix, so silence never sounds like a dropped call."""

from __future__ import annotations

from bridge.media.ports import AudioSource, PcmSource
from bridge.media.tones import NoiseSource

COMFORT_NOISE_DBOV = -65.0
_COMFORT_NOISE_SECONDS = 3


def comfort_noise(rate: int, _cache: dict[int, object] = {}) -> AudioSource:
    """Quiet pink noise under the mix, so silence never sounds like a dropped call.

    Generated once per rate (3 s) and looped: generating fresh noise every tick
    costs ~0.25 ms per room, looping a buffer a few microseconds."""
    pcm = _cache.get(rate)
    if pcm is None:
        noise = NoiseSource(COMFORT_NOISE_DBOV, "pink", seed=7)
        pcm = _cache[rate] = noise.read(rate * _COMFORT_NOISE_SECONDS, rate)
    return PcmSource(pcm, rate, loop=True)  # type: ignore[arg-type]
