"""In-band DTMF detection for callers that send keypad tones as audio (no telephone-event).

Analysis: 20 ms windows advanced every 10 ms. Each window is projected onto the
eight DTMF frequencies (a single-bin DFT per frequency, which is what Goertzel
computes, done for all blocks and frequencies as one matrix product). Rectangular
windows give 50 Hz resolution, enough to split 697/770 Hz (73 Hz apart) with the
other row ~14 dB down.

A window holds a digit when all of these hold (the usual checks, as in ITU-T Q.24
receivers, spandsp and Asterisk):
  - both a row (low group) and a column (high group) tone are above MIN_TONE_DBOV;
  - twist: the column tone is at most NORMAL_TWIST_DB weaker, or REVERSE_TWIST_DB
    stronger, than the row tone;
  - each winner beats the runner-up of its own group by RELATIVE_PEAK_DB;
  - the two tones carry at least MIN_ENERGY_RATIO of the window's energy (speech
    and music spread their energy; a real DTMF pair is nearly all of it).

Timing: a digit is reported once, when MIN_HITS consecutive windows agree. With
10 ms hops every tone of 40 ms or more is accepted at any alignment, and tones of
about 20 ms or less are rejected. A press ends after GAP_WINDOWS windows without
it, so a 40 ms pause between two presses of the same key yields two digits, while
a dropout shorter than a window does not split one press.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from bridge_codecs.base import Pcm

ROW_FREQS = (697.0, 770.0, 852.0, 941.0)
COL_FREQS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")

MIN_TONE_DBOV = -36.0
NORMAL_TWIST_DB = 8.0      # high group weaker than low (line loss rises with frequency)
REVERSE_TWIST_DB = 4.0     # high group stronger than low
RELATIVE_PEAK_DB = 8.0
MIN_ENERGY_RATIO = 0.6
MIN_HITS = 3
GAP_WINDOWS = 2

_FULL_SCALE_POWER = 32767.0 ** 2


class InbandDtmfDetector:
    """Streaming detector: feed any number of samples at ``rate``; get digits once per press."""

    def __init__(self, rate: int) -> None:
        if rate % 100 or rate < 8000:
            raise ValueError(f"unsupported rate {rate}")
        self.rate = rate
        self._hop = rate // 100                  # 10 ms
        self._win = 2 * self._hop                # 20 ms
        # A window is two half-blocks, so each 10 ms block is projected once and a window's
        # spectrum is H[i] + shift * H[i+1] (the second half starts hop samples later).
        omega = 2 * np.pi * np.array(ROW_FREQS + COL_FREQS) / rate
        n = np.arange(self._hop)[:, None]
        self._basis = np.hstack((np.cos(omega * n), -np.sin(omega * n)))   # (hop, 16), real
        self._shift = np.exp(-1j * omega * self._hop)
        self._pending = np.zeros(0)              # samples not yet in a complete block
        self._prev_h = np.zeros(8, dtype=complex)   # previous block's projection and energy
        self._prev_e = 0.0
        self._candidate: str | None = None
        self._hits = 0
        self._active: str | None = None
        self._misses = 0
        min_power = _FULL_SCALE_POWER * 10 ** (MIN_TONE_DBOV / 10)       # mean power A^2/2
        self._min_energy = min_power * self._win                         # per-window energy

    def process(self, frame: Pcm | npt.NDArray[np.floating]) -> list[str]:
        data = np.asarray(frame, dtype=np.float64)
        if len(self._pending):
            data = np.concatenate((self._pending, data))
        hops = len(data) // self._hop
        used = hops * self._hop
        self._pending = data[used:]
        if hops == 0:
            return []
        blocks = data[:used].reshape(hops, self._hop)
        proj = blocks @ self._basis
        h = np.empty((hops + 1, 8), dtype=complex)
        h[0] = self._prev_h
        h[1:].real, h[1:].imag = proj[:, :8], proj[:, 8:]
        e = np.empty(hops + 1)
        e[0] = self._prev_e
        e[1:] = np.einsum("ij,ij->i", blocks, blocks)
        self._prev_h, self._prev_e = h[-1], float(e[-1])
        total = e[:-1] + e[1:]
        if self._active is None and self._candidate is None and total.max() < 2 * self._min_energy:
            return []                            # too quiet for any digit: the common case
        spectrum = h[:-1] + self._shift * h[1:]
        digits: list[str] = []
        for cand in self._classify(spectrum, total):
            reported = self._step(cand)
            if reported:
                digits.append(reported)
        return digits

    def _classify(self, spectrum: npt.NDArray[np.complex128],
                  total: npt.NDArray[np.float64]) -> list[str | None]:
        # Energy of each tone component: 2|X|^2/N equals A^2 N / 2 for a sine of peak A,
        # the same units as the window energy sum(x^2).
        power = (spectrum.real ** 2 + spectrum.imag ** 2) * (2.0 / self._win)   # (w, 8)
        rows, cols = power[:, :4], power[:, 4:]
        r_pow, c_pow = rows.max(axis=1), cols.max(axis=1)
        dominant = r_pow + c_pow >= MIN_ENERGY_RATIO * total
        if not dominant.any():
            return [None] * len(power)           # speech and noise mostly stop here
        r_idx, c_idx = rows.argmax(axis=1), cols.argmax(axis=1)
        r_second = np.partition(rows, 2, axis=1)[:, 2]
        c_second = np.partition(cols, 2, axis=1)[:, 2]
        peak = 10 ** (RELATIVE_PEAK_DB / 10)
        ok = (
            (r_pow >= self._min_energy) & (c_pow >= self._min_energy)
            & (c_pow * 10 ** (NORMAL_TWIST_DB / 10) >= r_pow)
            & (r_pow * 10 ** (REVERSE_TWIST_DB / 10) >= c_pow)
            & (r_pow >= peak * r_second) & (c_pow >= peak * c_second)
            & dominant
        )
        return [KEYS[r][c] if good else None for r, c, good in zip(r_idx, c_idx, ok)]

    def _step(self, cand: str | None) -> str | None:
        if cand is not None and cand == self._candidate:
            self._hits += 1
        else:
            self._candidate, self._hits = cand, 1 if cand is not None else 0
        if self._active is not None:
            if cand == self._active:
                self._misses = 0
                return None
            self._misses += 1
            if self._misses < GAP_WINDOWS:
                return None
            self._active = None              # the press is over; a new one may start below
        if cand is not None and self._hits >= MIN_HITS:
            self._active, self._misses = cand, 0
            return cand
        return None

    def reset(self) -> None:
        self._pending = np.zeros(0)
        self._prev_h = np.zeros(8, dtype=complex)
        self._prev_e = 0.0
        self._candidate, self._hits, self._active, self._misses = None, 0, None, 0


def dtmf_pair(digit: str) -> tuple[float, float]:
    """The (row, column) frequencies of ``digit`` (useful for generating test or in-band tones)."""
    for r, keys in enumerate(KEYS):
        c = keys.find(digit.upper())
        if c >= 0:
            return ROW_FREQS[r], COL_FREQS[c]
    raise ValueError(f"not a DTMF digit: {digit!r}")

