"""Streaming integer-ratio resampling between 8, 16 and 48 kHz.

A polyphase FIR: one Kaiser-windowed-sinc lowpass designed at the higher rate,
cut off just below the lower rate's Nyquist frequency, split into L phases for
upsampling (or strided by M for downsampling). The last taps-1 input samples are
kept between calls, so frame-by-frame output equals resampling the whole stream
at once: no clicks at frame boundaries. Latency is the filter's group delay
(about 3.6 ms at these settings).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from .base import Pcm

_F32 = npt.NDArray[np.float32]

SUPPORTED_RATES = (8000, 16000, 48000)
_PASS_EDGE = 0.425      # of the lower rate: 3.4 kHz at 8 kHz, 6.8 kHz at 16 kHz
_STOP_EDGE = 0.5        # nothing above the lower Nyquist may fold back
_ATTEN_DB = 70.0


@lru_cache(maxsize=None)
def design_lowpass(high_rate: int, low_rate: int) -> npt.NDArray[np.float64]:
    """Kaiser-windowed sinc at ``high_rate`` passing 0.425*low_rate, stopping 0.5*low_rate."""
    f_pass, f_stop = _PASS_EDGE * low_rate, _STOP_EDGE * low_rate
    width = 2 * np.pi * (f_stop - f_pass) / high_rate           # rad/sample
    taps = int(np.ceil((_ATTEN_DB - 7.95) / (2.285 * width))) + 1  # Kaiser's estimate
    ratio = high_rate // low_rate
    taps += (-taps) % ratio                                      # whole number of phases
    beta = 0.1102 * (_ATTEN_DB - 8.7)
    cutoff = (f_pass + f_stop) / 2 / high_rate                   # cycles/sample
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, beta)
    h /= h.sum()                                                 # unity DC gain
    h.setflags(write=False)
    return h


class Resampler:
    """Stateful resampler: ``process`` maps n samples to exactly n*out_rate/in_rate."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        for rate in (in_rate, out_rate):
            if rate not in SUPPORTED_RATES:
                raise ValueError(f"unsupported rate {rate}; expected one of {SUPPORTED_RATES}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._up = max(out_rate // in_rate, 1)
        self._down = max(in_rate // out_rate, 1)
        self.identity = in_rate == out_rate
        h = design_lowpass(max(in_rate, out_rate), min(in_rate, out_rate))
        if self._up > 1:
            # Phase p produces output samples p, p+L, ...: taps h[p], h[p+L], ...
            # Reversed so a sliding window (oldest first) dotted with it is a convolution.
            # Scaled by L to restore the level lost to zero-stuffing.
            phases = h.reshape(-1, self._up).T * self._up
            self._kernel: _F32 = np.ascontiguousarray(phases[:, ::-1].T, dtype=np.float32)
        else:
            self._kernel = np.ascontiguousarray(h[::-1, None], dtype=np.float32)
        self._taps = self._kernel.shape[0]
        self._history = np.zeros(self._taps - 1, dtype=np.float32)

    def process(self, frame: Pcm) -> Pcm:
        if self.identity:
            return frame
        n = len(frame)
        if n % self._down:
            raise ValueError(f"frame of {n} samples is not a multiple of {self._down}")
        buf = np.concatenate((self._history, frame.astype(np.float32)))
        self._history = buf[n:]
        windows = sliding_window_view(buf, self._taps)           # (n, taps), no copy
        if self._down > 1:
            windows = windows[self._down - 1::self._down]
        # (outputs_per_phase, L) row-major is exactly the interleaved output order.
        y = (windows @ self._kernel).reshape(-1)
        return np.clip(np.rint(y), -32768, 32767).astype(np.int16)

    def reset(self) -> None:
        self._history[:] = 0
