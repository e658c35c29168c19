"""Beeps, tone sequences and comfort noise: rates, levels, phase continuity, edges."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest

from bridge.media.tones import (
    NoiseSource,
    ToneSegment,
    ToneSource,
    dbov_to_rms,
    entry_tone,
    exit_tone,
    rms_dbov,
    tone_sequence,
)

RATES = (8000, 16000, 48000)


def drain(src: ToneSource, rate: int, frame_ms: int = 20) -> tuple[npt.NDArray[np.int16], int]:
    frames = []
    while (f := src.read(rate * frame_ms // 1000, rate)) is not None:
        assert f.dtype == np.int16 and len(f) == rate * frame_ms // 1000
        frames.append(f)
        assert len(frames) < 10_000
    return np.concatenate(frames), len(frames)


def dominant_hz(x: npt.NDArray[np.integer], rate: int) -> float:
    spec = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64) * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spec.argmax()])


@pytest.mark.parametrize("rate", RATES)
def test_entry_tone_rises_and_exit_tone_falls(rate: int) -> None:
    for make, first, second in ((entry_tone, 440, 660), (exit_tone, 660, 440)):
        pcm, frames = drain(make(), rate)
        assert frames == 10                                    # 200 ms in 20 ms frames, then None
        half = rate // 10
        assert dominant_hz(pcm[:half], rate) == pytest.approx(first, abs=10)
        assert dominant_hz(pcm[half:2 * half], rate) == pytest.approx(second, abs=10)


@pytest.mark.parametrize("rate", RATES)
def test_level_in_dbov(rate: int) -> None:
    src = tone_sequence([(1000.0, 500)], dbov=-20.0)
    pcm, _ = drain(src, rate)
    steady = pcm[rate // 50: rate * 2 // 5]                    # away from the edge ramps
    assert rms_dbov(steady) == pytest.approx(-20.0, abs=0.1)
    assert dbov_to_rms(-3.0103) * np.sqrt(2) == pytest.approx(32767, rel=1e-4)


@pytest.mark.parametrize("rate", RATES)
def test_chunked_reads_equal_one_read(rate: int) -> None:
    """Phase continuity: any split of reads yields exactly the same waveform."""
    whole = entry_tone().read(rate // 5, rate)
    src = entry_tone()
    parts = []
    for n in (7, 1, rate // 50, 333, rate // 5):                # the last read overruns the end
        f = src.read(n, rate)
        assert f is not None
        parts.append(f)
    joined = np.concatenate(parts)[: rate // 5]
    assert whole is not None
    np.testing.assert_array_equal(joined, whole)
    assert src.read(160, rate) is None


@pytest.mark.parametrize("rate", RATES)
def test_no_clicks_edges_fade_and_frequency_change_is_smooth(rate: int) -> None:
    pcm, _ = drain(entry_tone(dbov=-10.0), rate)
    peak = dbov_to_rms(-10.0) * np.sqrt(2)
    assert abs(int(pcm[0])) < 0.02 * peak and abs(int(pcm[rate // 5 - 1])) < 0.02 * peak
    # A sine's largest step between samples is peak * 2*pi*f/rate; a phase jump would exceed it.
    max_step = peak * 2 * np.pi * 660 / rate
    assert np.abs(np.diff(pcm.astype(np.int32))).max() <= max_step + 2


def test_change_of_oscillator_count_is_faded_not_cut() -> None:
    """Dual tone -> single tone: the dropped oscillator must fade out, not stop mid-swing."""
    rate = 8000
    pcm = tone_sequence([((350.0, 440.0), 100), (440.0, 100)], dbov=-10.0).read(1600, rate)
    assert pcm is not None
    peak = 2 * dbov_to_rms(-10.0) * np.sqrt(2)
    assert np.abs(np.diff(pcm.astype(np.int32))).max() <= peak * 2 * np.pi * 440 / rate + 2
    assert abs(int(pcm[799])) < 0.05 * peak                    # both fade at the boundary


def test_repeat_keeps_going_and_pauses_are_silent() -> None:
    src = tone_sequence([((350.0, 440.0), 40), (0, 40)], repeat=True)
    pcm = np.concatenate([src.read(160, 8000) for _ in range(60)])  # type: ignore[misc]
    assert len(pcm) == 9600                                    # 15 cycles, never finished
    blocks = pcm.reshape(-1, 640)                              # 40 ms tone + 40 ms pause
    assert (blocks[:, 320:] == 0).all()                        # every pause is silent
    assert (np.abs(blocks[:, 40:280]).max(axis=1) > 1000).all()  # every tone sounds


def test_rate_change_mid_tone_keeps_time_position() -> None:
    src = tone_sequence([(500.0, 100)])
    assert src.read(400, 8000) is not None                    # 50 ms at 8 kHz
    assert src.read(2400, 48000) is not None                  # next 50 ms at 48 kHz
    assert src.read(160, 8000) is None


def test_overdriven_tone_clips_instead_of_wrapping() -> None:
    pcm = tone_sequence([((697.0, 1209.0), 100)], dbov=0.0).read(800, 8000)
    quiet = tone_sequence([((697.0, 1209.0), 100)], dbov=-20.0).read(800, 8000)
    assert pcm is not None and quiet is not None
    expected = np.clip(quiet.astype(np.float64) * 10.0, -32768, 32767)   # same wave, 20 dB up
    assert pcm.max() == 32767 and pcm.min() == -32768
    assert np.abs(pcm - expected).max() <= 10                  # rounding only: clipped, not wrapped


def test_invalid_segments() -> None:
    with pytest.raises(ValueError):
        ToneSegment((440.0,), 0)
    with pytest.raises(ValueError):
        ToneSegment((-1.0,), 10)
    with pytest.raises(ValueError):
        ToneSource([])


def octave_powers_db(x: npt.NDArray[np.int16], rate: int, edges: list[float]) -> list[float]:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return [10 * np.log10(spec[(freqs >= lo) & (freqs < hi)].sum()) for lo, hi in itertools.pairwise(edges)]


@pytest.mark.parametrize("rate", (8000, 16000))
def test_comfort_noise_level_and_pink_spectrum(rate: int) -> None:
    src = NoiseSource(dbov=-50.0, seed=1)
    frames = [src.read(rate // 50, rate) for _ in range(200)]  # 4 s: never finishes
    pcm = np.concatenate([f for f in frames if f is not None])
    assert len(pcm) == 4 * rate
    assert rms_dbov(pcm) == pytest.approx(-50.0, abs=1.0)
    bands = octave_powers_db(pcm, rate, [125, 250, 500, 1000, 2000])
    assert max(bands) - min(bands) < 4.0                       # pink: equal power per octave
    # Continuity across reads: no sample-to-sample jump larger than the white part allows.
    assert np.abs(np.diff(pcm.astype(np.int32))).max() < 8 * dbov_to_rms(-50.0)


def test_white_noise_rises_3db_per_octave_and_default_level() -> None:
    src = NoiseSource(color="white", dbov=-40.0, seed=2)
    pcm = np.concatenate([src.read(320, 16000) for _ in range(200)])  # type: ignore[misc]
    bands = octave_powers_db(pcm, 16000, [250, 500, 1000, 2000, 4000])
    steps = np.diff(bands)
    assert np.all(np.abs(steps - 3.0) < 1.0)
    quiet = NoiseSource(seed=3).read(16000, 16000)
    assert quiet is not None and rms_dbov(quiet) == pytest.approx(-65.0, abs=1.5)
