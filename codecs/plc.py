"""Packet loss concealment for codecs without their own (G.711, L16, G.722).

Simplified ITU-T G.711 Appendix I: on a loss, estimate the pitch period by
autocorrelation over the last ~20 ms of good audio and repeat the last period,
fading out linearly so that the output is silent 60 ms into a loss burst. The
next good frame is cross-faded with the synthetic continuation, so recovering
from a loss does not click.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .base import Pcm

_F64 = npt.NDArray[np.float64]

_HISTORY_MS = 36      # kept history: 20 ms analysis window + longest pitch lag (15 ms)
_WINDOW_MS = 20       # autocorrelation window
_MIN_PITCH_HZ = 66    # lag range 2.5 .. 15 ms, the usual speech pitch range
_MAX_PITCH_HZ = 400
_FULL_MS = 10         # first 10 ms of a loss at full level (as in Appendix I)
_SILENT_MS = 60       # ...then a linear fade reaching silence at 60 ms
_XFADE_MS = 4         # overlap on the first good frame after a loss


class Concealer:
    """Streaming concealment state for one decoder at ``sample_rate``."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        ms = sample_rate // 1000
        self._history = np.zeros(_HISTORY_MS * ms, dtype=np.float64)
        self._window = _WINDOW_MS * ms
        self._min_lag = sample_rate // _MAX_PITCH_HZ
        self._max_lag = sample_rate // _MIN_PITCH_HZ
        self._full = _FULL_MS * ms
        self._silent = _SILENT_MS * ms
        self._xfade = _XFADE_MS * ms
        self._lost = 0                # samples concealed in the current burst
        self._period: _F64 | None = None
        self._pos = 0                 # read position inside the repeated period

    @property
    def in_loss(self) -> bool:
        return self._lost > 0

    def good(self, pcm: Pcm) -> Pcm:
        """Record a correctly decoded frame; returns it (cross-faded after a loss)."""
        out = pcm
        if self._lost and self._period is not None and self._lost < self._silent:
            n = min(self._xfade, len(pcm))
            tail = self._synth(n)
            ramp = np.linspace(0.0, 1.0, n, endpoint=False)
            mixed = pcm.astype(np.float64)
            mixed[:n] = tail * (1.0 - ramp) + mixed[:n] * ramp
            out = np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)
        self._lost = 0
        self._period = None
        self._remember(out.astype(np.float64))
        return out

    def conceal(self, samples: int) -> Pcm:
        """Synthesise ``samples`` of concealment for a lost frame."""
        if self._lost == 0:
            self._period = self._estimate_period()
            self._pos = 0
        out = self._synth(samples)
        self._lost += samples
        # Keep history continuous so a later estimate never sees a gap.
        self._remember(out)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    def _synth(self, samples: int) -> _F64:
        """Next ``samples`` of the faded periodic continuation (no state change but phase)."""
        if self._period is None or self._lost >= self._silent:
            return np.zeros(samples, dtype=np.float64)
        period = self._period
        idx = (self._pos + np.arange(samples)) % len(period)
        self._pos = int((self._pos + samples) % len(period))
        t = self._lost + np.arange(samples, dtype=np.float64)
        gain = np.clip((self._silent - t) / (self._silent - self._full), 0.0, 1.0)
        return period[idx] * gain

    def _estimate_period(self) -> _F64 | None:
        hist = self._history
        if not np.any(hist):
            return None
        target = hist[-self._window:]
        energy = float(np.dot(target, target))
        if energy == 0.0:
            return None
        # Normalised correlation of the last window with the signal `lag` samples
        # earlier, for every lag at once: c[s] pairs target with hist[s:s+window].
        cross = np.correlate(hist, target, mode="valid")
        sq = np.concatenate(([0.0], np.cumsum(hist * hist)))
        past_energy = sq[self._window:] - sq[:-self._window]
        lags = np.arange(self._min_lag, self._max_lag + 1)
        starts = len(hist) - self._window - lags
        score = cross[starts] / np.sqrt(np.maximum(past_energy[starts], 1e-9) * energy)
        best_lag = int(lags[int(np.argmax(score))])
        return hist[-best_lag:].copy()

    def _remember(self, pcm: _F64) -> None:
        n = len(self._history)
        if len(pcm) >= n:
            self._history[:] = pcm[-n:]
        else:
            self._history[:-len(pcm)] = self._history[len(pcm):]
            self._history[-len(pcm):] = pcm
