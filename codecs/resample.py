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

from .base import Pcm


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
        # np.convolve (direct, in C) beats a matmul over a strided window view ~2x here.
        if self._up > 1:
            # Phase p produces output samples p, p+L, ...: taps h[p], h[p+L], ...
            # Scaled by L to restore the level lost to zero-stuffing.
            self._phases = np.ascontiguousarray(h.reshape(-1, self._up).T * self._up)
        else:
            # Decimation, polyphase: tap i = q*M + r only ever meets input samples
            # with one residue mod M, so each residue stream gets its own short filter.
            self._phases = np.ascontiguousarray(h.reshape(-1, self._down).T)
        self._taps = len(h) // max(self._up, 1) if self._up > 1 else len(h)
        self._history = np.zeros(self._taps - 1, dtype=np.float64)

    def process(self, frame: Pcm) -> Pcm:
        if self.identity:
            return frame
        n = len(frame)
        if n % self._down:
            raise ValueError(f"frame of {n} samples is not a multiple of {self._down}")
        buf = np.concatenate((self._history, frame.astype(np.float64)))
        self._history = buf[n:]
        if self._up > 1:
            y = np.empty(n * self._up, dtype=np.float64)
            for p, phase in enumerate(self._phases):
                y[p::self._up] = np.convolve(buf, phase, mode="valid")
        else:
            # y[k] = sum_i h[i] * buf[k*M + D - i], D = M + taps - 2; with i = q*M + r the
            # input index is (k - q + a_r)*M + b_r where D - r = a_r*M + b_r.
            m, out = self._down, n // self._down
            d = m + self._taps - 2
            y = np.zeros(out, dtype=np.float64)
            for r, phase in enumerate(self._phases):
                a, b = divmod(d - r, m)
                y += np.convolve(buf[b::m], phase, mode="full")[a:a + out]
        return np.clip(np.rint(y), -32768, 32767).astype(np.int16)

    def reset(self) -> None:
        self._history[:] = 0

    @property
    def history(self) -> npt.NDArray[np.float64]:
        """The last input samples kept for the next frame: a room that resamples many streams
        in one matrix product (bridge/media/row_resample.py) reads and writes them here."""
        return self._history

    @history.setter
    def history(self, value: npt.NDArray[np.float64]) -> None:
        if value.shape != self._history.shape:
            raise ValueError(f"history of {value.shape}, expected {self._history.shape}")
        self._history = value
