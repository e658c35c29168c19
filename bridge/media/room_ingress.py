"""A room's tick, way in: pop every leg's frame, decode (in bulk for G.711, resampled together
in 16/48 kHz rooms), conceal losses. Opus callers in a receive lane are read as rows too: the
sleeping ones (inactive frames, out of the mix) cost a few array operations, not a decode."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from bridge_codecs.g722 import G722Decoder
from bridge_codecs.opus import OpusDecoder, packet_is_inactive, packets_inactive

from bridge.media.levels import levels_dbov
from bridge.media.opus_sleep import DORMANT_WIDTH
from bridge.media.room_events import RoomEvent, SourceFinished
from bridge.media.room_plan import (
    EMPTY,
    FRAME,
    I32,
    BulkGroup,
    LanePayload,
    OpusGroup,
    Pcm,
    RoomLeg,
    fit,
    kind_of,
)
from bridge.media.room_state import RoomState

# A sleeping Opus leg's frame is decoded every this many ticks (half a second) all the same
# (RoomIngress._sleeps): what a steady tone its sender calls inactive waits at most to be heard.
PROBE_TICKS = 25


class RoomIngress(RoomState):
    """Fills the mixer's input rows for this tick, one frame per leg (or none)."""

    def _read_inputs(self, now: float) -> None:
        mixer = self.mixer
        inputs = mixer.inputs
        present = mixer.present
        present[:mixer.count] = False
        mixer.given[:mixer.count] = False
        self._always = self._render_always()
        self._clean_prev, self._clean = self._clean, {}
        kinds: dict[type, int] = {}   # per tick: dispatch on the shape of the first result seen
        for group in self._bulk:
            if group.lane is not None:
                self._read_lane(group, now, kinds, inputs, present)
            else:
                self._read_bulk(group, kinds, inputs, present)
            if group.stage is not None:
                self._resample_group(group, inputs, present)
        for opus in self._opus:
            self._read_opus(opus, now, kinds, inputs, present)
        if self._other:
            results = self._each(self._other_pops, self._other, "receive")
            # Classify by class in C-level passes: most of these are Empty (DTX listeners).
            classes = [r.__class__ for r in results]
            for cls in set(classes):
                if cls not in kinds:
                    kinds[cls] = kind_of(results[classes.index(cls)])
            empty = {cls for cls, kind in kinds.items() if kind == EMPTY}
            legs = self._other
            native = self._native if self.bulk else None
            base, stride, samples = inputs.ctypes.data, inputs.strides[0], self.frame_samples
            in_loss = self._in_loss
            done: list[int] = []
            for i in [i for i, cls in enumerate(classes) if cls not in empty]:
                leg = legs[i]
                if leg.on_hold:                          # held legs are drained, never decoded
                    continue
                result = results[i]
                kind = kinds[classes[i]]
                if leg.vad_gated and self._sleeps(leg, kind, result):
                    continue
                if native is not None and kind == FRAME:
                    # A steady native G.722 leg: decoded by libspandsp straight into its row.
                    entry = native.get(leg)
                    if entry is None or entry[0] is not leg.decoder:
                        entry = self._native_entry(leg)
                    slot = leg.slot
                    if entry[1] is not None and not in_loss[slot] and 2 * len(result.payload) == samples:
                        fn, state = entry[1]
                        try:
                            ok = fn(state, base + slot * stride, result.payload, samples // 2) == samples
                        except Exception:      # not a bytes payload: its decoder's own path
                            ok = False
                        if ok:
                            done.append(slot)
                            self._clean[slot] = result.payload
                            continue
                self._decode_one(leg, kind, result, inputs, present)
            if done:
                self._remember_wide(np.array(done, np.intp), inputs, present)

    def _read_opus(self, group: OpusGroup, now: float, kinds: dict[type, int], inputs: npt.NDArray[np.int16],
                   present: npt.NDArray[np.bool_]) -> None:
        """Opus callers read through their receive lane. The rows it played are checked for
        sleep together (``_dozing``, the VAD flags by ``packets_inactive``) and the sleeping
        rows' payloads kept in one copy: no Python per sleeping caller. The rest are decoded
        one by one, exactly as ``_sleeps`` and ``_decode_one`` treat them on the per-leg path;
        legs the lane did not play bring their own jitter buffer's item."""
        legs = group.legs
        lane = group.lane
        try:
            assert lane is not None
            payloads, played, results = lane.pop_all(now)
            sizes = lane.out_len
        except Exception:
            self._drop_lanes()
            results = self._each(group.pops, legs, "receive")
            for leg, result in zip(legs, results):
                self._decode_item(leg, result, kinds, inputs, present)
            return
        todo: list[int]
        if self.skip_inactive and played.any():
            slots = group.idx
            rows = np.flatnonzero(played & (sizes <= DORMANT_WIDTH) & self._dozing(slots))
            if rows.size:
                size = sizes[rows]
                head = payloads[rows, :int(size.max())]     # the bytes in use only
                inactive = packets_inactive(head, size)
                rows = rows[inactive]
                if rows.size:
                    self._dormant.keep_rows(slots[rows], head[inactive], size[inactive])
                awake = np.ones(len(legs), np.bool_)
                awake[rows] = False
                todo = np.flatnonzero(awake).tolist()
            else:
                todo = list(range(len(legs)))
        else:
            todo = list(range(len(legs)))
        for i in todo:
            leg = legs[i]
            if played[i]:
                if self.skip_inactive:
                    self._wake(leg)
                self._decode_one(leg, FRAME, LanePayload(payloads[i, :sizes[i]].tobytes()), inputs, present)
            else:
                self._decode_item(leg, results[i], kinds, inputs, present)

    def _decode_item(self, leg: RoomLeg, result: Any, kinds: dict[type, int], inputs: npt.NDArray[np.int16],
                     present: npt.NDArray[np.bool_]) -> None:
        """One leg's jitter buffer item on the per-leg path (not held: not drained only)."""
        kind = kinds.get(result.__class__)
        if kind is None:
            kind = kinds[result.__class__] = kind_of(result)
        if kind == EMPTY or (leg.vad_gated and self._sleeps(leg, kind, result)):
            return
        self._decode_one(leg, kind, result, inputs, present)

    def _dozing(self, slots: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        """Which of ``slots`` may sleep this tick (``_sleeps``'s ``awake`` negated, in one pass)."""
        awake = self._in_loss[slots] | ((self._tick_no + slots) % PROBE_TICKS == 0)
        awake |= self.mixer.detector.opens_at_silence(slots)
        if self._always is not None:
            awake |= np.isin(slots, self._always)
        return ~awake

    def _wake(self, leg: RoomLeg) -> None:
        """Decode the payload skipped last, if any: the decoder's state is then that of the
        frame before the one about to be decoded."""
        payload = self._dormant.take(leg.slot)
        if payload is not None:
            try:
                leg.decoder.decode(payload)
            except Exception:
                pass        # a corrupt payload: the frame itself is decoded as usual

    def _sleeps(self, leg: RoomLeg, kind: int, result: Any) -> bool:
        """Is this Opus leg's frame left undecoded (the leg absent this tick, as in DTX)?

        Yes when its sender's encoder marked the frame inactive (VAD flags, packet_is_inactive)
        and the leg cannot be in the mix: gate closed, not talking, not concealing a loss, input
        not heard or recorded anyway (whisperer, own sinks). That saves a decode (~60 µs) per
        quiet Opus caller per tick, most of an Opus room's cost when a few talk. A loss while
        asleep is not concealed (nothing recent to continue) unless the packet after it is
        active (its FEC may rebuild a lost onset). Every ``PROBE_TICKS``-th frame is
        decoded all the same, so a loud signal the sender's VAD calls inactive (a steady tone
        after half a second) still opens the gate within that time (the probe costs 2 decodes
        in 25). On waking, the last skipped packet is decoded first: the decoder's state is
        then that of the frame before. (``_read_opus`` decides the same for a lane's rows.)"""
        slot = leg.slot
        awake = (self._in_loss[slot] or (self._tick_no + slot) % PROBE_TICKS == 0
                 or self.mixer.detector.open_at_silence(slot)
                 or (self._always is not None and slot in self._always))
        if not awake:
            if kind == FRAME:
                payload = result.payload
                if len(payload) <= DORMANT_WIDTH and packet_is_inactive(payload):
                    self._dormant.keep(slot, payload)
                    return True
            elif self._dormant.has(slot):
                nxt = result.next_payload
                if not nxt or packet_is_inactive(nxt):
                    return True         # else the next packet's FEC may rebuild a lost onset
        self._wake(leg)
        return False

    def _read_bulk(self, group: BulkGroup, kinds: dict[type, int], inputs: npt.NDArray[np.int16],
                   present: npt.NDArray[np.bool_]) -> None:
        """Pop every leg of a bulk group; frames of the right length from legs not recovering
        from a loss are decoded together, the rest go through their own decoder."""
        samples = self.g711_samples
        results = self._each(group.pops, group.legs, "receive")
        n = len(results)
        try:
            payloads: list[Any] = [r.payload for r in results]
        except AttributeError:
            # b"" for results that are not frames: its length sends them to the per-leg path,
            # where their kind is decided as for any other leg.
            payloads = [getattr(r, "payload", b"") for r in results]
        idx = group.idx
        if list(map(len, payloads)).count(samples) == n and not self._in_loss[idx].any():
            codes = np.frombuffer(b"".join(payloads), np.uint8).reshape(n, samples)
            self._decode_rows(group, None, codes, inputs, present)
            return
        ok = np.fromiter(map(len, payloads), np.intp, n) == samples
        ok &= ~self._in_loss[idx]
        bad = np.flatnonzero(~ok).tolist()
        if len(bad) < n:
            pad = bytes(samples)
            for i in bad:
                payloads[i] = pad
            good = np.flatnonzero(ok)
            codes = np.frombuffer(b"".join(payloads), np.uint8).reshape(n, samples)[good]
            self._decode_rows(group, good, codes, inputs, present)
        self._decode_each(group, bad, results, kinds, inputs, present)

    def _decode_rows(self, group: BulkGroup, rows: npt.NDArray[np.intp] | None, codes: npt.NDArray[np.uint8],
                     inputs: npt.NDArray[np.int16], present: npt.NDArray[np.bool_]) -> None:
        """Decode payload rows of a bulk group through its pair table in one lookup: ``rows``
        are the group positions ``codes`` belong to (None: the whole group, in order)."""
        pairs = codes.view(np.uint16)
        if group.stage is not None:
            # 16/48 kHz room: 8 kHz rows, resampled together once the group is read.
            if rows is None:
                np.take(group.pairs, pairs, out=group.stage.view(np.int32), mode="clip")
                group.got[:] = True
                slots = group.idx
            else:
                group.stage.view(np.int32)[rows] = np.take(group.pairs, pairs, mode="clip")
                group.got[rows] = True
                slots = group.idx[rows]
            self._remember(slots, codes)
            return
        in32 = inputs.view(np.int32)
        if rows is None and group.span is not None:
            np.take(group.pairs, pairs, out=in32[group.span], mode="clip")
            present[group.span] = True
            slots = group.idx
        else:
            slots = group.idx if rows is None else group.idx[rows]
            in32[slots] = np.take(group.pairs, pairs, mode="clip")
            present[slots] = True
        self._remember(slots, codes)

    def _decode_each(self, group: BulkGroup, positions: Iterable[int], results: list[Any],
                     kinds: dict[type, int], inputs: npt.NDArray[np.int16],
                     present: npt.NDArray[np.bool_]) -> None:
        """The per-leg path for the items a bulk group could not decode together."""
        legs, stage = group.legs, group.stage
        for i in positions:
            result = results[i]
            kind = kinds.get(result.__class__)
            if kind is None:
                kind = kinds[result.__class__] = kind_of(result)
            if kind == EMPTY:
                continue
            if stage is None:
                self._decode_one(legs[i], kind, result, inputs, present)
            else:
                pcm = self._decode_pcm(legs[i], kind, result)
                if pcm is not None:
                    stage[i] = fit(pcm, self.g711_samples)
                    group.got[i] = True

    def _resample_group(self, group: BulkGroup, inputs: npt.NDArray[np.int16],
                        present: npt.NDArray[np.bool_]) -> None:
        """Every row of the group that got a frame this tick, to the room rate in one product
        (only the rows that may be mixed, see _narrow_levels)."""
        assert self._rows is not None and group.stage is not None
        got = group.got
        if got.all():
            slots, frames = group.idx, group.stage
        elif got.any():
            rows = np.flatnonzero(got)
            slots, frames = group.idx[rows], group.stage[rows]
        else:
            return
        got[:] = False
        need = self._narrow_levels(slots, frames)
        self._rows.process(slots, frames, None if need.all() else need, inputs)
        present[slots] = True

    def _narrow_levels(self, slots: npt.NDArray[np.intp], frames: npt.NDArray[np.int16]) -> npt.NDArray[np.bool_]:
        """Levels of 8 kHz frames bound for a wider room, measured before resampling (the mixer
        takes them as given), and which of these slots need their room-rate frame: those the
        gate may let into the mix this tick, and legs whose own input is heard or recorded
        (whisper, leg sinks). The others are resampled for their history only and their input
        row is zero. The per-leg path (_decode_one) decides the same way on the same levels."""
        mixer = self.mixer
        lev = levels_dbov(frames, self._probe8)
        mixer.given_level[slots] = lev
        mixer.given[slots] = True
        need = mixer.detector.may_open(slots, lev)
        if self._always is not None:
            need |= np.isin(slots, self._always)
        return need

    def _render_always(self) -> npt.NDArray[np.intp] | None:
        """Slots whose room-rate input is used whatever the gate says: a whisperer's (heard
        by its targets) and a leg with sinks of its own (recorded)."""
        if not self._sink_legs and not self._nonplain:
            return None
        slots = {leg.slot for leg in self._sink_legs}
        for leg in self._nonplain:
            slots.update(sup.slot for sup in leg.whisperers)
        return np.fromiter(slots, np.intp, len(slots)) if slots else None

    def _read_lane(self, group: BulkGroup, now: float, kinds: dict[type, int],
                   inputs: npt.NDArray[np.int16], present: npt.NDArray[np.bool_]) -> None:
        """A bulk group read through its receive lane: the lane's rows are decoded together,
        the legs it did not play go through their own jitter buffer's item, as in _read_bulk."""
        try:
            payloads, played, results = group.lane.pop_all(now)
        except Exception:
            self._drop_lanes()
            self._read_bulk(group, kinds, inputs, present)
            return
        in_loss = self._in_loss[group.idx]
        bulk = played & ~in_loss if in_loss.any() else played
        if bulk.all():
            self._decode_rows(group, None, payloads, inputs, present)
            return
        rows = np.flatnonzero(bulk)
        if rows.size:
            self._decode_rows(group, rows, payloads[rows], inputs, present)
        rest = np.flatnonzero(~bulk).tolist()
        for i in rest:
            if results[i] is None:
                # A lane frame of a leg still concealing goes through its decoder (it has state).
                results[i] = LanePayload(payloads[i].tobytes())
        self._decode_each(group, rest, results, kinds, inputs, present)

    def _native_entry(self, leg: RoomLeg) -> tuple[Any, tuple[Any, int] | None]:
        """(decoder, its libspandsp entry point or None), cached per leg: a G.722 decoder at the
        room rate, in a room that is not the per-leg reference (bulk=False)."""
        decoder = leg.decoder
        found = decoder.native() if isinstance(decoder, G722Decoder) and leg.in_resampler is None else None
        if len(self._native) > 2 * len(self._legs) + 16:
            self._native = {k: v for k, v in self._native.items() if k.leg_id in self._legs}
        entry = self._native[leg] = (decoder, found)
        return entry

    def _remember_wide(self, slots: npt.NDArray[np.intp], inputs: npt.NDArray[np.int16],
                       present: npt.NDArray[np.bool_]) -> None:
        """Frames decoded natively become each slot's newest history entry (the decoder's
        concealment has not seen them: _catch_up hands them over before it is used again)."""
        present[slots] = True
        hist = self._wide_hist
        if hist is None or hist.shape[1] < self._in_loss.shape[0]:
            grown = np.zeros((2, self._in_loss.shape[0], self.frame_samples), np.int16)
            if hist is not None:
                grown[:, :hist.shape[1]] = hist
            self._wide_hist = hist = grown
        older = 1 - self._hist_new[slots]
        hist[older, slots] = inputs[slots]
        self._hist_ok[older, slots] = True
        self._hist_new[slots] = older
        self._stale[slots] = True

    def _remember(self, slots: npt.NDArray[np.intp], codes: npt.NDArray[np.uint8]) -> None:
        """Bulk-decoded payloads become each slot's newest history entry; the decoders missed them."""
        older = 1 - self._hist_new[slots]
        self._hist[older, slots] = codes
        self._hist_ok[older, slots] = True
        self._hist_new[slots] = older
        self._stale[slots] = True
        self._bulk_prev[slots] = self._bulk_tick[slots]
        self._bulk_tick[slots] = self._tick_no

    def _decode_pcm(self, leg: RoomLeg, kind: int, result: Any) -> Pcm | None:
        """One leg's frame or concealment at the decoder's rate; None when decoding raised
        (a corrupt payload must cost this leg one frame, never the room's tick)."""
        slot = leg.slot
        try:
            if self._stale[slot]:
                self._catch_up(leg)
            if kind == FRAME:
                pcm: Pcm = leg.decoder.decode(result.payload)
                self._in_loss[slot] = False
                self._clean[slot] = result.payload
            else:
                # Opus counts the frames its next packet's FEC rebuilt; any other is invented.
                opus = leg.decoder if isinstance(leg.decoder, OpusDecoder) else None
                rebuilt = opus.fec_frames if opus is not None else 0
                pcm = leg.decoder.conceal(leg.dec_samples, result.next_payload)
                self._in_loss[slot] = True
                self._loss_tick[slot] = self._tick_no
                if opus is not None and opus.fec_frames != rebuilt:
                    leg.frames_fec += 1
                else:
                    leg.frames_concealed += 1
        except Exception:
            return None
        return pcm

    def _decode_one(self, leg: RoomLeg, kind: int, result: Any, inputs: npt.NDArray[np.int16],
                    present: npt.NDArray[np.bool_]) -> None:
        pcm = self._decode_pcm(leg, kind, result)
        if pcm is None:
            return
        slot = leg.slot
        if leg.in_resampler is not None:
            narrow = fit(pcm, leg.dec_samples)
            try:
                pcm = leg.in_resampler.process(narrow)
            except Exception:
                return
            # An 8 kHz leg in a wider room, as a bulk group's row: measured before
            # resampling, zero at the room rate when it cannot be mixed.
            if (leg.dec_samples == self.g711_samples
                    and not self._narrow_levels(np.array([slot]), narrow.reshape(1, -1))[0]):
                pcm = self._zeros
        inputs[slot] = fit(pcm, self.frame_samples)
        present[slot] = True

    def _catch_up(self, leg: RoomLeg) -> None:
        """Feed the leg's decoder the payloads it missed while they were decoded in bulk (the
        older first), so its concealment history is what it would have been; it then has
        them all, so the history is emptied (the next bulk payloads start it again)."""
        slot = leg.slot
        new = int(self._hist_new[slot])
        rows = [row for row in (1 - new, new) if self._hist_ok[row, slot]]
        if self._wide_hist is not None and isinstance(leg.decoder, G722Decoder):
            # Natively decoded G.722: the decoder's ADPCM state is current, only its
            # concealment history is behind.
            leg.decoder.decoded_elsewhere([self._wide_hist[row, slot] for row in rows])
        else:
            for row in rows:
                leg.decoder.decode(self._hist[row, slot].tobytes())
        self._hist_ok[:, slot] = False
        self._stale[slot] = False

    def _read_room_sources(self, events: list[RoomEvent]) -> I32 | None:
        if not self._room_sources:
            return None
        extra = np.zeros(self.frame_samples, np.int32)
        for source_id, source in list(self._room_sources.items()):
            try:
                pcm = source.read(self.frame_samples, self.rate)
            except Exception:
                pcm = None      # a broken announcement ends like a finished one
            if pcm is None:
                del self._room_sources[source_id]
                events.append(SourceFinished(source_id, None))
                continue
            extra += fit(pcm, self.frame_samples)
        return extra

