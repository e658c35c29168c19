"""Generated audio sources: beeps, tone sequences and comfort noise.

Every source here follows the media ``AudioSource`` protocol (``read(samples, rate)``
returns exactly ``samples`` int16 mono samples, or None when finished). They generate
at whatever rate is asked for (8, 16 or 48 kHz), keep their oscillator phase (and the
noise generator's state) across reads, so frame boundaries never click, and fade tone
edges that meet silence over a few milliseconds for the same reason.

Levels are in dBov: the RMS level relative to the overload point (int16 full scale),
so a full-scale sine is -3 dBov. A phone beep sits around -16 dBov; comfort noise
that just stops a line sounding dead sits around -65 dBov.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from bridge_codecs.base import Pcm

_F64 = npt.NDArray[np.float64]
FULL_SCALE = 32767.0
DEFAULT_BEEP_DBOV = -16.0
EDGE_RAMP_MS = 4.0     # raised-cosine fade where a tone meets silence: no click


def dbov_to_rms(dbov: float) -> float:
    """RMS amplitude (in int16 units) of a signal at ``dbov``."""
    return FULL_SCALE * 10.0 ** (dbov / 20.0)


def rms_dbov(pcm: npt.NDArray[np.integer] | _F64) -> float:
    """Measured level of ``pcm`` in dBov (-inf for digital silence)."""
    x = np.asarray(pcm, dtype=np.float64)
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return 20.0 * math.log10(rms / FULL_SCALE) if rms > 0 else float("-inf")


@dataclass(frozen=True)
class ToneSegment:
    """``ms`` milliseconds of the sum of ``freqs`` (Hz), each at ``dbov``; no freqs is silence."""

    freqs: tuple[float, ...]
    ms: int
    dbov: float = DEFAULT_BEEP_DBOV

    def __post_init__(self) -> None:
        if self.ms <= 0:
            raise ValueError("segment duration must be positive")
        if any(f <= 0 for f in self.freqs):
            raise ValueError("tone frequencies must be positive")


class ToneSource:
    """Plays tone segments back to back (optionally repeating), phase continuous.

    Oscillator k keeps its phase from segment to segment, so a change of
    frequency (440 -> 660 Hz) has no step in the waveform.
    """

    def __init__(self, segments: Sequence[ToneSegment], repeat: bool = False) -> None:
        if not segments:
            raise ValueError("a tone needs at least one segment")
        self.segments = tuple(segments)
        self.repeat = repeat
        self._pos = 0                  # samples played at self._rate
        self._rate = 0
        n_osc = max(len(s.freqs) for s in self.segments)
        self._phase = np.zeros(n_osc)  # radians, one per oscillator
        self._done = False

    @property
    def duration_ms(self) -> int:
        return sum(s.ms for s in self.segments)

    def _bounds(self, rate: int) -> list[int]:
        edges = [0]
        for seg in self.segments:
            edges.append(edges[-1] + seg.ms * rate // 1000)
        return edges

    def read(self, samples: int, rate: int) -> Pcm | None:
        if self._done:
            return None
        if rate != self._rate:
            # Keep the position in time if the room rate ever changes mid-tone.
            self._pos = self._pos * rate // self._rate if self._rate else 0
            self._rate = rate
        edges = self._bounds(rate)
        total = edges[-1]
        if self._pos >= total and not self.repeat:
            self._done = True
            return None
        out = np.zeros(samples)
        filled = 0
        while filled < samples:
            if self._pos >= total:
                if not self.repeat:
                    break                       # pad the last frame with silence
                self._pos = 0
            i = int(np.searchsorted(edges, self._pos, side="right")) - 1
            seg_end = edges[i + 1]
            n = min(samples - filled, seg_end - self._pos)
            out[filled:filled + n] = self._render(i, self._pos - edges[i], n, rate, edges)
            filled += n
            self._pos += n
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)   # loud dual tones may clip

    def _render(self, index: int, offset: int, n: int, rate: int, edges: list[int]) -> _F64:
        seg = self.segments[index]
        y = np.zeros(n)
        if not seg.freqs:
            return y
        peak = dbov_to_rms(seg.dbov) * math.sqrt(2.0)
        steps = np.arange(n)
        for k, f in enumerate(seg.freqs):
            w = 2.0 * math.pi * f / rate
            y += peak * np.sin(self._phase[k] + w * steps)
            self._phase[k] = (self._phase[k] + w * n) % (2.0 * math.pi)
        return y * self._envelope(index, offset, n, rate, edges)

    def _envelope(self, index: int, offset: int, n: int, rate: int, edges: list[int]) -> _F64:
        """Fade in/out where this segment meets silence, the start/end, or a change of
        oscillator count or level; a pure pitch change is phase continuous and needs none."""
        env = np.ones(n)
        length = edges[index + 1] - edges[index]
        ramp = max(1, min(int(EDGE_RAMP_MS * rate / 1000), length // 2))
        t = offset + np.arange(n)
        count = len(self.segments)
        seg = self.segments[index]
        prev, nxt = self.segments[(index - 1) % count], self.segments[(index + 1) % count]
        fade_in = (index == 0 and not self.repeat) or not _flows(prev, seg)
        fade_out = (index == count - 1 and not self.repeat) or not _flows(seg, nxt)
        if fade_in:
            env *= np.where(t < ramp, 0.5 - 0.5 * np.cos(np.pi * (t + 0.5) / ramp), 1.0)
        if fade_out:
            tail = length - t
            env *= np.where(tail <= ramp, 0.5 - 0.5 * np.cos(np.pi * (tail - 0.5) / ramp), 1.0)
        return env


def _flows(a: ToneSegment, b: ToneSegment) -> bool:
    """b continues a without a ramp: same oscillators at the same level (only pitch may change)."""
    return bool(a.freqs) and len(a.freqs) == len(b.freqs) and a.dbov == b.dbov


ToneStep = tuple[float | tuple[float, ...], int]


def tone_sequence(steps: Iterable[ToneStep], dbov: float = DEFAULT_BEEP_DBOV,
                  repeat: bool = False) -> ToneSource:
    """Build a tone from ``(freq_or_freqs, ms)`` steps; a frequency of 0 (or ()) is a pause."""
    segments = []
    for freq, ms in steps:
        freqs = tuple(f for f in (freq if isinstance(freq, tuple) else (freq,)) if f)
        segments.append(ToneSegment(freqs, ms, dbov))
    return ToneSource(segments, repeat=repeat)


def entry_tone(dbov: float = DEFAULT_BEEP_DBOV) -> ToneSource:
    """Someone joined: rising 440 -> 660 Hz, 100 ms each."""
    return tone_sequence([(440.0, 100), (660.0, 100)], dbov)


def exit_tone(dbov: float = DEFAULT_BEEP_DBOV) -> ToneSource:
    """Someone left: falling 660 -> 440 Hz, 100 ms each."""
    return tone_sequence([(660.0, 100), (440.0, 100)], dbov)


def confirm_tone(dbov: float = DEFAULT_BEEP_DBOV) -> ToneSource:
    """Short neutral acknowledgement (e.g. a keypad command with no prompt)."""
    return tone_sequence([(880.0, 80)], dbov)


class NoiseSource:
    """Endless comfort noise at ``dbov`` (white, or pink by the Voss-McCartney method).

    Pink noise: ``rows`` white generators, row j holding each value for 2**j samples,
    summed with one fresh white row. Row values are keyed by absolute sample index,
    so the sequence continues seamlessly from one read to the next.
    """

    def __init__(self, dbov: float = -65.0, color: Literal["pink", "white"] = "pink",
                 seed: int | None = 0, rows: int = 12) -> None:
        self.dbov = dbov
        self.color = color
        self._rng = np.random.default_rng(seed)
        self._rows = rows if color == "pink" else 0
        self._count = 0                                  # samples generated so far
        self._last_block = np.full(self._rows, -1, dtype=np.int64)
        self._last_value = np.zeros(self._rows)

    def read(self, samples: int, rate: int) -> Pcm | None:
        idx = self._count + np.arange(samples, dtype=np.int64)
        self._count += samples
        acc = self._rng.standard_normal(samples)
        for j in range(self._rows):
            blocks = idx >> j
            first = int(self._last_block[j])
            fresh = self._rng.standard_normal(int(blocks[-1]) - first)
            values = np.concatenate(([self._last_value[j]], fresh))
            acc += values[blocks - first]
            self._last_block[j] = blocks[-1]
            self._last_value[j] = values[-1]
        scale = dbov_to_rms(self.dbov) / math.sqrt(self._rows + 1)
        return np.clip(np.rint(acc * scale), -32768, 32767).astype(np.int16)
