"""A room's tick, way out: what each leg hears, encoded once per shared stream, packetised per leg."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from bridge_codecs import Resampler, make_encoder

from bridge.media.containment import FAILED, call_each
from bridge.media.mixer import limit
from bridge.media.passthrough import CLEAN_TICKS, delayed, passthrough_delay
from bridge.media.room_events import RoomEvent, SourceFinished
from bridge.media.room_plan import SILENCE, CommonGroup, Pcm, RoomLeg, Stream, fit
from bridge.media.room_state import RoomState
from bridge.media.row_resample import RowDownsampler
from bridge.media.talker_matrix import ENCODE_TABLES, encode_rows, render_talkers


class RoomEgress(RoomState):
    """Turns the mix into one payload per stream and one packet per leg."""

    def _signal(self, sig: tuple[Any, ...], leg: RoomLeg | None, cache: dict[tuple[Any, ...], Pcm]) -> Pcm:
        pcm = cache.get(sig)
        if pcm is not None:
            return pcm
        kind = sig[0]
        mixer = self.mixer
        if kind == "mix":
            pcm = mixer.render(None if sig[1] < 0 else sig[1], sig[2])
        elif kind == "whisper":
            assert leg is not None
            pcm = mixer.render(None if sig[1] < 0 else sig[1], sig[2], add=self._whispers(leg))
        elif kind == "silence":
            pcm = self._zeros
        else:
            assert leg is not None and leg.source_frame is not None
            src = leg.source_frame.astype(np.int32)
            if kind == "srcmix":
                own_slot = leg.slot if mixer.is_contributor(leg.slot) else None
                pcm = mixer.render(own_slot, leg.out_gain, add=src)
            else:
                pcm = limit(src * np.float32(leg.out_gain)) if leg.out_gain != 1.0 else leg.source_frame
        cache[sig] = pcm
        return pcm

    def _send(self, signals: dict[tuple[Any, ...], Pcm], events: list[RoomEvent]) -> list[tuple[str, bytes]]:
        outgoing: list[tuple[str, bytes]] = []
        contrib_slots = self.mixer.contributors.tolist()
        contrib = set(contrib_slots)
        solo_slot = self._solo_slot(contrib_slots) if self.passthrough else None
        solo = self._solo(solo_slot)
        streams = self._streams
        tick_no = self._tick_no
        markers = self._need_marker
        by_slot = self._by_slot
        group_of = self._group_of
        # Contributors are routed to their own mix-minus; find their place in the common groups.
        talkers: list[RoomLeg] = []
        excluded: dict[CommonGroup, set[int]] = {}
        for slot in contrib_slots:
            leg = by_slot[slot]
            if leg.plain:
                talkers.append(leg)
                group = self._group_of[leg]
                excluded.setdefault(group, set()).add(group.pos[slot])
        if solo is not None and solo_slot is not None and solo_slot not in contrib:
            # Between words the talker passed through is out of the mix, so it would hear its own
            # codes on its common stream: it is routed to its own mix-minus, as a contributor is.
            contrib = contrib | {solo_slot}
            leg = by_slot[solo_slot]
            if leg.plain:
                talkers.append(leg)
                group = group_of[leg]
                excluded.setdefault(group, set()).add(group.pos[solo_slot])
        # Private sources first: a leg whose prompt ends joins its common stream this very tick,
        # and the first leg in room order to reach a new stream is the one that primes it.
        joiners: dict[tuple[Any, ...], RoomLeg] = {}
        for leg in self._nonplain:
            if leg.source is not None and self._read_source(leg, events):
                if leg.plain and leg.slot not in contrib:
                    joiners.setdefault(leg.common_key, leg)
        for group in self._common:
            skip = excluded.get(group) if excluded else None
            legs = group.legs
            if skip is not None and len(skip) == len(legs):
                continue
            key = group.key
            stream = streams.get(key)
            if stream is None or stream.tick != tick_no:
                rep = legs[0] if skip is None else next(leg for i, leg in enumerate(legs) if i not in skip)
                joiner = joiners.get(key) if joiners else None
                if joiner is not None and joiner.order < rep.order:
                    rep = joiner
                stream = self._produce(key, key[0], rep, signals)
                if solo is not None:
                    self._pass(stream, key, rep, solo)
            payload, ticks = stream.payload, stream.ticks
            ids, pks = group.ids, group.pks
            marked = [leg for leg in markers if group_of.get(leg) is group] if markers else None
            if skip is None and not marked:
                if group.lane is not None:
                    self._lane_send(group, payload, ticks, None)   # not listed in ``outgoing``
                else:
                    self._packetize(outgoing, ids, pks, legs, payload, ticks)
                continue
            # Cut the group at the few special legs (talkers: routed below; first packets:
            # marker bit) and packetise the runs between them in tight loops.
            pos = group.pos
            cuts = set(skip) if skip is not None else set()
            if marked:
                cuts.update(pos[leg.slot] for leg in marked)
            if group.lane is not None:
                self._lane_send(group, payload, ticks, cuts)
                for cut in sorted(cuts):
                    if skip is None or cut not in skip:
                        leg = legs[cut]
                        self._packetize_one(outgoing, leg, pks[cut], payload, ticks, True)
                        markers.discard(leg)
                continue
            start = 0
            for cut in [*sorted(cuts), len(legs)]:
                if cut > start:
                    self._packetize(outgoing, ids[start:cut], pks[start:cut], legs[start:cut], payload, ticks)
                if cut < len(legs) and (skip is None or cut not in skip):
                    leg = legs[cut]
                    self._packetize_one(outgoing, leg, pks[cut], payload, ticks, True)
                    markers.discard(leg)
                start = cut + 1
        if self._stray:
            # Legs that just (re)joined their common stream: record it for _prime.
            # group_of, not leg.plain: a leg whose prompt just ended is routed below.
            for leg in [leg for leg in self._stray if leg in group_of and leg.slot not in contrib]:
                leg.stream_key = leg.common_key
                self._stray.discard(leg)
        if len(talkers) > 1 and self.bulk:
            self._talker_batch(talkers, signals)
        for leg in self._routes(talkers):
            found = self._route(leg, contrib, signals)
            self._stray.add(leg)
            if found is None:
                continue
            key, stream = found
            leg.stream_key = key
            marker = leg in markers
            self._packetize_one(outgoing, leg, leg.packetize, stream.payload, stream.ticks, marker)
            if marker:
                markers.discard(leg)
        for key in [k for k, st in streams.items() if st.tick != tick_no]:
            del streams[key]
        return outgoing

    def _solo_slot(self, contrib_slots: list[int]) -> int | None:
        """The one talker pure listeners hear: the sole contributor, or while nobody is in the
        mix the last sole contributor, still present and allowed in (muted, held or gone: no):
        between its words the silence gate cuts it, and the soft start of its next word
        with it; passed through, a listener hears those as on a direct call."""
        if len(contrib_slots) == 1:
            self._last_solo = contrib_slots[0]
        elif contrib_slots:
            self._last_solo = None
        elif self._last_solo is not None:
            slot = self._last_solo
            if not (self.mixer.present[slot] and self.mixer.eligible[slot] and slot in self._by_slot):
                self._last_solo = None
        return self._last_solo

    def _solo(self, slot: int | None) -> tuple[str, bytes] | None:
        """(codec, passed-through payload) of the one talker in the mix, when nothing is added to or
        changes its frame on the way to a pure listener (passthrough.py)."""
        if (slot is None or self._extra_now or self.mixer.in_gain[slot] != 1.0
                or self._tick_no - self._loss_tick[slot] < CLEAN_TICKS):
            return None
        codec = self._by_slot[slot].dec_name
        delay = passthrough_delay(codec, self.rate)
        if delay is None:
            return None
        current = self._codes_at(slot, self._tick_no)
        if current is None:
            return None
        if delay:
            previous = self._codes_at(slot, self._tick_no - 1)
            passed = delayed(previous, current, delay) if previous is not None else None
            return None if passed is None else (codec, passed)
        return codec, current

    def _codes_at(self, slot: int, tick: int) -> bytes | None:
        """The codes the slot's decoder consumed at ``tick`` (this one or the last), if known."""
        codes = (self._clean if tick == self._tick_no else self._clean_prev).get(slot)
        if codes is not None:
            return codes
        if self._bulk_tick[slot] == tick:
            return self._hist[self._hist_new[slot], slot].tobytes()
        if self._bulk_prev[slot] == tick:
            return self._hist[1 - self._hist_new[slot], slot].tobytes()
        return None

    @staticmethod
    def _pass(stream: Stream, key: tuple[Any, ...], rep: RoomLeg, solo: tuple[str, bytes]) -> None:
        """The common stream ``key`` carries the sole talker's codes when it is a unity-gain
        stream of the same codec and frame (its own encode was made all the same: the encoder
        keeps following what is heard)."""
        codec, payload = solo
        if key[0][2] == 1.0 and rep.enc_name == codec and len(payload) == len(stream.payload):
            stream.payload = payload

    def _packetize(self, outgoing: list[tuple[str, bytes]], ids: list[str], pks: list[Callable[..., bytes]],
                   legs: list[RoomLeg], payload: bytes, ticks: int) -> None:
        packets, failures = call_each(pks, payload, ticks, False)
        if failures:
            for i, exc in failures:
                self._fail(legs[i], "send", exc)
            outgoing.extend((i, pkt) for i, pkt in zip(ids, packets) if pkt is not FAILED)
        else:
            outgoing.extend(zip(ids, packets))

    def _packetize_one(self, outgoing: list[tuple[str, bytes]], leg: RoomLeg, pk: Callable[..., bytes],
                       payload: bytes, ticks: int, marker: bool) -> None:
        try:
            outgoing.append((leg.leg_id, pk(payload, ticks, marker)))
        except Exception as exc:
            self._fail(leg, "send", exc)

    def _lane_send(self, group: CommonGroup, payload: bytes, ticks: int, cuts: set[int] | None) -> None:
        try:
            group.lane.send(payload, ticks, cuts)
        except Exception:
            self._drop_lanes()       # a lane is an optimisation: the per-leg path takes over

    def _routes(self, talkers: list[RoomLeg]) -> Iterable[RoomLeg]:
        """Legs off the common path: every non-plain leg, then the plain contributors."""
        if not talkers:
            return self._nonplain
        return [*self._nonplain, *talkers]

    def _read_source(self, leg: RoomLeg, events: list[RoomEvent]) -> bool:
        """Next frame of the leg's private source; True when it finished (and was detached)."""
        assert leg.source is not None
        try:
            frame = leg.source.read(self.frame_samples, self.rate)
        except Exception:
            frame = None        # a broken prompt or music file ends like a finished one
        if frame is None:
            leg.source = leg.source_frame = None
            self._sync(leg)
            events.append(SourceFinished(None, leg.leg_id))
            return True
        leg.source_frame = fit(frame, self.frame_samples)
        return False

    def _route(self, leg: RoomLeg, contrib: set[int],
               signals: dict[tuple[Any, ...], Pcm]) -> tuple[tuple[Any, ...], Stream] | None:
        """Stream for a leg off the common path (talker, source, held, isolated, deaf); its
        private source, if any, was read this tick already. None: nothing to send."""
        # A deaf leg hears silence (and its own prompts), never nothing: phones and NAT
        # bindings time out on a stream that stops.
        hears = leg.hears_mix and not leg.deaf
        if leg.source is not None:
            sig: tuple[Any, ...] = (("srcmix" if hears and leg.source_mode == "mix" else "src"), leg.leg_id)
        elif hears and leg.whisperers:
            sig = ("whisper", leg.slot if leg.slot in contrib else -1, leg.out_gain, leg.leg_id)
        elif hears:
            sig = ("mix", leg.slot if leg.slot in contrib else -1, leg.out_gain)
        else:
            sig = SILENCE
        key = (sig, leg.enc_key) if self.share_encodes else (sig, leg.enc_key, leg.leg_id)
        stream = self._streams.get(key)
        if stream is None or stream.tick != self._tick_no:
            stream = self._produce(key, sig, leg, signals)
        return key, stream

    def _whispers(self, leg: RoomLeg) -> np.ndarray[Any, np.dtype[np.int32]] | None:
        """What the leg's whisperers said this tick (their gained input), summed."""
        mixer = self.mixer
        out: np.ndarray[Any, np.dtype[np.int32]] | None = None
        for sup in leg.whisperers:
            if sup.failed or sup.muted or sup.on_hold or not mixer.present[sup.slot]:
                continue
            frame = mixer.inputs[sup.slot].astype(np.int32)
            gain = float(mixer.in_gain[sup.slot])
            if gain != 1.0:
                frame = np.rint(frame * gain).astype(np.int32)
            out = frame if out is None else out + frame
        return out

    def _stream(self, key: tuple[Any, ...], leg: RoomLeg) -> Stream:
        """The stream of this key, made (and primed with what the leg heard) if new."""
        stream = self._streams.get(key)
        if stream is None:
            opts = leg.enc_opts
            sig = key[0]
            if leg.talker_complexity is not None and sig[0] != "silence" and not (sig[0] == "mix" and sig[1] < 0):
                # A stream one leg hears (a talker's mix-minus, a prompt): cheaper than the shared
                # streams many hear (media.opus_talker_complexity, README "Media plane").
                opts = {**opts, "complexity": leg.talker_complexity}
            encoder = make_encoder(leg.enc_name, **opts)
            resampler = Resampler(self.rate, leg.enc_rate) if leg.enc_rate != self.rate else None
            stream = Stream(encoder, resampler, leg.ticks)
            self._streams[key] = stream
            self._prime(stream, leg)
        return stream

    def _produce(self, key: tuple[Any, ...], sig: tuple[Any, ...], leg: RoomLeg,
                 signals: dict[tuple[Any, ...], Pcm]) -> Stream:
        stream = self._stream(key, leg)
        pcm = self._signal(sig, leg, signals)
        stream.prev_in, stream.last_in = stream.last_in, pcm
        stream.tick = self._tick_no
        out = stream.resampler.process(pcm) if stream.resampler is not None else pcm
        stream.payload = stream.encoder.encode(out)
        return stream

    def _talker_batch(self, talkers: list[RoomLeg], signals: dict[tuple[Any, ...], Pcm]) -> None:
        """The private streams of G.711 talkers, made for all of them as array operations
        (talker_matrix.py); ``_route`` then finds them made this tick. Streams are made (and
        primed) first, in room order, as ``_route`` would."""
        groups: dict[str, list[tuple[RoomLeg, tuple[Any, ...], Stream]]] = {}
        tick_no = self._tick_no
        for leg in talkers:
            if leg.enc_name not in ENCODE_TABLES or leg.enc_rate != 8000 or leg.whisperers:
                continue            # a whispered-to talker hears its own signal (_route)
            sig = ("mix", leg.slot, leg.out_gain)
            key = (sig, leg.enc_key) if self.share_encodes else (sig, leg.enc_key, leg.leg_id)
            stream = self._streams.get(key)
            if stream is not None and stream.tick == tick_no:
                continue
            groups.setdefault(leg.enc_name, []).append((leg, sig, self._stream(key, leg)))
        for name, items in groups.items():
            if len(items) < 2:
                continue            # one talker: the per-leg path costs the same
            slots = np.fromiter((leg.slot for leg, _, _ in items), np.intp, len(items))
            gains = np.fromiter((leg.out_gain for leg, _, _ in items), np.float32, len(items))
            pcm = render_talkers(self.mixer, slots, gains)
            heard = pcm
            if self.rate != 8000:
                if self._down is None:
                    self._down = RowDownsampler(self.rate, self.frame_samples)
                resamplers = [stream.resampler for _, _, stream in items]
                histories = [r.history for r in resamplers if r is not None]
                heard, kept = self._down.process(histories, pcm)
                for r, row in zip(resamplers, kept):
                    if r is not None:
                        r.history = row
            payloads = encode_rows(name, heard)
            for i, (_, sig, stream) in enumerate(items):
                signals[sig] = row_pcm = pcm[i]
                stream.prev_in, stream.last_in = stream.last_in, row_pcm
                stream.tick = tick_no
                stream.payload = payloads[i].tobytes()

    def _prime(self, stream: Stream, leg: RoomLeg) -> None:
        """Warm a new stream's resampler/encoder with what the leg heard last tick."""
        if not (leg.enc_stateful or stream.resampler is not None) or leg.stream_key is None:
            return
        old = self._streams.get(leg.stream_key)
        if old is None:
            return
        heard = old.prev_in if old.tick == self._tick_no else old.last_in
        if heard is None:
            return
        out = stream.resampler.process(heard) if stream.resampler is not None else heard
        if leg.enc_stateful:
            stream.encoder.encode(out)

    def _write_leg_sinks(self) -> None:
        mixer = self.mixer
        for leg in self._sink_legs:
            own = mixer.own(leg.slot)
            if own is not None:
                pcm = own.astype(np.int16)
            elif mixer.present[leg.slot] and leg.eligible:
                pcm = limit(mixer.inputs[leg.slot] * np.float32(mixer.in_gain[leg.slot]))
            else:
                pcm = self._zeros
            self._write_sinks(leg.sinks, pcm, leg)

