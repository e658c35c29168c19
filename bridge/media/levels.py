"""Per-input levels, silence gate, talk detection and dominant speaker, vectorised over slots.

Everything here works on whole arrays indexed by mixer slot, so one tick costs a handful of
numpy calls whatever the number of participants.  Levels are dBov: RMS relative to a full-scale
int16 square wave (0 dBov), floored at ``FLOOR_DBOV`` for digital silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FLOOR_DBOV = -127.0
_FULL_SCALE_SQ = 32768.0 * 32768.0
_TINY = 10.0 ** (FLOOR_DBOV / 10.0)

F32 = npt.NDArray[np.float32]
BoolArr = npt.NDArray[np.bool_]
I32 = npt.NDArray[np.int32]


def probe_indices(frame_samples: int, count: int = 64) -> npt.NDArray[np.intp]:
    """Sample positions used to estimate a frame's level without reading all of it.

    One position per equal segment, jittered by the golden-ratio sequence: a regular stride
    would alias with tones (a 1 kHz tone read every 24th sample at 48 kHz can read all zeros),
    a stratified irregular pattern cannot lock onto any frequency.
    """
    if frame_samples <= count:
        return np.arange(frame_samples, dtype=np.intp)
    seg = frame_samples / count
    jitter = (np.arange(count) * 0.6180339887498949) % 1.0
    idx = np.floor((np.arange(count) + jitter) * seg).astype(np.intp)
    return np.minimum(idx, frame_samples - 1)


def levels_dbov(frames: npt.NDArray[np.int16], probe: npt.NDArray[np.intp] | None = None) -> F32:
    """dBov of each row of an int16 [n, samples] block (estimated on ``probe`` columns if given).

    The sum of squares is an exact integer and the rest is elementwise, so a row's level does not
    depend on which other rows are measured with it: the room measures some rows on their own
    (a leg decoded alone) and others in blocks, and the two must agree to the bit."""
    block = frames if probe is None else np.take(frames, probe, axis=1)
    x = block.astype(np.int64)
    ss = np.einsum("ij,ij->i", x, x)
    ms = ss / (x.shape[1] * _FULL_SCALE_SQ)
    return (10.0 * np.log10(np.maximum(ms, _TINY))).astype(np.float32)


def level_dbov(frame: npt.NDArray[np.int16]) -> float:
    """dBov of one whole frame (tests, sinks)."""
    return float(levels_dbov(frame.reshape(1, -1))[0])


@dataclass(frozen=True)
class TalkConfig:
    # Silence gate: decides who may be mixed at all.  Opens on the first loud frame (no clipped
    # onsets), closes after ``gate_hang`` quiet frames so a contributor's status (and with it a
    # private Opus stream) only changes at talkspurt boundaries.
    gate_open_dbov: float = -50.0
    gate_close_dbov: float = -55.0
    gate_hang: int = 15
    # Talk detection (events, REST "talking", dominant speaker): stricter and slower.
    start_dbov: float = -40.0
    stop_dbov: float = -48.0
    start_frames: int = 3
    stop_frames: int = 25
    smoothing: float = 0.3          # weight of the new frame in the smoothed (dB) level
    dominant_margin_db: float = 6.0
    dominant_frames: int = 10


class TalkDetector:
    """Hysteresis state per slot; ``update`` returns the slots that started/stopped talking."""

    def __init__(self, capacity: int, config: TalkConfig | None = None) -> None:
        self.config = config or TalkConfig()
        self.level = np.full(capacity, FLOOR_DBOV, np.float32)
        self.smoothed = np.full(capacity, FLOOR_DBOV, np.float32)
        self.gate_left = np.zeros(capacity, np.int32)
        self.talking = np.zeros(capacity, np.bool_)
        self._above = np.zeros(capacity, np.int32)
        self._below = np.zeros(capacity, np.int32)

    @property
    def capacity(self) -> int:
        return int(self.level.shape[0])

    def grow(self, capacity: int) -> None:
        old = self.capacity
        for name in ("level", "smoothed", "gate_left", "talking", "_above", "_below"):
            arr = getattr(self, name)
            new = np.zeros(capacity, arr.dtype)
            new[:old] = arr
            if name in ("level", "smoothed"):
                new[old:] = FLOOR_DBOV
            setattr(self, name, new)

    def reset(self, slot: int) -> None:
        self.level[slot] = FLOOR_DBOV
        self.smoothed[slot] = FLOOR_DBOV
        self.gate_left[slot] = 0
        self.talking[slot] = False
        self._above[slot] = 0
        self._below[slot] = 0

    @property
    def gate_open(self) -> BoolArr:
        return self.gate_left > 0

    def open_at_silence(self, slot: int) -> bool:
        """Could ``slot`` be mixed this tick even with a silent frame (``may_open`` at the floor
        level): its gate is open, it is talking, or the gate lets every slot through."""
        return bool(self.gate_left[slot] > 0 or self.talking[slot] or self.config.start_frames <= 0)

    def opens_at_silence(self, slots: npt.NDArray[np.intp]) -> BoolArr:
        """``open_at_silence`` of each of ``slots``, in one pass."""
        if self.config.start_frames <= 0:
            return np.ones(slots.shape[0], np.bool_)
        return (self.gate_left[slots] > 0) | self.talking[slots]

    def may_open(self, slots: npt.NDArray[np.intp], levels: F32) -> BoolArr:
        """Which of ``slots`` could have an open gate after ``update`` with these levels (a
        superset: the gate opens or stays open only at these levels, or while open or talking).
        A slot outside it cannot be mixed this tick, so its frame need not be rendered."""
        c = self.config
        if c.start_frames <= 0:
            return np.ones(slots.shape[0], np.bool_)
        low = min(c.gate_open_dbov, c.gate_close_dbov, c.start_dbov)
        return (levels >= low) | (self.gate_left[slots] > 0) | self.talking[slots]

    def update(self, levels: F32, count: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Feed this tick's levels for slots [0, count); absent slots must carry FLOOR_DBOV."""
        c = self.config
        n = count
        lev = levels[:n]
        self.level[:n] = lev
        sm = self.smoothed[:n]
        sm += np.float32(c.smoothing) * (lev - sm)

        gate = self.gate_left[:n]
        # Opens above gate_open; an open gate is refreshed down to gate_close (hysteresis band),
        # and only counts down its hangover below that.
        refresh = (lev >= c.gate_open_dbov) | ((gate > 0) & (lev >= c.gate_close_dbov))
        np.subtract(gate, 1, out=gate, where=gate > 0)
        gate[refresh] = c.gate_hang

        above = self._above[:n]
        below = self._below[:n]
        is_above = lev >= c.start_dbov
        is_below = lev < c.stop_dbov
        above += 1
        above[~is_above] = 0
        below += 1
        below[~is_below] = 0
        talking = self.talking[:n]
        started = ~talking & (above >= c.start_frames)
        stopped = talking & (below >= c.stop_frames)
        talking |= started
        talking &= ~stopped
        # A talker keeps the gate open: a soft passage mid-sentence is not silence.
        gate[talking & (gate < 1)] = 1
        return np.flatnonzero(started), np.flatnonzero(stopped)


class DominantSpeaker:
    """Dominant talker with hysteresis: a challenger must beat the holder's smoothed level by
    ``dominant_margin_db`` for ``dominant_frames`` consecutive ticks; a holder who stopped
    talking is replaced at once by the loudest talker.  The holder is kept through silence."""

    def __init__(self, config: TalkConfig | None = None) -> None:
        self.config = config or TalkConfig()
        self.current: int | None = None
        self._challenger: int | None = None
        self._streak = 0

    def forget(self, slot: int) -> bool:
        """Drop ``slot`` (leg left); True when it was the dominant speaker."""
        if self._challenger == slot:
            self._challenger, self._streak = None, 0
        if self.current == slot:
            self.current = None
            return True
        return False

    def update(self, detector: TalkDetector, count: int) -> bool:
        """Returns True when ``current`` changed this tick."""
        talking = detector.talking[:count]
        if not talking.any():
            self._challenger, self._streak = None, 0
            return False
        sm = np.where(talking, detector.smoothed[:count], np.float32(-np.inf))
        best = int(np.argmax(sm))
        cur = self.current
        if cur is None or cur >= count or not talking[cur]:
            self.current, self._challenger, self._streak = best, None, 0
            return best != cur
        if best == cur or sm[best] < sm[cur] + self.config.dominant_margin_db:
            self._challenger, self._streak = None, 0
            return False
        if best != self._challenger:
            self._challenger, self._streak = best, 0
        self._streak += 1
        if self._streak >= self.config.dominant_frames:
            self.current, self._challenger, self._streak = best, None, 0
            return True
        return False
