"""Upsampling many legs' 8 kHz frames to the room rate in one matrix product.

The per-leg ``bridge_codecs.Resampler`` (8 -> 16 or 48 kHz) is a polyphase FIR run with
``np.convolve`` per phase, plus the leg's last ``taps - 1`` input samples. For a whole group
of G.711 legs the same filter is one product per block of output samples: the rows
``[history | frame]`` of all legs times a banded matrix holding the phases' taps. Inputs are
integers and the float64 sums differ from ``np.convolve``'s only in the last bits, far from a
rounding boundary, so every row is the per-leg resampler's output sample for sample
(tests/unit/test_room_rates.py checks it against the per-leg path, tick for tick).

The history lives here, one row per mixer slot; a slot whose leg got no frame this tick keeps
its history (the per-leg path would not have called its resampler either).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from bridge_codecs.resample import design_lowpass

F64 = npt.NDArray[np.float64]
BLOCK = 16      # output samples per product: small enough that the band is mostly taps


class RowResampler:
    """8 kHz frames of ``in_samples`` -> ``up`` times as many samples, many rows at once."""

    def __init__(self, out_rate: int, in_samples: int, capacity: int) -> None:
        self.up = up = out_rate // 8000
        h = design_lowpass(out_rate, 8000)
        phases = h.reshape(-1, up).T * up             # as Resampler: phase p, scaled by L
        taps = self.taps = phases.shape[1]
        self.keep = taps - 1
        self.n = in_samples
        block = BLOCK if in_samples % BLOCK == 0 else in_samples
        self.block = block
        band = np.zeros((block + taps - 1, block * up))
        for p in range(up):
            rev = phases[p][::-1]
            for i in range(block):
                band[i:i + taps, i * up + p] = rev
        self.band = band
        self.history: F64 = np.zeros((capacity, self.keep))

    def grow(self, capacity: int) -> None:
        if capacity > self.history.shape[0]:
            grown = np.zeros((capacity, self.keep))
            grown[:self.history.shape[0]] = self.history
            self.history = grown

    def reset(self, slot: int) -> None:
        self.history[slot] = 0.0

    def process(self, slots: npt.NDArray[np.intp], frames: npt.NDArray[np.int16],
                rows: npt.NDArray[np.intp] | None, out: npt.NDArray[np.int16]) -> None:
        """Resample ``frames[rows]`` (all rows when None) of the legs in ``slots`` (one per
        frame row) into ``out[slots[rows]]``, advancing only those slots' histories."""
        keep, n, block, up = self.keep, self.n, self.block, self.up
        if rows is not None:
            slots = slots[rows]
            frames = frames[rows]
        k = slots.shape[0]
        buf = np.empty((k, keep + n))
        buf[:, :keep] = self.history[slots]
        buf[:, keep:] = frames
        y = np.empty((k, n * up))
        width = block + keep
        for b in range(0, n, block):
            np.matmul(buf[:, b:b + width], self.band, out=y[:, b * up:(b + block) * up])
        self.history[slots] = buf[:, n:]
        np.rint(y, out=y)
        np.clip(y, -32768, 32767, out=y)
        out[slots] = y
