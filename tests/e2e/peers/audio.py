"""Test-signal generation and detectors for what real softphones heard.

Signals that went through G.711/G.722/Opus, a jitter buffer and silence padding are
noisy and shifted in time, so the detectors here measure *relative* band energy over
windows that actually carry sound, never exact sample values or absolute levels.
All sample arrays are float64 mono in [-1, 1].
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]

MIN_PROMINENCE_DB = 15.0  # a tone's band density over the spectrum's median density
SILENCE_DBFS = -55.0  # windows quieter than this count as silence (G.711 idle noise is ~-70)
_EPS = 1e-20


# ---------------------------------------------------------------- WAV files


def write_wav(path: str | Path, samples: npt.ArrayLike, rate: int, channels: int = 1) -> Path:
    """Write float samples in [-1, 1] (mono; duplicated to ``channels``) as 16-bit PCM."""
    mono = np.asarray(samples, dtype=np.float64).clip(-1.0, 1.0)
    pcm = np.round(mono * 32767.0).astype("<i2")
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1).reshape(-1)
    out = Path(path)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return out


def tone(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.3) -> Samples:
    t = np.arange(int(round(seconds * rate)), dtype=np.float64) / rate
    return amplitude * np.sin(2.0 * np.pi * freq_hz * t)


def tone_wav(
    path: str | Path,
    freq_hz: float,
    seconds: float,
    rate: int,
    channels: int = 1,
    amplitude: float = 0.3,
    lead_silence: float = 0.0,
    tail_silence: float = 2.0,
) -> Path:
    """A sine with silence around it, as baresip's ``aufile`` source wants it.

    baresip hangs up when its aufile ends, so ``tail_silence`` keeps the call up while
    the far side is still talking. The rate/channels must match the codec exactly
    (8000/1 PCMU/PCMA, 16000/1 G722, 48000/2 opus).
    """
    body = tone(freq_hz, seconds, rate, amplitude)
    # 5 ms raised-cosine ramps: a hard edge splatters energy over the whole band.
    ramp = min(len(body) // 2, int(0.005 * rate))
    if ramp > 0:
        env = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp))
        body[:ramp] *= env
        body[-ramp:] *= env[::-1]
    lead = np.zeros(int(round(lead_silence * rate)))
    tail = np.zeros(int(round(tail_silence * rate)))
    return write_wav(path, np.concatenate([lead, body, tail]), rate, channels)


def read_wav(path: str | Path) -> tuple[Samples, int]:
    """Read a PCM WAV (8/16/32-bit) as float mono (channels averaged) and its rate."""
    with wave.open(str(path), "rb") as w:
        channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 1:  # 8-bit WAV PCM is unsigned
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0
    else:
        raise ValueError(f"{path}: unsupported sample width {width}")
    usable = len(data) - len(data) % channels
    mono = data[:usable].reshape(-1, channels).mean(axis=1)
    return mono, rate


# ---------------------------------------------------------------- basic measures


def segment(samples: Samples, rate: int, start_s: float, end_s: float | None = None) -> Samples:
    """Samples between ``start_s`` and ``end_s`` seconds (clamped to the signal)."""
    lo = max(0, int(round(start_s * rate)))
    hi = len(samples) if end_s is None else max(lo, int(round(end_s * rate)))
    return samples[lo:hi]


def rms_dbfs(samples: Samples) -> float:
    """RMS level in dBFS (a full-scale sine is -3 dBFS); -inf for digital silence."""
    if len(samples) == 0:
        return float("-inf")
    ms = float(np.mean(np.square(samples)))
    return 10.0 * math.log10(ms) if ms > 0 else float("-inf")


def window_rms_dbfs(samples: Samples, rate: int, window: float = 0.02) -> Samples:
    """RMS level per consecutive ``window``-second frame (a trailing partial frame is dropped)."""
    n = max(1, int(round(window * rate)))
    frames = len(samples) // n
    if frames == 0:
        return np.zeros(0)
    ms = np.mean(np.square(samples[: frames * n].reshape(frames, n)), axis=1)
    return np.asarray(10.0 * np.log10(np.maximum(ms, _EPS)), dtype=np.float64)


def active_seconds(samples: Samples, rate: int, *, threshold_dbfs: float = SILENCE_DBFS) -> float:
    """How many seconds of the signal are louder than ``threshold_dbfs`` (20 ms frames)."""
    return float(np.count_nonzero(window_rms_dbfs(samples, rate, 0.02) > threshold_dbfs)) * 0.02


def first_activity(
    samples: Samples, rate: int, *, threshold_dbfs: float = SILENCE_DBFS, window: float = 0.02
) -> float | None:
    """Start time in seconds of the first non-silent frame, or None."""
    loud = np.flatnonzero(window_rms_dbfs(samples, rate, window) > threshold_dbfs)
    return float(loud[0]) * window if len(loud) else None


# ---------------------------------------------------------------- frequency detectors


def goertzel_power(samples: Samples, rate: int, freq: float) -> float:
    """Mean-square power of the ``freq`` component (a sine of amplitude A gives ~A**2/2).

    Hann-windowed so a strong tone elsewhere does not leak into the probed bin; the
    window's coherent gain is divided back out.
    """
    n = len(samples)
    if n < 2:
        return 0.0
    win = np.hanning(n)
    x = samples * win
    coeff = 2.0 * np.cos(2.0 * np.pi * freq / rate)
    s1 = s2 = 0.0
    for v in x.tolist():  # plain loop is fine: tests probe ~1e5 samples at most
        s1, s2 = v + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    gain = float(np.sum(win))
    return float(2.0 * power / (gain * gain))


def _band_stats(
    frames: Samples, rate: int, freq: float, tolerance_hz: float
) -> tuple[Samples, Samples]:
    """Per frame: (energy within freq +- tolerance over total energy, band peak-to-floor).

    Hann window + Parseval for the ratio. The peak-to-floor value (band mean power
    density over the median density of the spectrum) tells a tone from broadband
    noise, which also puts a fixed share of its energy into any band.
    """
    n = frames.shape[1]
    spec = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2
    bins = np.fft.rfftfreq(n, 1.0 / rate)
    # The Hann main lobe is 2 bins wide each side; always include it.
    width = max(tolerance_hz, 2.0 * rate / n)
    band = np.abs(bins - freq) <= width
    body = spec[:, 1:]  # skip DC: codecs add offsets, not tones
    total = np.sum(body, axis=1)
    ratio = np.sum(spec[:, band], axis=1) / np.maximum(total, _EPS)
    prominence = np.mean(spec[:, band], axis=1) / np.maximum(np.median(body, axis=1), _EPS)
    return np.asarray(ratio, dtype=np.float64), np.asarray(prominence, dtype=np.float64)


def _active_frames(
    samples: Samples, rate: int, window: float, threshold_dbfs: float
) -> Samples:
    n = max(16, int(round(window * rate)))
    count = len(samples) // n
    if count == 0:
        return np.zeros((0, n))
    frames = samples[: count * n].reshape(count, n)
    level = 10.0 * np.log10(np.maximum(np.mean(np.square(frames), axis=1), _EPS))
    return np.asarray(frames[level > threshold_dbfs], dtype=np.float64)


def tone_level_db(
    samples: Samples,
    rate: int,
    freq: float,
    window: float = 0.1,
    *,
    tolerance_hz: float = 25.0,
    threshold_dbfs: float = SILENCE_DBFS,
) -> float:
    """Energy near ``freq`` relative to total energy, in dB, over non-silent windows.

    0 dB means the sound is nothing but that tone; -inf means it was never there or the
    signal is all silence. Silent windows (padding, pre-answer, post-hangup) are left
    out so they cannot dilute the ratio. ``tolerance_hz`` absorbs resampler and codec
    frequency smear.
    """
    frames = _active_frames(samples, rate, window, threshold_dbfs)
    if len(frames) == 0:
        return float("-inf")
    spec_ratio, _ = _band_stats(frames, rate, freq, tolerance_hz)
    energy = np.sum(np.square(frames), axis=1)
    # Energy-weighted mean over windows == ratio of the sums.
    ratio = float(np.sum(spec_ratio * energy) / max(float(np.sum(energy)), _EPS))
    return 10.0 * math.log10(ratio) if ratio > 0 else float("-inf")


def tone_presence(
    samples: Samples,
    rate: int,
    freq: float,
    window: float = 0.1,
    *,
    min_rel_db: float = -20.0,
    tolerance_hz: float = 25.0,
    threshold_dbfs: float = SILENCE_DBFS,
) -> float:
    """Seconds of non-silent windows in which ``freq`` is a tone within ``min_rel_db`` of the total.

    A window counts only if the band also stands at least ``MIN_PROMINENCE_DB`` above
    the spectrum's median floor, so noise or speech-like hiss never counts as a tone.
    """
    frames = _active_frames(samples, rate, window, threshold_dbfs)
    if len(frames) == 0:
        return 0.0
    ratio, prominence = _band_stats(frames, rate, freq, tolerance_hz)
    hits = np.count_nonzero(
        (ratio >= 10.0 ** (min_rel_db / 10.0)) & (prominence >= 10.0 ** (MIN_PROMINENCE_DB / 10.0))
    )
    return float(hits) * max(16, int(round(window * rate))) / rate


def tone_seconds(samples: Samples, rate: int, freq: float, start_s: float, end_s: float) -> float:
    """Seconds within [start_s, end_s) of a recording where ``freq`` is clearly present."""
    return tone_presence(segment(samples, rate, start_s, end_s), rate, freq, min_rel_db=-15)


def has_tone(
    samples: Samples,
    rate: int,
    freq: float,
    *,
    min_rel_db: float = -20.0,
    min_seconds: float = 0.3,
    window: float = 0.1,
    tolerance_hz: float = 25.0,
) -> bool:
    """True when ``freq`` dominates at least ``min_seconds`` worth of non-silent windows.

    Counting windows (not the global ratio) means a tone that is present only for part
    of a recording -- e.g. before a mute -- is still found, and a short click is not.
    """
    return (
        tone_presence(samples, rate, freq, window, min_rel_db=min_rel_db, tolerance_hz=tolerance_hz)
        >= min_seconds
    )


def dominant_frequency(
    samples: Samples,
    rate: int,
    *,
    min_hz: float = 50.0,
    threshold_dbfs: float = SILENCE_DBFS,
) -> float | None:
    """Frequency of the strongest spectral peak over the non-silent part, or None if silent.

    Averages the power spectra of 100 ms windows (so silence gaps do not matter) and
    refines the peak by parabolic interpolation on log magnitude.
    """
    window = 0.1
    frames = _active_frames(samples, rate, window, threshold_dbfs)
    if len(frames) == 0:
        return None
    n = frames.shape[1]
    spec = np.mean(np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2, axis=0)
    bins = np.fft.rfftfreq(n, 1.0 / rate)
    spec[bins < min_hz] = 0.0
    k = int(np.argmax(spec))
    if 0 < k < len(spec) - 1:
        a, b, c = np.log(np.maximum(spec[k - 1 : k + 2], _EPS))
        denom = a - 2.0 * b + c
        offset = 0.5 * (a - c) / denom if denom != 0 else 0.0
    else:
        offset = 0.0
    return float((k + offset) * rate / n)
