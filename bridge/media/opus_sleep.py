"""Sleeping Opus callers: frames their sender marks inactive, not decoded while they are out of
the mix (room_ingress.RoomIngress._sleeps), and the last such payload per slot (``Dormant``),
decoded first when the caller wakes so its decoder is in step again.

The payloads sit in one array, a row per mixer slot, so a receive lane's sleeping rows are kept
with one numpy copy and no Python per caller. A payload longer than ``DORMANT_WIDTH`` is never
slept on (it is decoded as if active): inactive frames are tens of bytes, so only a sender
that marks a large frame inactive pays its decode. Both the lane and the per-leg path apply
that rule, so they decode the same frames.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

DORMANT_WIDTH = 512     # bytes: an inactive Opus frame is far shorter at any bitrate


class Dormant:
    """The last payload skipped per slot (``size`` 0: none)."""

    def __init__(self, capacity: int) -> None:
        self.rows = np.zeros((capacity, DORMANT_WIDTH), np.uint8)
        self.size = np.zeros(capacity, np.int64)

    def grow(self, capacity: int) -> None:
        old = self.size.shape[0]
        if capacity > old:
            self.rows = np.concatenate([self.rows, np.zeros((capacity - old, DORMANT_WIDTH), np.uint8)])
            self.size = np.concatenate([self.size, np.zeros(capacity - old, np.int64)])

    def keep(self, slot: int, payload: bytes) -> None:
        """``payload`` (at most DORMANT_WIDTH bytes) was skipped for ``slot``."""
        self.rows[slot, :len(payload)] = np.frombuffer(payload, np.uint8)
        self.size[slot] = len(payload)

    def keep_rows(self, slots: npt.NDArray[np.intp], rows: npt.NDArray[np.uint8],
                  sizes: npt.NDArray[np.int64]) -> None:
        """Row i of ``rows`` (``sizes[i]`` bytes of it) was skipped for ``slots[i]``."""
        top = int(sizes.max())
        self.rows[slots, :top] = rows[:, :top]
        self.size[slots] = sizes

    def has(self, slot: int) -> bool:
        return bool(self.size[slot])

    def take(self, slot: int) -> bytes | None:
        """The payload skipped last for ``slot`` (forgotten here), or None."""
        size = int(self.size[slot])
        if not size:
            return None
        self.size[slot] = 0
        return self.rows[slot, :size].tobytes()

    def clear(self, slot: int) -> None:
        self.size[slot] = 0
