"""Mix-minus mixer: int32 accumulation over the few legs that actually contribute.

The room writes each leg's decoded frame (room rate, int16) into ``inputs[slot]`` and flags it
``present``; ``mix()`` then
  1. measures every present input on a few probe samples (levels.py; or takes the level the room
     measured before resampling, ``given``), runs the silence gate and talk detection for all
     slots in a handful of vectorised calls;
  2. picks contributors: present, eligible (not muted / listen-only / held / isolated), gate open,
     and only the loudest ``max_talkers`` of those (0 = no limit);
  3. sums only the contributors into an int32 total (O(K*S), never an [N, S] copy).
``render(slot)`` then gives what one listener hears: total minus its own contribution, output
gain, optional extra signal, soft limiter.  Everyone who is not a contributor hears exactly the
same total, which is what lets the room share resampling and encoding among them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bridge.media.levels import FLOOR_DBOV, DominantSpeaker, TalkConfig, TalkDetector, levels_dbov, probe_indices

Pcm = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]

# Soft limiter: linear up to the knee (-2.5 dBFS), then a tanh curve that approaches but never
# reaches full scale.  Stateless on purpose: a shared signal must not carry per-listener state,
# and the output is a pure function of the sum, so it can be shared and tested exactly.
LIMIT_KNEE = 24576
_HEADROOM = np.float32(32767 - LIMIT_KNEE)
MAX_GAIN_DB = 24.0


def db_to_gain(db: float) -> float:
    return float(10.0 ** (max(-120.0, min(MAX_GAIN_DB, db)) / 20.0))


def limit(x: npt.NDArray[np.int32] | npt.NDArray[np.float32]) -> Pcm:
    """int32/float32 frame -> int16 within [-32767, 32767], never wrapping."""
    hi = x.max(initial=0)
    lo = x.min(initial=0)
    if hi <= LIMIT_KNEE and lo >= -LIMIT_KNEE:
        if x.dtype == np.int16:
            return x.copy()  # type: ignore[return-value]
        return np.rint(x).astype(np.int16) if x.dtype.kind == "f" else x.astype(np.int16)
    y = x.astype(np.float32)
    mag = np.abs(y)
    over = mag > LIMIT_KNEE
    soft = np.float32(LIMIT_KNEE) + _HEADROOM * np.tanh((mag[over] - np.float32(LIMIT_KNEE)) / _HEADROOM)
    y[over] = np.copysign(soft, y[over])
    np.rint(y, out=y)
    np.clip(y, -32767, 32767, out=y)  # guards float rounding at the asymptote
    return y.astype(np.int16)


@dataclass
class MixReport:
    contributors: npt.NDArray[np.intp]
    started: npt.NDArray[np.intp]          # slots that started talking this tick
    stopped: npt.NDArray[np.intp]
    dominant_changed: bool
    dominant: int | None
    levels: F32 = field(repr=False)        # dBov per slot [0, count)


class Mixer:
    def __init__(
        self,
        rate: int,
        frame_ms: int = 20,
        max_talkers: int = 0,
        capacity: int = 16,
        talk: TalkConfig | None = None,
        sticky_db: float = 6.0,
    ) -> None:
        if max_talkers < 0:
            raise ValueError("max_talkers must be >= 0")
        self.rate = rate
        self.frame_samples = rate * frame_ms // 1000
        self.max_talkers = max_talkers
        self.sticky_db = np.float32(sticky_db)   # top-K bonus for current contributors (no flapping)
        s = self.frame_samples
        self.inputs = np.zeros((capacity, s), np.int16)
        self.present = np.zeros(capacity, np.bool_)
        # Levels measured by the room before resampling (8 kHz legs in a wider room, ``given``);
        # the mixer measures the other present rows itself.
        self.given = np.zeros(capacity, np.bool_)
        self.given_level = np.full(capacity, FLOOR_DBOV, np.float32)
        self.eligible = np.zeros(capacity, np.bool_)
        self.pinned = np.zeros(capacity, np.bool_)   # exempt from the max_talkers selection
        self.in_gain = np.ones(capacity, np.float32)
        self.detector = TalkDetector(capacity, talk)
        self.dominant = DominantSpeaker(self.detector.config)
        self._probe = probe_indices(s)
        self._count = 0                      # high-water mark of used slots
        self._free: list[int] = []
        self._used = np.zeros(capacity, np.bool_)
        self._is_contrib = np.zeros(capacity, np.bool_)
        self._row = np.full(capacity, -1, np.intp)   # slot -> row of _own
        self._own = np.zeros((max(1, max_talkers) if max_talkers else 8, s), np.int32)
        self._k = 0
        self.total = np.zeros(s, np.int32)
        self._scratch = np.zeros(s, np.int32)
        self.contributors: npt.NDArray[np.intp] = np.zeros(0, np.intp)

    # -- slots ---------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def count(self) -> int:
        return self._count

    def add(self, *, eligible: bool = True, in_gain_db: float = 0.0) -> int:
        if self._free:
            slot = min(self._free)   # keep slots dense so [0, count) stays short
            self._free.remove(slot)
        else:
            if self._count == self.capacity:
                self._grow(self.capacity * 2)
            slot = self._count
            self._count += 1
        self._used[slot] = True
        self.inputs[slot] = 0
        self.present[slot] = False
        self.given[slot] = False
        self.eligible[slot] = eligible
        self.pinned[slot] = False
        self.in_gain[slot] = db_to_gain(in_gain_db)
        self.detector.reset(slot)
        return slot

    def remove(self, slot: int) -> bool:
        """Free ``slot``; True when it was the dominant speaker (the room reports the change)."""
        if not self._used[slot]:
            raise KeyError(slot)
        self._used[slot] = False
        self.present[slot] = False
        self.given[slot] = False
        self.eligible[slot] = False
        self.pinned[slot] = False
        self._is_contrib[slot] = False
        self._row[slot] = -1
        self.detector.reset(slot)
        was_dominant = self.dominant.forget(slot)
        if slot == self._count - 1:
            self._count -= 1
            while self._count and not self._used[self._count - 1]:
                self._count -= 1
                if self._count in self._free:
                    self._free.remove(self._count)
        else:
            self._free.append(slot)
        return was_dominant

    def set_gain(self, slot: int, in_gain_db: float) -> None:
        self.in_gain[slot] = db_to_gain(in_gain_db)

    def _grow(self, capacity: int) -> None:
        old = self.capacity
        inputs = np.zeros((capacity, self.frame_samples), np.int16)
        inputs[:old] = self.inputs
        self.inputs = inputs
        for name, fill in (("present", False), ("given", False), ("given_level", FLOOR_DBOV), ("eligible", False), ("pinned", False), ("in_gain", 1.0),
                           ("_used", False), ("_is_contrib", False), ("_row", -1)):
            arr = getattr(self, name)
            new = np.full(capacity, fill, arr.dtype)
            new[:old] = arr
            setattr(self, name, new)
        self.detector.grow(capacity)

    # -- tick ----------------------------------------------------------------------------------
    def mix(self, extra: I32 | None = None) -> MixReport:
        """Measure, select contributors and sum them.  ``extra`` (room-wide sources) is added to
        the total heard by everyone and is nobody's own contribution."""
        n = self._count
        present = self.present[:n]
        given = self.given[:n]
        if given.any():
            lev = np.full(n, FLOOR_DBOV, np.float32)
            rows = np.flatnonzero(present & ~given)
            if rows.size:
                lev[rows] = levels_dbov(self.inputs[rows], self._probe)
            rows = np.flatnonzero(present & given)
            lev[rows] = self.given_level[rows]
        else:
            lev = levels_dbov(self.inputs[:n], self._probe)
            lev[~present] = FLOOR_DBOV
        started, stopped = self.detector.update(lev, n)
        dom_changed = self.dominant.update(self.detector, n)

        cand = np.flatnonzero(present & self.eligible[:n] & self.detector.gate_open[:n])
        k_max = self.max_talkers
        if k_max and cand.size > k_max:
            # Pinned slots (a cascade trunk: already a mix of up to K voices) are never evicted.
            pin = self.pinned[cand]
            fixed = cand[pin] if pin.any() else None
            if fixed is not None:
                cand = cand[~pin]
            if cand.size > k_max:
                # Rank by the louder of instant and smoothed level (a loud onset wins at once, a
                # brief dip does not drop a talker), with a bonus for current contributors.
                score = np.maximum(lev[cand], self.detector.smoothed[cand])
                score = score + self.sticky_db * self._is_contrib[cand]
                cand = np.sort(cand[np.argpartition(-score, k_max - 1)[:k_max]])
            if fixed is not None:
                cand = np.sort(np.concatenate((fixed, cand)))
        self._is_contrib[:n] = False
        self._is_contrib[cand] = True
        self._row[:n] = -1
        k = int(cand.size)
        self._row[cand] = np.arange(k)
        if k > self._own.shape[0]:
            self._own = np.zeros((max(k, 2 * self._own.shape[0]), self.frame_samples), np.int32)
        own = self._own[:k]
        if k:
            own[:] = self.inputs[cand]
            gains = self.in_gain[cand]
            if np.any(gains != 1.0):
                scaled = own * gains[:, None]
                np.clip(np.rint(scaled), -32768, 32767, out=scaled)
                own[:] = scaled
            own.sum(axis=0, dtype=np.int32, out=self.total)
        else:
            self.total[:] = 0
        if extra is not None:
            self.total += extra
        self._k = k
        self.contributors = cand
        return MixReport(cand, started, stopped, dom_changed, self.dominant.current, lev)

    # -- outputs -------------------------------------------------------------------------------
    def is_contributor(self, slot: int) -> bool:
        return bool(self._is_contrib[slot])

    def own_rows(self, slots: npt.NDArray[np.intp]) -> I32:
        """The gained contributions of these contributor slots this tick, one row each."""
        return self._own[self._row[slots]]

    def own(self, slot: int) -> I32 | None:
        """The slot's gained contribution this tick, or None when it contributed nothing."""
        row = int(self._row[slot])
        return self._own[row] if row >= 0 else None

    def render(self, slot: int | None = None, gain: float = 1.0, add: I32 | None = None) -> Pcm:
        """What listener ``slot`` hears (None = a pure listener: the whole total), times a linear
        output ``gain``, plus ``add`` (e.g. a private prompt), limited to int16."""
        raw = self._scratch
        own = self.own(slot) if slot is not None else None
        if own is not None:
            np.subtract(self.total, own, out=raw)
        else:
            raw[:] = self.total
        if add is not None:
            raw += add
        if gain != 1.0:
            return limit(raw * np.float32(gain))
        return limit(raw)
