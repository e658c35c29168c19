"""Upsampling many legs' 8 kHz frames to the room rate in one matrix product.

The per-leg ``bridge_codecs.Resampler`` (8 -> 16 or 48 kHz) is a polyphase FIR run with
``np.convolve`` per phase, plus the leg's last ``taps - 1`` input samples. For a whole group
of G.711 legs the same filter is one product per block of output samples: the rows
``[history | frame]`` of all legs times a banded matrix holding the phases' taps. Inputs are
integers and the float64 sums differ from ``np.convolve``'s only in the last bits, far from a
rounding boundary, so every row is the per-leg resampler's output sample for sample
(tests/unit/test_room_rates.py checks it against the per-leg path, tick for tick).

The history lives here, one row per mixer slot; a slot whose leg got no frame this tick keeps
its history (the per-leg path would not have called its resampler either). A row the room does
not need at the room rate (a quiet leg the gate cannot let into the mix) skips the product: its
history is just its last input samples.
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
                render: npt.NDArray[np.bool_] | None, out: npt.NDArray[np.int16]) -> None:
        """Resample ``frames`` (one row per slot of ``slots``) into ``out[slots]``, advancing
        those slots' histories. Rows outside ``render`` (None: all are rendered) only advance
        their history, which is the last ``keep`` input samples and needs no product; their
        output row is zeroed (the room renders only what it can mix, room_ingress.py)."""
        keep, n, block, up = self.keep, self.n, self.block, self.up
        if render is not None and not render.all():
            skip = ~render
            idle = slots[skip]
            if keep <= n:
                self.history[idle] = frames[skip][:, n - keep:]
            else:
                self.history[idle] = np.concatenate([self.history[idle], frames[skip]], axis=1)[:, n:]
            out[idle] = 0
            slots = slots[render]
            frames = frames[render]
        k = slots.shape[0]
        if not k:
            return
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


class RowDownsampler:
    """Room-rate frames (16 or 48 kHz) -> 8 kHz for many streams at once, each keeping its own
    ``bridge_codecs.Resampler`` (its ``history``): the talkers' private G.711 streams."""

    def __init__(self, in_rate: int, in_samples: int) -> None:
        m = self.m = in_rate // 8000
        h = design_lowpass(in_rate, 8000)
        taps = len(h)
        self.keep = taps - 1
        self.n = in_samples
        out = in_samples // m
        block = BLOCK if out % BLOCK == 0 else out
        self.block = block
        # y[k] = sum_i h[i] * buf[k*M + M + taps - 2 - i]; a block of outputs from kb reads
        # buf[kb*M + M - 1 : ...], where output kk of the block meets h[kk*M + taps - 1 - j].
        self.width = (block - 1) * m + taps
        band = np.zeros((self.width, block))
        for kk in range(block):
            for j in range(self.width):
                i = kk * m + taps - 1 - j
                if 0 <= i < taps:
                    band[j, kk] = h[i]
        self.band = band

    def process(self, histories: list[F64], frames: npt.NDArray[np.int16]) -> tuple[npt.NDArray[np.int16], F64]:
        """(8 kHz frames, the new histories as rows); the caller hands each row back to its
        stream's resampler."""
        keep, n, m, block = self.keep, self.n, self.m, self.block
        k = frames.shape[0]
        buf = np.empty((k, keep + n))
        buf[:, :keep] = histories
        buf[:, keep:] = frames
        out = n // m
        y = np.empty((k, out))
        for b in range(0, out, block):
            start = b * m + m - 1
            np.matmul(buf[:, start:start + self.width], self.band, out=y[:, b:b + block])
        np.rint(y, out=y)
        np.clip(y, -32768, 32767, out=y)
        return y.astype(np.int16), buf[:, n:]
