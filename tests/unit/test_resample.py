"""Streaming resampler: band edges, anti-aliasing, frequency accuracy, statefulness."""

from __future__ import annotations

import numpy as np
import pytest

from bridge_codecs import Resampler

RATES = (8000, 16000, 48000)


def tone(freq: float, rate: int, seconds: float = 0.5, amp: float = 10000.0) -> np.ndarray:
    return np.rint(amp * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.int16)


def stream(resampler: Resampler, x: np.ndarray) -> np.ndarray:
    """Feed x in 20 ms frames, checking each output frame's length."""
    frame = resampler.in_rate // 50
    out = []
    for start in range(0, len(x), frame):
        y = resampler.process(x[start:start + frame])
        assert len(y) == frame * resampler.out_rate // resampler.in_rate
        assert y.dtype == np.int16
        out.append(y)
    return np.concatenate(out)


def goertzel_db(x: np.ndarray, freq: float, rate: int, ref_amp: float = 10000.0) -> float:
    """Level of ``freq`` in dB relative to a sine of ``ref_amp`` (skips the filter's warm-up)."""
    x = x[len(x) // 4:].astype(np.float64)
    n = len(x)
    coeff = 2 * np.cos(2 * np.pi * freq / rate)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    amp = 2 * np.sqrt(max(power, 0.0)) / n
    return 20 * np.log10(max(amp, 1e-12) / ref_amp)


def dominant_freq(x: np.ndarray, rate: int) -> float:
    x = x[len(x) // 4:].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def test_3400_hz_survives_16k_to_8k_and_back() -> None:
    x = tone(3400, 16000)
    y = stream(Resampler(8000, 16000), stream(Resampler(16000, 8000), x))
    assert goertzel_db(y, 3400, 16000) >= -3.0


def test_6k_tone_is_filtered_not_aliased_going_48k_to_8k() -> None:
    x = tone(6000, 48000)
    y = stream(Resampler(48000, 8000), x)
    # A naive decimator would fold 6 kHz to 2 kHz at full level.
    assert goertzel_db(y, 2000, 8000) <= -40.0
    assert np.sqrt(np.mean(y[len(y) // 4:].astype(float) ** 2)) < 10000 / np.sqrt(2) / 100


@pytest.mark.parametrize("in_rate", RATES)
@pytest.mark.parametrize("out_rate", RATES)
def test_1k_tone_passes_every_pair_at_the_right_frequency(in_rate: int, out_rate: int) -> None:
    y = stream(Resampler(in_rate, out_rate), tone(1000, in_rate))
    assert len(y) == out_rate // 2
    assert abs(dominant_freq(y, out_rate) - 1000) <= 4
    assert abs(goertzel_db(y, 1000, out_rate)) < 0.5
    # Nothing else of note: no imaging products when upsampling.
    residual = y[len(y) // 4:].astype(float) - _fit_sine(y[len(y) // 4:], 1000, out_rate)
    assert np.sqrt(np.mean(residual ** 2)) < 10000 * 10 ** (-40 / 20)


def _fit_sine(y: np.ndarray, freq: float, rate: int) -> np.ndarray:
    t = np.arange(len(y)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y.astype(float), rcond=None)
    return basis @ coef


@pytest.mark.parametrize("rate", RATES)
def test_identity_when_rates_equal(rate: int) -> None:
    x = np.random.default_rng(1).integers(-32768, 32767, rate // 50, dtype=np.int16)
    assert np.array_equal(Resampler(rate, rate).process(x), x)


@pytest.mark.parametrize("pair", [(8000, 48000), (48000, 8000), (16000, 8000), (16000, 48000)])
def test_frame_by_frame_equals_one_shot(pair: tuple[int, int]) -> None:
    """History is carried between calls, so framing cannot introduce clicks."""
    x = np.random.default_rng(2).normal(0, 3000, pair[0] // 5).astype(np.int16)
    framed = stream(Resampler(*pair), x)
    whole = Resampler(*pair).process(x)
    assert np.array_equal(framed, whole)


def test_no_click_at_frame_boundaries() -> None:
    y = stream(Resampler(8000, 48000), tone(440, 8000))
    steady = y[len(y) // 4:].astype(float)
    # Largest sample-to-sample step of a 440 Hz sine of amplitude 10000 at 48 kHz is ~576.
    assert np.max(np.abs(np.diff(steady))) < 600


def test_overshoot_saturates_instead_of_wrapping() -> None:
    """A full-scale step rings past int16 range; the output must clip, not wrap negative."""
    r = Resampler(48000, 16000)
    r.process(np.full(960, -32768, dtype=np.int16))
    step = r.process(np.full(960, 32767, dtype=np.int16))
    settled = r.process(np.full(960, 32767, dtype=np.int16))
    assert step.max() == 32767
    first_high = int(np.argmax(step > 30000))
    assert step[first_high:].min() > 20000   # undershoot ringing is fine; a wrap would be < 0
    assert np.all(settled == 32767)


def test_rejects_unsupported_rates_and_ragged_frames() -> None:
    with pytest.raises(ValueError):
        Resampler(44100, 8000)
    with pytest.raises(ValueError):
        Resampler(48000, 8000).process(np.zeros(961, dtype=np.int16))
