"""The state one room's tick works on, and the few helpers every part of the tick uses.

``Room`` is assembled from ``RoomIngress`` (reading and decoding what legs sent) and
``RoomEgress`` (encoding and sending what they hear) over this shared state; room.py adds
the control API, the plan and the tick itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.media.containment import call_each
from bridge.media.levels import TalkConfig, probe_indices
from bridge.media.mixer import Mixer, db_to_gain
from bridge.media.opus_sleep import Dormant
from bridge.media.ports import AudioSink, AudioSource
from bridge.media.room_events import LegFailed, RoomEvent, SinkFailed
from bridge.media.room_plan import ROOM_RATES, BulkGroup, CommonGroup, OpusGroup, Pcm, RoomLeg, Stream
from bridge.media.row_resample import RowDownsampler, RowResampler


NEVER = -(1 << 40)     # a tick long before any


class RoomState:
    def __init__(self, room_id: str, rate: int, max_talkers: int = 0, frame_ms: int = 20,
                 *, talk: TalkConfig | None = None, share_encodes: bool = True,
                 bulk: bool = True, skip_inactive: bool = True, passthrough: bool = True) -> None:
        if rate not in ROOM_RATES:
            raise ValueError(f"room rate must be one of {ROOM_RATES}, not {rate}")
        if frame_ms <= 0 or rate * frame_ms % 1000:
            raise ValueError(f"frame_ms {frame_ms} does not give whole samples at {rate} Hz")
        self.room_id = room_id
        self.rate = rate
        self.share_encodes = share_encodes   # False: one stream per leg (benchmark baseline)
        # False: every leg decoded and resampled on its own, every talker's stream rendered and
        # encoded on its own (the reference path the array paths are tested against,
        # tests/unit/test_room_rates.py; and a benchmark baseline).
        self.bulk = bulk
        # Opus frames the sender's VAD marks inactive are not decoded while that leg is out of
        # the mix (media.opus_skip_inactive, room_ingress._sleeps).
        self.skip_inactive = skip_inactive
        # A listener whose common stream is one talker's frame gets that talker's packet
        # (media.sole_talker_passthrough, bridge/media/passthrough.py).
        self.passthrough = passthrough
        self.frame_ms = frame_ms
        self.frame_samples = rate * frame_ms // 1000
        self.mixer = Mixer(rate, frame_ms, max_talkers, talk=talk)
        self._legs: dict[str, RoomLeg] = {}
        self._by_slot: dict[int, RoomLeg] = {}
        self._known: set[str] = set()     # legs existing once queued ops are applied
        self._ops: list[Callable[[], None]] = []
        self._room_sources: dict[str, AudioSource] = {}
        self._mix_sinks: dict[str, AudioSink] = {}
        self._streams: dict[tuple[Any, ...], Stream] = {}
        self._tables: dict[str, Pcm] = {}
        self._pair_tables: dict[str, npt.NDArray[np.int32]] = {}
        self._tick_no = 0
        self._pending_events: list[RoomEvent] = []
        self._zeros = np.zeros(self.frame_samples, np.int16)
        self._need_marker: set[RoomLeg] = set()   # next packet carries the RTP marker bit
        self._stray: set[RoomLeg] = set()         # stream_key may differ from common_key
        self._keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}   # interned common keys
        self._added = 0
        # Per slot: decoder concealment state and, for bulk-decoded legs, the last two payloads
        # (replayed through the decoder on a loss, so its concealment has history).
        cap = self.mixer.capacity
        # G.711 (8 kHz) samples per frame: bulk groups decode these, then, in a 16 or 48 kHz
        # room, resample every row in one product (row_resample.py; history per slot).
        self.g711_samples = 8 * frame_ms
        self._rows = RowResampler(rate, self.g711_samples, cap) if rate != 8000 else None
        self._down: RowDownsampler | None = None     # the talkers' streams to 8 kHz, made on use
        # 8 kHz frames in a wider room are measured before resampling, on these probe samples.
        self._probe8 = probe_indices(self.g711_samples)
        self._always: npt.NDArray[np.intp] | None = None   # per tick: slots always rendered
        self._in_loss = np.zeros(cap, np.bool_)
        self._stale = np.zeros(cap, np.bool_)      # decoder missed payloads decoded in bulk
        self._hist = np.zeros((2, cap, self.g711_samples), np.uint8)
        self._hist_ok = np.zeros((2, cap), np.bool_)
        self._hist_new = np.zeros(cap, np.intp)    # row of _hist holding the newest payload
        # The codes each slot's decoder consumed this tick and the last (sole-talker passthrough,
        # passthrough.py): per-leg decodes by slot; bulk-decoded slots are in _hist, newest row
        # from tick _bulk_tick, the older from _bulk_prev.
        self._clean: dict[int, bytes] = {}
        self._clean_prev: dict[int, bytes] = {}
        self._bulk_tick = np.full(cap, -1, np.int64)
        self._bulk_prev = np.full(cap, -1, np.int64)
        self._loss_tick = np.full(cap, NEVER, np.int64)     # the slot's last concealed frame
        self._extra_now = False     # room-wide sources are in this tick's mix
        self._last_solo: int | None = None   # the slot passed through last (RoomEgress._solo_slot)
        # Natively decoded G.722 legs (room_ingress): the last two frames per slot, made on use.
        self._native: dict[RoomLeg, tuple[Any, tuple[Any, int] | None]] = {}
        self._wide_hist: npt.NDArray[np.int16] | None = None
        # The plan (see module doc), rebuilt at tick start when _dirty.
        self._dirty = True
        self._lanes_ok = True      # False once a lane raised: this room stays on the per-leg path
        self._bulk: list[BulkGroup] = []
        self._opus: list[OpusGroup] = []          # Opus callers read through a receive lane
        self._dormant = Dormant(cap)              # sleeping Opus callers' last skipped payload
        self._other: list[RoomLeg] = []
        self._other_pops: list[Callable[[], Any]] = []
        self._common: list[CommonGroup] = []
        self._group_of: dict[RoomLeg, CommonGroup] = {}
        self._nonplain: list[RoomLeg] = []
        self._sink_legs: list[RoomLeg] = []


    def _sync(self, leg: RoomLeg) -> None:
        self.mixer.eligible[leg.slot] = leg.eligible
        self.mixer.set_gain(leg.slot, leg.input_gain_db)
        leg.out_gain = db_to_gain(leg.output_gain_db)
        path = (leg.fast_in, leg.opus_in, leg.plain, leg.common_key)
        leg.fast_in = leg.bytewise is not None and not leg.on_hold
        leg.opus_in = leg.opus and not leg.on_hold
        # A leg that hears a whisper has a mix of its own: off the common stream.
        leg.plain = leg.source is None and leg.hears_mix and not leg.deaf and not leg.whisperers
        sig = ("mix", -1, leg.out_gain)
        if self.share_encodes:
            key = (sig, leg.enc_key)
            # One object per distinct key: grouping legs then compares by identity.
            leg.common_key = self._keys.setdefault(key, key)
        else:
            leg.common_key = (sig, leg.enc_key, leg.leg_id)
        if (leg.fast_in, leg.opus_in, leg.plain, leg.common_key) != path:
            # Rebuilding the plan is O(legs): mute, listen-only and input gain never need it.
            self._stray.add(leg)
            self._dirty = True

    def _reset_slot(self, slot: int) -> None:
        cap = self.mixer.capacity
        old = self._in_loss.shape[0]
        if cap > old:
            grow = cap - old
            self._in_loss = np.concatenate([self._in_loss, np.zeros(grow, np.bool_)])
            self._stale = np.concatenate([self._stale, np.zeros(grow, np.bool_)])
            self._hist = np.concatenate(
                [self._hist, np.zeros((2, grow, self.g711_samples), np.uint8)], axis=1)
            self._hist_ok = np.concatenate([self._hist_ok, np.zeros((2, grow), np.bool_)], axis=1)
            self._hist_new = np.concatenate([self._hist_new, np.zeros(grow, np.intp)])
            self._bulk_tick = np.concatenate([self._bulk_tick, np.full(grow, -1, np.int64)])
            self._bulk_prev = np.concatenate([self._bulk_prev, np.full(grow, -1, np.int64)])
            self._loss_tick = np.concatenate([self._loss_tick, np.full(grow, NEVER, np.int64)])
        if self._rows is not None:
            self._rows.grow(cap)
            self._rows.reset(slot)
        self._dormant.grow(cap)
        self._dormant.clear(slot)
        self._in_loss[slot] = False
        self._stale[slot] = False
        self._hist_ok[:, slot] = False
        self._hist_new[slot] = 0
        self._bulk_tick[slot] = self._bulk_prev[slot] = -1
        self._loss_tick[slot] = NEVER
        if self._last_solo == slot:
            self._last_solo = None
        self._clean.pop(slot, None)          # a new codec's codes never follow the old one's
        self._clean_prev.pop(slot, None)

    def _each(self, funcs: list[Callable[[], Any]], legs: list[RoomLeg], phase: str) -> list[Any]:
        results, failures = call_each(funcs)
        for i, exc in failures:
            self._fail(legs[i], phase, exc)
        return results

    def _fail(self, leg: RoomLeg, phase: str, exc: BaseException) -> None:
        """Take the leg out of the plan (from the next tick on; it is no longer mixed from now)
        and report it once, at the end of this tick."""
        if leg.failed:
            return
        leg.failed = True
        self.mixer.eligible[leg.slot] = False
        self._need_marker.discard(leg)
        self._dirty = True
        self._pending_events.append(LegFailed(leg.leg_id, phase, f"{type(exc).__name__}: {exc}"[:200]))

    def _drop_lanes(self) -> None:
        self._lanes_ok = False
        self._dirty = True
        groups: list[BulkGroup | CommonGroup | OpusGroup] = [*self._bulk, *self._common, *self._opus]
        for group in groups:
            if group.lane is not None:
                group.lane.close()
                group.lane = None

    def _write_sinks(self, sinks: dict[str, AudioSink], pcm: Pcm, leg: RoomLeg | None) -> None:
        """A sink that raises (disk full, say) is detached and reported; the call goes on."""
        for sink_id, sink in list(sinks.items()):
            try:
                sink.write(pcm, self.rate)
            except Exception as exc:
                del sinks[sink_id]
                if leg is not None:
                    self._dirty = True          # the plan lists the legs with sinks
                leg_id = None if leg is None else leg.leg_id
                self._pending_events.append(SinkFailed(sink_id, leg_id, repr(exc)))
