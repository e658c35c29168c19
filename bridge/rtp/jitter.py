"""Adaptive jitter buffer: packets in (any order), exactly one item out per tick.

Model. Media time is cut into slots of ``frame_ticks`` on a grid anchored at
the first packet of a talkspurt. ``pop()`` is called once per frame period and
returns the slot at the playout point: ``Frame`` (play it), ``Missing`` (a gap
to conceal; ``next_payload`` is the following packet if it is already here,
for Opus FEC) or ``Empty`` (not playing: before the talkspurt starts, or after
the stream stopped; the mixer plays silence without concealment).

Adaptation (no clock in pop(): one pop == one frame period).
- Start: playout begins once ``target`` media is buffered (or after waiting
  that many pops, so a short burst still plays).
- Grow: when the packet due now is absent and nothing later is buffered, the
  buffer *stalls*: it returns Missing without advancing. If the late packet
  then arrives it plays next, so the delay grew by one frame. If a later packet
  arrives instead, the concealed slots are skipped (they were already covered
  by concealment), so a plain loss does not add delay.
- Target: the start-up prebuffer and the depth the delay is shrunk back to;
  one frame on a clean network, learned from late packets and decayed slowly,
  plus one frame for an Opus leg while it sees losses (playout_delay.py).
- Shrink: if the smallest buffered depth over one window exceeds the target
  by a frame, one frame is dropped.

Packet durations other than ``frame_ticks``:
- With ``bytes_per_tick`` (G.711 and G.722: 1 byte per RTP tick) packets are
  split or merged exactly on the slot grid, so 10 ms and 30 ms ptime play
  correctly. A slot that is only partly filled when due is concealed whole.
- Without it (Opus) each packet is one Frame. A longer packet (40/60 ms) is
  emitted once; the following slots it covers (its duration is the timestamp
  spacing of consecutive in-sequence packets) return Empty: the decoder already
  produced that audio from the one Frame. Two packets starting in the same slot (10 ms Opus) keep the
  first; the second is counted in ``dropped``.

Counters: ``received``, ``late`` (arrived after its slot was played),
``duplicates``, ``lost`` (slots of the stream that never arrived and were
concealed), ``concealed`` (every Missing returned, including stalls at the end
of a stream that turn out not to be losses), ``dropped``, ``resyncs``.

Resync: a packet more than ``resync`` away from the playout point (1 s or 4 x
max delay) restarts the buffer instead of producing a flood of Missing/late.
Memory is bounded by the same window. After ``max_missing`` consecutive
Missing with nothing buffered the buffer goes idle and returns Empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .playout_delay import PlayoutDelay


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class Missing:
    next_payload: bytes | None = None


@dataclass(frozen=True, slots=True)
class Empty:
    pass


PlayoutItem = Frame | Missing | Empty

_EMPTY = Empty()
_MISSING_NONE = Missing(None)
_SHRINK_WINDOW = 50   # pops (one second at 20 ms)
SEEN_WINDOW = 512     # sequence numbers remembered for duplicate detection
_SEEN_MASK = (1 << SEEN_WINDOW) - 1

# Frame without the frozen dataclass __init__ (object.__setattr__ per field costs ~0.5 us,
# a third of a whole pop): the same object, its slots filled through their descriptors.
_new = object.__new__
_set_payload = Frame.__dict__["payload"].__set__
_set_timestamp = Frame.__dict__["timestamp"].__set__


def _frame(payload: bytes, timestamp: int) -> Frame:
    f = _new(Frame)
    _set_payload(f, payload)
    _set_timestamp(f, timestamp)
    return f


class _Slot:
    """A slot being assembled from pieces, or holding a whole packet of another duration.
    A slot filled by exactly one on-grid frame of a splittable codec (the common case) is
    stored as its bytes instead: no object per packet, and popped without a join."""
    __slots__ = ("pieces", "filled", "timestamp")

    def __init__(self, timestamp: int) -> None:
        self.pieces: dict[int, bytes] = {}
        self.filled = 0
        self.timestamp = timestamp


def _whole_slot(start: int, payload: bytes, frame_ticks: int) -> _Slot:
    """The _Slot form of a slot stored as bytes, for the rare overlapping piece."""
    slot = _Slot(start)
    slot.pieces[0] = payload
    slot.filled = frame_ticks
    return slot


@dataclass(slots=True)
class SteadyJitter:
    """What a receive lane (lanes.py) takes from a ``JitterBuffer`` playing whole frames back
    to back (``steady``): the queued frames from ``play`` up to ``end`` and the measurements."""
    play: int            # timestamp of the next frame to play
    end: int             # timestamp after the newest frame
    frames: list[bytes]  # (end - play) // frame queued frames, oldest first
    prev_seq: int        # extended sequence number of the newest packet
    jitter: float
    last_transit: float
    resync_ticks: float
    window_pops: int
    window_min: int | None


class JitterBuffer:
    # Hot per-packet state: fixed slots keep it compact (fewer cache lines per leg per tick).
    __slots__ = (
        "_compact", "_delay", "_end_ts", "_frame_bytes", "_grid", "_grow", "_jitter", "_last_played",
        "_last_transit", "_last_whole_ts", "_max_frames", "_min_frames", "_missing_run", "_pkt_ticks",
        "_planned", "_play", "_prev_seq", "_prev_ts", "_resync_ticks", "_seen_bits", "_seen_top",
        "_slots", "_stall", "_wait", "_window_min", "_window_pops", "bytes_per_tick", "clock_rate",
        "concealed", "dropped", "duplicates", "frame_ticks", "late", "lost", "max_missing",
        "received", "resyncs",
    )
    def __init__(self, clock_rate: int, frame_ticks: int, min_delay_ms: int = 20,
                 max_delay_ms: int = 200, *, bytes_per_tick: int | None = None,
                 max_missing: int = 5, loss_depth: bool = False) -> None:
        if clock_rate <= 0 or frame_ticks <= 0:
            raise ValueError("clock_rate and frame_ticks must be positive")
        self.clock_rate = clock_rate
        self.frame_ticks = frame_ticks
        self.bytes_per_tick = bytes_per_tick
        self.max_missing = max_missing
        frame_ms = frame_ticks * 1000 / clock_rate
        self._min_frames = max(1, math.ceil(min_delay_ms / frame_ms - 1e-9))
        self._max_frames = max(self._min_frames, math.ceil(max_delay_ms / frame_ms - 1e-9))
        self._resync_ticks = max(clock_rate, 4 * self._max_frames * frame_ticks)
        # Frame bytes of a packet that fills exactly one slot (put/pop fast paths); -1: never.
        self._frame_bytes = frame_ticks * bytes_per_tick if bytes_per_tick is not None else -1
        self._slots: dict[int, _Slot | bytes] = {}
        self._grid: int | None = None       # slot grid origin of the current talkspurt
        self._play: int | None = None       # slot due at the next pop; None while not playing
        self._last_played: int | None = None
        self._end_ts: int | None = None     # end of the newest media received
        self._wait = 0
        self._stall = 0                     # Missing returned for the same slot without advancing
        self._missing_run = 0
        self._last_whole_ts: int | None = None
        self._prev_seq: int | None = None   # seq and ts of the previous put, for durations
        self._prev_ts = 0
        self._pkt_ticks = frame_ticks
        self._jitter = 0.0                  # ticks
        self._last_transit: float | None = None
        self._compact = True                # whole frames stored as bytes (see _Slot)
        # Duplicate detection over the SEEN_WINDOW sequence numbers below the highest one seen:
        # bit k of _seen_bits is seq (_seen_top - k). A 64-byte int per leg, where a set and a
        # deque of the last 512 numbers took ~38 KB (1,000 legs: 38 MB of cache misses a tick).
        self._seen_bits = 0
        self._seen_top: int | None = None
        self._window_min: int | None = None
        self._window_pops = 0
        self._delay = PlayoutDelay(self._max_frames - self._min_frames, loss_depth)
        self._grow = 0                      # gaps that should wait a frame instead of being skipped
        self._planned = False               # the current stall is such a wait, not a late packet
        self.received = 0
        self.late = 0
        self.lost = 0
        self.concealed = 0
        self.duplicates = 0
        self.dropped = 0
        self.resyncs = 0

    def _use_general_path(self) -> None:
        """No fast paths and no bytes slots: the reference behaviour for differential tests."""
        self._frame_bytes = -1
        self._compact = False

    # -- steady lanes (lanes.py): the state a lane advances in arrays, out and back in ------
    def steady(self, frame: int, max_depth: int) -> SteadyJitter | None:
        """The state a lane models, or None: playing, whole ``frame``-tick frames queued back to
        back from the playout point to the newest packet (fewer than ``max_depth``), no stall,
        no loss being concealed, not about to close a shrink window. Frames are ``frame`` bytes
        (G.711: stored as bytes) or, without ``bytes_per_tick`` (Opus), whole packets of any
        length, one slot each, the last one played a whole packet too (``_covered``)."""
        play, end = self._play, self._end_ts
        whole = self.bytes_per_tick is None
        if play is None or end is None or not self._compact or self._stall or self._missing_run \
                or self._last_played != play - frame or self._last_transit is None \
                or self._pkt_ticks != frame or self._window_pops >= _SHRINK_WINDOW - 1 \
                or self._prev_seq != self._seen_top or self._planned or (self.frame_ticks != frame or self._last_whole_ts != play - frame if whole
                    else self._frame_bytes != frame):
            return None
        depth = (end - play) // frame
        if end != play + depth * frame or not 0 <= depth < max_depth or len(self._slots) != depth \
                or self._prev_ts != end - frame:
            return None
        top = self._prev_seq
        assert top is not None         # a packet was put: _last_transit is set
        frames: list[bytes] = []
        for i in range(depth):
            slot = self._slots.get(play + i * frame)
            if whole and isinstance(slot, _Slot) and slot.timestamp == play + i * frame \
                    and slot.filled == frame and len(slot.pieces) == 1 and 0 in slot.pieces:
                frames.append(slot.pieces[0])
            elif not whole and isinstance(slot, bytes) and len(slot) == frame:
                frames.append(slot)
            else:
                return None
        return SteadyJitter(play, end, frames, top, self._jitter,
                            self._last_transit, self._resync_ticks, self._window_pops, self._window_min)

    def hand_over(self) -> None:
        """A lane holds the queued frames now (after ``steady``)."""
        self._slots.clear()

    def restore_steady(self, frame: int, play: int, end: int, frames: list[bytes], jitter: float,
                       last_transit: float, window_pops: int, window_min: int | None,
                       received: int, top_seq: int) -> None:
        """Take back what a lane did: frames queued from ``play`` to ``end``, ``received``
        packets in order (the newest with extended sequence number ``top_seq``), each
        frame played counted in the shrink window (a lane leaves before it closes)."""
        whole = self.bytes_per_tick is None
        for i, data in enumerate(frames):
            start = play + i * frame
            self._slots[start] = _whole_slot(start, data, frame) if whole else data
        self._jitter, self._last_transit = jitter, last_transit
        self._play = play
        self._last_played = play - frame
        if whole:
            self._last_whole_ts = play - frame     # the lane played whole packets, as _emit does
        self._window_pops = window_pops
        self._window_min = window_min
        if not received:
            return
        self.received += received
        self._seen_bits = (((self._seen_bits << received) | ((1 << received) - 1)) & _SEEN_MASK
                           if received < SEEN_WINDOW else _SEEN_MASK)
        self._seen_top = self._prev_seq = top_seq
        self._prev_ts = end - frame
        self._end_ts = end

    # -- measurements ------------------------------------------------------
    @property
    def target_frames(self) -> int:
        return min(self._max_frames, self._min_frames + self._delay.frames)

    @property
    def target_delay_ms(self) -> int:
        return self.target_frames * self.frame_ticks * 1000 // self.clock_rate

    @property
    def jitter_ms(self) -> float:
        return self._jitter * 1000 / self.clock_rate

    @property
    def depth_ms(self) -> int:
        """Media buffered from the playout point to the newest packet."""
        if self._end_ts is None or not self._slots:
            return 0
        start = self._play if self._play is not None else min(self._slots)
        return max(0, self._end_ts - start) * 1000 // self.clock_rate

    @property
    def playing(self) -> bool:
        return self._play is not None

    def stats(self) -> dict[str, float | int]:
        return {"received": self.received, "late": self.late, "lost": self.lost, "concealed": self.concealed,
                "duplicates": self.duplicates, "dropped": self.dropped, "resyncs": self.resyncs,
                "target_delay_ms": self.target_delay_ms, "jitter_ms": round(self.jitter_ms, 2),
                "depth_ms": self.depth_ms}

    def reset(self) -> None:
        """Forget the stream (SSRC change). Counters are kept."""
        self._clear(None)
        self._last_played = None
        self._last_transit = None
        self._prev_seq = None
        self._seen_bits = 0
        self._seen_top = None

    # -- input -------------------------------------------------------------
    def put(self, seq_ext: int, ts_ext: int, payload: bytes, arrival: float) -> None:
        self.received += 1
        top = self._seen_top
        if top is None or seq_ext > top:
            shift = seq_ext - top if top is not None else SEEN_WINDOW
            self._seen_bits = ((self._seen_bits << shift) | 1) & _SEEN_MASK if shift < SEEN_WINDOW else 1
            self._seen_top = seq_ext
        elif top - seq_ext < SEEN_WINDOW:
            bit = 1 << (top - seq_ext)
            if self._seen_bits & bit:
                self.duplicates += 1
                return
            self._seen_bits |= bit
        if not payload:
            return
        # Interarrival jitter (RFC 3550 A.8, jumps past the resync window ignored) and the
        # duration of in-sequence packets (for long non-splittable packets).
        transit = arrival * self.clock_rate - ts_ext
        last = self._last_transit
        if last is not None:
            d = abs(transit - last)
            if d < self._resync_ticks:
                self._jitter += (d - self._jitter) / 16.0
        self._last_transit = transit
        prev = self._prev_seq
        if prev is not None and seq_ext == prev + 1:
            ticks = ts_ext - self._prev_ts
            if 0 < ticks <= 8 * self.frame_ticks:
                self._pkt_ticks = ticks
        self._prev_seq = seq_ext
        self._prev_ts = ts_ext
        play = self._play
        if play is not None and len(payload) == self._frame_bytes \
                and play <= ts_ext <= play + self._resync_ticks:
            # Fast path (what the general code below does for an on-grid, whole-frame,
            # not-yet-due packet while playing): store the bytes themselves.
            assert self._grid is not None
            slots = self._slots
            if (ts_ext - self._grid) % self.frame_ticks == 0 and ts_ext not in slots:
                slots[ts_ext] = payload
                end = ts_ext + self.frame_ticks
                if self._end_ts is None or end > self._end_ts:
                    self._end_ts = end
                return
        ref = self._play if self._play is not None else self._grid
        if ref is not None and abs(ts_ext - ref) > self._resync_ticks:
            self._resync(ts_ext)
        elif self._play is not None and ts_ext < self._play and not self._splittable(payload):
            self.late += 1
            self._on_late(True)
            return
        elif self._play is None and self._grid is None and self._last_played is not None \
                and 0 <= self._last_played - ts_ext <= self._resync_ticks:
            self.late += 1     # straggler of a talkspurt that already ended
            return
        if self._grid is None:
            self._grid = ts_ext
        if self._splittable(payload):
            self._insert_split(seq_ext, ts_ext, payload)
        else:
            self._insert_whole(seq_ext, ts_ext, payload)

    def _on_late(self, reordered: bool) -> None:
        """A packet came after its playout point: the delay is too short by a frame. A
        reordered packet (its slot was concealed and skipped) did not grow the delay itself,
        so the next gap waits a frame (``_grow``); a stall the late packet resolved did."""
        if self._delay.late() and reordered:
            self._grow += 1

    def _splittable(self, payload: bytes) -> bool:
        return self.bytes_per_tick is not None and len(payload) % self.bytes_per_tick == 0

    def _slot_start(self, ts: int) -> int:
        assert self._grid is not None
        return self._grid + (ts - self._grid) // self.frame_ticks * self.frame_ticks

    def _insert_whole(self, seq: int, ts: int, payload: bytes) -> None:
        start = self._slot_start(ts)
        if start in self._slots:
            self.dropped += 1
            return
        slot = _Slot(ts)
        slot.pieces[0] = payload
        slot.filled = self.frame_ticks
        self._slots[start] = slot
        self._extend(ts + self.frame_ticks)

    def _insert_split(self, seq: int, ts: int, payload: bytes) -> None:
        bpt = self.bytes_per_tick
        assert bpt is not None
        ticks = len(payload) // bpt
        if ticks == self.frame_ticks and (ts - self._grid_or(ts)) % self.frame_ticks == 0 \
                and (self._play is None or ts >= self._play) and ts not in self._slots:
            # A whole frame on the grid (20 ms ptime, the usual case): kept as its bytes.
            self._slots[ts] = payload if self._compact else _whole_slot(ts, payload, ticks)
            self._extend(ts + ticks)
            return
        pos, stored = ts, False
        while pos < ts + ticks:
            start = self._slot_start(pos)
            take = min(start + self.frame_ticks, ts + ticks) - pos
            if self._play is None or start >= self._play:
                slot = self._slots.get(start)
                offset = pos - start
                if slot is None:
                    slot = self._slots[start] = _Slot(start)
                elif isinstance(slot, bytes):
                    if offset == 0:        # the whole frame has that piece already
                        pos += take
                        continue
                    slot = self._slots[start] = _whole_slot(start, slot, self.frame_ticks)
                if offset not in slot.pieces:
                    slot.pieces[offset] = payload[(pos - ts) * bpt:(pos - ts + take) * bpt]
                    slot.filled += take
                    stored = True
            pos += take
        if stored:
            self._extend(ts + ticks)
        else:
            self.late += 1
            self._on_late(True)

    def _grid_or(self, ts: int) -> int:
        return self._grid if self._grid is not None else ts

    def _extend(self, end: int) -> None:
        if self._end_ts is None or end > self._end_ts:
            self._end_ts = end

    def _clear(self, grid: int | None) -> None:
        self._slots.clear()
        self._grid = grid
        self._play = None
        self._end_ts = None
        self._wait = self._stall = self._missing_run = 0
        self._planned = False
        self._last_whole_ts = None
        self._window_min = None
        self._window_pops = 0

    def _resync(self, ts: int) -> None:
        self.resyncs += 1
        self._clear(ts)
        self._last_played = None

    # -- output ------------------------------------------------------------
    def pop(self) -> PlayoutItem:
        play = self._play
        if play is None:
            if not self._start():
                return _EMPTY
            play = self._play
            assert play is not None
        # Shrink bookkeeping (see _shrink), inlined: it runs on every pop.
        end = self._end_ts
        depth = 0 if end is None or end < play else end - play
        window_min = self._window_min
        if window_min is None or depth < window_min:
            self._window_min = depth
        self._window_pops += 1
        if self._window_pops >= _SHRINK_WINDOW:
            play = self._shrink(play)
        slots = self._slots
        slot = slots.get(play)
        if isinstance(slot, bytes):
            # Fast path: exactly one whole frame is due (what _emit does for it).
            if self._stall and not self._planned:
                self._on_late(False)           # the stall waited for this packet
            self._planned = False
            del slots[play]
            self._last_played = play
            self._play = play + self.frame_ticks
            self._stall = 0
            self._missing_run = 0
            frame = _new(Frame)
            _set_payload(frame, slot)
            _set_timestamp(frame, play)
            return frame
        if slot is not None and slot.filled >= self.frame_ticks:
            if self._stall and not self._planned:
                self._on_late(False)
            return self._emit(play, slot)
        ahead = self._first_after(play)
        if self._stall and ahead is not None:
            if self._grow and slot is None and not self._planned:
                # Reordering was seen: wait one frame more for this one (the delay grows).
                return self._wait_frame()
            # Slots concealed while stalled were covered already: skip them, no second Missing.
            skip = min(self._stall, (ahead - play) // self.frame_ticks)
            if skip and not self._planned and not self._covered(play + (skip - 1) * self.frame_ticks) \
                    and self._delay.loss():
                # First loss seen by an Opus leg: the last stalled slot is concealed again,
                # now from its successor's FEC, and the delay stays one frame longer.
                skip -= 1
            for k in range(skip):
                self._slots.pop(play + k * self.frame_ticks, None)
                if not self._covered(play + k * self.frame_ticks):
                    self.lost += 1
                    self._delay.loss_seen = True
            play = self._play = play + skip * self.frame_ticks
            self._stall = 0
            slot = self._slots.get(play)
            ahead = self._first_after(play)
            if slot is not None and (isinstance(slot, bytes) or slot.filled >= self.frame_ticks):
                return self._emit(play, slot)
        if slot is None and self._covered(play):
            self._advance(play)        # still inside a long packet already emitted
            return _EMPTY
        if ahead is not None:
            if self._grow and not self._stall and slot is None:
                return self._wait_frame()      # as above
            # Lost (or only partly received) while later media is here: conceal, move on.
            self._delay.loss()
            self._slots.pop(play, None)
            self._advance(play)
            self.lost += 1
            self.concealed += 1
            self._missing_run = 0
            return Missing(self._payload_at(play + self.frame_ticks))
        # Nothing later is buffered: the packet may only be late. Stall, or go idle.
        self._missing_run += 1
        if self._missing_run > self.max_missing:
            self._last_played = play - self.frame_ticks
            self._clear(None)
            return _EMPTY
        self._stall += 1
        self.concealed += 1
        return _MISSING_NONE

    def _wait_frame(self) -> Missing:
        """A gap that waits a frame for its packet instead of being skipped: the delay grows."""
        self._grow -= 1
        self._planned = True
        self._stall += 1
        self.concealed += 1
        return _MISSING_NONE

    def _emit(self, play: int, slot: _Slot | bytes) -> Frame:
        del self._slots[play]
        self._advance(play)
        self._missing_run = 0
        if isinstance(slot, bytes):
            return _frame(slot, play)
        if self.bytes_per_tick is None:
            self._last_whole_ts = slot.timestamp
            return Frame(slot.pieces[0], slot.timestamp)
        pieces = slot.pieces
        payload = pieces[0] if len(pieces) == 1 else b"".join(pieces[k] for k in sorted(pieces))
        return _frame(payload, play)

    def _covered(self, start: int) -> bool:
        """Is slot ``start`` inside the last whole (non-split) packet emitted?"""
        last = self._last_whole_ts
        return last is not None and last + self._pkt_ticks >= start + self.frame_ticks

    def _first_after(self, play: int) -> int | None:
        later = [k for k in self._slots if k > play]
        return min(later) if later else None

    def _advance(self, play: int) -> None:
        self._last_played = play
        self._play = play + self.frame_ticks
        self._stall = 0
        self._planned = False

    def _payload_at(self, start: int) -> bytes | None:
        slot = self._slots.get(start)
        if isinstance(slot, bytes):
            return slot
        if slot is None or slot.filled < self.frame_ticks:
            return None
        return b"".join(slot.pieces[k] for k in sorted(slot.pieces))

    def _start(self) -> bool:
        if not self._slots or self._end_ts is None:
            return False
        self._wait += 1
        first = min(self._slots)
        target = self.target_frames
        if self._end_ts - first >= target * self.frame_ticks or self._wait >= target:
            self._play = first
            self._wait = 0
            return True
        return False

    def _shrink(self, play: int) -> int:
        """End of a window: drop one frame if the buffered depth never fell to target + 1.
        Returns the (new) playout point."""
        assert self._window_min is not None
        self._delay.window_end(int(3 * self._jitter // self.frame_ticks))
        self._grow = min(self._grow, self._delay.learned)   # a pending wait decays with the delay
        if self._window_min >= (self.target_frames + 1) * self.frame_ticks:
            self._slots.pop(play, None)
            play = self._play = play + self.frame_ticks
            self.dropped += 1
        self._window_min = None
        self._window_pops = 0
        return play
