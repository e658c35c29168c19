"""One conference room's 20 ms media tick: pure, no IO, ``now`` passed in.

tick(now): apply queued control ops -> pop one frame per leg -> decode / conceal -> resample to
the room rate -> mix (mixer.py) -> for each distinct (signal, codec, rate, options) *stream*:
resample once, encode once -> packetise per leg (only the RTP header is per leg).

Streams are the sharing unit.  A leg's stream key is (what it hears, how it is encoded):
  ("mix", -1, gain)   the whole total: every non-contributor with that output gain shares it
  ("mix", slot, gain) total minus own: only contributors (legs actually mixed this tick)
  ("src", leg) / ("srcmix", leg)   a private prompt, alone or on top of the leg's mix
  ("silence",)        held / isolated legs without a source (keeps RTP timing and NAT alive)
Streams persist across ticks while used, so a stateful encoder (Opus, G.722) always feeds a
fixed group; a stream unused for a tick is dropped. "How it is encoded" includes an Opus leg's
loss bucket (opus_loss.py, from its RTCP reports): listeners in one bucket share one encode.

Switching streams (Opus/G.722 choice): a leg gets a private stream only while it is a
contributor, i.e. while its own contribution is nonzero; the silence gate's hangover makes that
status change only at the leg's own talkspurt boundaries.  A freshly created private stream is
*primed*: the frame the leg heard last tick (from its previous stream) is run through the new
resampler and encoder and the output discarded, so the new encoder's analysis state matches
what the far-end decoder was reconstructing.  Returning to the shared stream happens a hangover
after the leg fell silent, when its own part of the signal is ~0, so the shared encoder's state
already describes almost the same audio.  Per-talker encoders are not kept warm: that would be
one encode per participant, the cost this design exists to avoid.

Per-leg Python work is the cost at scale (1,000 legs = 1,000 iterations per tick), so the tick
runs from a *plan* rebuilt only when membership or a leg's state changes: bulk G.711 groups
(pop every port, join the payloads, one table lookup for all), the other legs, the common-stream
groups (one encode, then one tight loop of ``packetize`` bound methods) and the routed legs
(talkers, prompts, held, isolated, deaf).  Per-leg bookkeeping of the bulk path (the last two
payloads, kept for concealment) lives in slot-indexed arrays, written with a few numpy calls.

Steady lanes: when the ports offer them (the socket adapter's ``LegPort.rx_lane``/``tx_lane``;
bridge/rtp/lanes.py), a bulk group is read through a receive lane (every header checked and
every jitter buffer advanced in numpy, frames handed over as one array) and a common group is
sent through a send lane (every header built at once). In 16 and 48 kHz rooms a bulk group's
8 kHz rows are resampled together (row_resample.py); G.711 talkers' private streams are made
together too (talker_matrix.py). ``Room(bulk=False)`` is the per-leg reference path. Packets a send lane sent are not listed in
``TickResult.outgoing``; fakes and other ports keep the per-leg calls.

Files: this one holds the control API, the plan and the tick; room_state.py the state they
share; room_ingress.py the way in (pop, decode, conceal); room_egress.py the way out (what each
leg hears, shared encodes, packetise); room_plan.py the per-leg records and groups.
"""

from __future__ import annotations

from typing import Any

from bridge_codecs import Decoder, Encoder, Resampler, make_decoder, make_encoder
from bridge_codecs.opus import OpusDecoder

from bridge.media.opus_loss import LossBucket
from bridge.media.ports import AudioSink, AudioSource, RtpPort
from bridge.media.room_egress import RoomEgress
from bridge.media.room_events import (
    DominantSpeakerChanged,
    LegFailed,
    LegState,
    RoomEvent,
    SinkFailed,
    SourceFinished,
    TalkingStarted,
    TalkingStopped,
    TickResult,
)
from bridge.media.room_ingress import RoomIngress
from bridge.media.room_plan import (
    BYTEWISE,
    LANE_MS,
    ROOM_RATES,
    BulkGroup,
    CommonGroup,
    OpusGroup,
    Pcm,
    RoomLeg,
    group_by,
    pair_table,
    port_lane,
    slot_of,
)

__all__ = ["Room", "RoomEvent", "TickResult", "LegState", "TalkingStarted", "TalkingStopped",
           "DominantSpeakerChanged", "SourceFinished", "LegFailed", "SinkFailed", "ROOM_RATES"]


class Room(RoomIngress, RoomEgress):
    """One conference room's mixer: queued control ops, then ``tick(now)`` every 20 ms."""

    # -- control (queued, applied at the start of the next tick) -------------------------------
    def add_leg(self, leg_id: str, port: RtpPort, decoder_name: str, encoder_name: str, *,
                payload_type: int, encoder_opts: dict[str, Any] | None = None) -> None:
        if leg_id in self._known:
            raise ValueError(f"leg {leg_id!r} already in room {self.room_id!r}")
        codec = self._build_codec(decoder_name, encoder_name, encoder_opts)   # errors raise here
        self._known.add(leg_id)

        def op() -> None:
            leg = RoomLeg(leg_id, port, self.mixer.add(), self.frame_ms, self.rate)
            leg.order = self._added
            self._added += 1
            self._install_codec(leg, codec, payload_type)
            self._legs[leg_id] = leg
            self._by_slot[leg.slot] = leg
            self._need_marker.add(leg)
            self._sync(leg)
            self._dirty = True
        self._ops.append(op)

    def remove_leg(self, leg_id: str) -> None:
        self._require(leg_id)
        self._known.discard(leg_id)

        def op() -> None:
            leg = self._legs.pop(leg_id)
            del self._by_slot[leg.slot]
            for other in self._legs.values():     # a supervisor who leaves stops whispering
                if leg in other.whisperers:
                    other.whisperers.remove(leg)
                    self._sync(other)
            self._need_marker.discard(leg)
            self._stray.discard(leg)
            self._dirty = True
            if self.mixer.remove(leg.slot):
                self._pending_events.append(DominantSpeakerChanged(None))
        self._ops.append(op)

    def set_muted(self, leg_id: str, value: bool) -> None:
        self._set_flag(leg_id, "muted", value)

    def set_deaf(self, leg_id: str, value: bool) -> None:
        self._set_flag(leg_id, "deaf", value)

    def set_on_hold(self, leg_id: str, value: bool) -> None:
        self._set_flag(leg_id, "on_hold", value)

    def set_listen_only(self, leg_id: str, value: bool) -> None:
        self._set_flag(leg_id, "listen_only", value)

    def set_always_mixed(self, leg_id: str, value: bool = True) -> None:
        """Exempt the leg from the talker cap (a cascade trunk carries a mix of up to K voices)."""
        self._require(leg_id)

        def op() -> None:
            self.mixer.pinned[self._legs[leg_id].slot] = value
        self._ops.append(op)

    def set_isolated(self, leg_id: str, value: bool) -> None:
        self._set_flag(leg_id, "isolated", value)

    def set_whisper(self, leg_id: str, targets: list[str] | None) -> None:
        """Telnyx ``whisper``: ``leg_id`` leaves the common mix and only ``targets`` hear it (on
        top of their mix; it still hears everyone). None or [] ends the whisper."""
        self._require(leg_id)
        for target in targets or ():
            self._require(target)

        def op() -> None:
            sup = self._legs[leg_id]
            for leg in self._legs.values():
                if sup in leg.whisperers:
                    leg.whisperers.remove(sup)
                    self._sync(leg)
            sup.whispering = bool(targets)
            for target in targets or ():
                heard_by = self._legs.get(target)     # may have left since
                if heard_by is not None and heard_by is not sup:
                    heard_by.whisperers.append(sup)
                    self._sync(heard_by)
            self._sync(sup)
        self._ops.append(op)

    def set_input_gain(self, leg_id: str, db: float) -> None:
        self._set_flag(leg_id, "input_gain_db", float(db))

    def set_output_gain(self, leg_id: str, db: float) -> None:
        self._set_flag(leg_id, "output_gain_db", float(db))

    def set_max_talkers(self, k: int) -> None:
        """Mix only the ``k`` loudest talkers from the next tick on (0: everyone)."""
        if k < 0:
            raise ValueError("max_talkers must be >= 0")

        def op() -> None:
            self.mixer.max_talkers = k
        self._ops.append(op)

    def set_codec(self, leg_id: str, decoder_name: str, encoder_name: str, payload_type: int,
                  encoder_opts: dict[str, Any] | None = None) -> None:
        self._require(leg_id)
        codec = self._build_codec(decoder_name, encoder_name, encoder_opts)

        def op() -> None:
            leg = self._legs[leg_id]
            self._install_codec(leg, codec, payload_type)
            self._sync(leg)
            self._need_marker.add(leg)
            self._dirty = True      # the decoder alone may have changed bulk table
        self._ops.append(op)

    def report_loss(self, leg_id: str, fraction_lost: float) -> None:
        """One RTCP receiver report from this leg (the fraction of our packets it lost, 0..1).
        An Opus leg opened with ``packet_loss="auto"`` moves between loss buckets
        (opus_loss.py): its encode plans for the loss it sees. Other legs, and a leg that has
        left meanwhile (its last RTCP may come after), ignore it."""
        fraction = min(1.0, max(0.0, float(fraction_lost)))

        def op() -> None:
            leg = self._legs.get(leg_id)
            if leg is not None and leg.loss is not None and leg.loss.report(fraction):
                self._set_expected_loss(leg, leg.loss.percent)
        self._ops.append(op)

    def expected_loss(self, leg_id: str) -> int | None:
        """The loss % this leg's Opus encode plans for now (None: not an Opus leg)."""
        leg = self._legs[leg_id]
        return int(leg.enc_opts.get("packet_loss", 0)) if leg.enc_name == "opus" else None

    def _set_expected_loss(self, leg: RoomLeg, percent: int) -> None:
        # A new encode key: the leg moves to the stream (shared or made and primed) of its bucket.
        leg.enc_opts = {**leg.enc_opts, "packet_loss": percent}
        leg.enc_key = (leg.enc_name, leg.enc_rate, tuple(sorted(leg.enc_opts.items())))
        self._sync(leg)

    def set_leg_source(self, leg_id: str, source: AudioSource | None, mode: str = "replace") -> None:
        """A prompt / hold music heard by this leg only: "replace" = only the source,
        "mix" = the source on top of the leg's mix-minus.  None detaches."""
        self._require(leg_id)
        if mode not in ("replace", "mix"):
            raise ValueError(f"mode must be 'replace' or 'mix', not {mode!r}")

        def op() -> None:
            leg = self._legs[leg_id]
            leg.source, leg.source_mode = source, mode
            self._sync(leg)
        self._ops.append(op)

    def add_room_source(self, source_id: str, source: AudioSource) -> None:
        """Heard by every leg that hears the mix (beeps, announcements); part of the mix sink."""
        self._ops.append(lambda: self._room_sources.__setitem__(source_id, source))

    def remove_room_source(self, source_id: str) -> None:
        def op() -> None:
            self._room_sources.pop(source_id, None)
        self._ops.append(op)

    def add_mix_sink(self, sink_id: str, sink: AudioSink) -> None:
        self._ops.append(lambda: self._mix_sinks.__setitem__(sink_id, sink))

    def remove_mix_sink(self, sink_id: str) -> None:
        def op() -> None:
            self._mix_sinks.pop(sink_id, None)
        self._ops.append(op)

    def add_leg_sink(self, leg_id: str, sink_id: str, sink: AudioSink) -> None:
        """Per-participant track: what this leg said (room rate, input gain applied; silence
        while muted/held/listen-only/isolated, since nobody heard it)."""
        self._require(leg_id)

        def op() -> None:
            self._legs[leg_id].sinks[sink_id] = sink
            self._dirty = True
        self._ops.append(op)

    def remove_leg_sink(self, leg_id: str, sink_id: str) -> None:
        self._require(leg_id)

        def op() -> None:
            self._legs[leg_id].sinks.pop(sink_id, None)
            self._dirty = True
        self._ops.append(op)

    def participants_snapshot(self) -> list[LegState]:
        det = self.mixer.detector
        return [
            LegState(leg.leg_id, leg.muted, leg.deaf, leg.on_hold, leg.listen_only, leg.isolated,
                     bool(det.talking[leg.slot]), round(float(det.level[leg.slot]), 1),
                     leg.input_gain_db, leg.output_gain_db, leg.dec_name, leg.enc_name,
                     leg.payload_type, self.mixer.is_contributor(leg.slot), leg.frames_fec,
                     leg.frames_concealed, self.expected_loss(leg.leg_id))
            for leg in self._legs.values()
        ]

    def __len__(self) -> int:
        return len(self._legs)

    def __contains__(self, leg_id: object) -> bool:
        return leg_id in self._legs

    def _require(self, leg_id: str) -> None:
        if leg_id not in self._known:
            raise KeyError(f"no leg {leg_id!r} in room {self.room_id!r}")

    def _set_flag(self, leg_id: str, name: str, value: Any) -> None:
        self._require(leg_id)

        def op() -> None:
            leg = self._legs[leg_id]
            setattr(leg, name, value)
            self._sync(leg)
        self._ops.append(op)

    def _build_codec(self, dec_name: str, enc_name: str,
                     enc_opts: dict[str, Any] | None) -> tuple[Decoder, Encoder, dict[str, Any]]:
        opts = dict(enc_opts or {})
        opts.setdefault("frame_ms", self.frame_ms)
        decoder = make_decoder(dec_name, frame_ms=self.frame_ms)
        # Two settings are the room's, not the encoder's (applied by _install_codec and _stream):
        # packet_loss "auto" and talker_complexity. The probe checks everything else now.
        probe_opts = {k: v for k, v in opts.items() if k != "talker_complexity"}
        if probe_opts.get("packet_loss") == "auto":
            probe_opts["packet_loss"] = 0
        probe = make_encoder(enc_name, **probe_opts)
        talker = opts.get("talker_complexity")
        if talker is not None and (probe.name != "opus" or not 0 <= talker <= 10):
            raise ValueError("talker_complexity is an Opus complexity, 0..10")
        return decoder, probe, opts

    def _install_codec(self, leg: RoomLeg, codec: tuple[Decoder, Encoder, dict[str, Any]],
                       payload_type: int) -> None:
        decoder, probe, opts = codec
        leg.decoder = decoder
        leg.dec_name = decoder.name
        leg.dec_samples = decoder.sample_rate * self.frame_ms // 1000
        leg.in_resampler = (Resampler(decoder.sample_rate, self.rate)
                            if decoder.sample_rate != self.rate else None)
        leg.bytewise = None
        leg.opus = isinstance(decoder, OpusDecoder)
        leg.vad_gated = self.skip_inactive and leg.opus
        if decoder.name in BYTEWISE and self.bulk:
            # Bulk-decoded at any room rate: a 16/48 kHz room resamples the group's rows in one
            # product (RowResampler), so the per-leg resampler is never used for this leg.
            leg.in_resampler = None
            if decoder.name not in self._tables:
                # The decoder's own mapping, so bulk decoding is byte-identical to decode().
                table = make_decoder(decoder.name).decode(bytes(range(256))).copy()
                self._tables[decoder.name] = table
                self._pair_tables[decoder.name] = pair_table(table)
            leg.bytewise = decoder.name
        self._reset_slot(leg.slot)
        leg.enc_name = probe.name
        leg.enc_rate = probe.sample_rate
        leg.enc_stateful = probe.stateful
        leg.ticks = probe.clock_rate * self.frame_ms // 1000
        opts = dict(opts)
        leg.talker_complexity = opts.pop("talker_complexity", None)
        if opts.get("packet_loss") == "auto":
            # Planned loss from the leg's RTCP reports (report_loss), clean until one says otherwise;
            # a codec change keeps what the reports said so far.
            if leg.loss is None:
                leg.loss = LossBucket()
            opts = {**opts, "packet_loss": leg.loss.percent}
        else:
            leg.loss = None
        leg.enc_opts = opts
        leg.enc_key = (probe.name, probe.sample_rate, tuple(sorted(opts.items())))
        # Recorded for the listing; the RTP session writes the header (RtpSession.update_remote).
        leg.payload_type = payload_type

    def _replan(self) -> None:
        self._dirty = False
        old_lanes: list[Any] = [group.lane for group in self._bulk] + [group.lane for group in self._common]
        old_lanes += [group.lane for group in self._opus]
        for lane in old_lanes:
            if lane is not None:
                lane.close()       # the sessions take their state back
        legs = [leg for leg in self._legs.values() if not leg.failed]
        fast = [leg for leg in legs if leg.fast_in]
        lanes = self.frame_ms == LANE_MS and self._lanes_ok
        self._opus = self._opus_groups([leg for leg in legs if leg.opus_in]) if lanes else []
        in_lane = {leg for group in self._opus for leg in group.legs}
        self._other = [leg for leg in legs if not leg.fast_in and leg not in in_lane]
        self._other_pops = [leg.pop for leg in self._other]
        plain = [leg for leg in legs if leg.plain]
        self._nonplain = [leg for leg in legs if not leg.plain]
        self._sink_legs = [leg for leg in legs if leg.sinks]
        # Bulk groups in slot order (their order is free): usually one run of slots, written
        # through a view instead of a scatter.  Bytewise codecs run at 8 kHz, so frames hold
        # whole sample pairs for the pair tables.
        fast.sort(key=slot_of)
        staged = self.g711_samples if self._rows is not None else None
        self._bulk = [BulkGroup(group, self._pair_tables[name], port_lane(group, "rx_lane") if lanes else None,
                                staged)
                      for name, group in group_by(fast, [leg.bytewise for leg in fast]).items()]
        # One group per stream and port class: a lane needs ports of one class (a browser's
        # beside SIP callers' would cost the callers theirs); groups of one key share the encode.
        self._common = [CommonGroup(key, group, port_lane(group, "tx_lane") if self._lanes_ok else None)
                        for (key, _), group in group_by(plain, [(leg.common_key, type(leg.port))
                                                                for leg in plain]).items()]
        self._group_of = {}
        for group in self._common:
            self._group_of.update(dict.fromkeys(group.legs, group))

    @staticmethod
    def _opus_groups(legs: list[RoomLeg]) -> list[OpusGroup]:
        """Opus callers by port class, each class whose ports offer an Opus receive lane
        (bridge/rtp/lanes.py; fakes and browsers' ports have none: their legs stay per-leg)."""
        legs = sorted(legs, key=slot_of)
        groups = []
        for group in group_by(legs, [type(leg.port) for leg in legs]).values():
            lane = port_lane(group, "opus_rx_lane")
            if lane is not None:
                groups.append(OpusGroup(group, lane))
        return groups

    def tick(self, now: float) -> TickResult:
        ops, self._ops = self._ops, []
        for op in ops:
            op()
        if self._dirty:
            self._replan()
        events: list[RoomEvent] = self._pending_events
        self._pending_events = []
        self._tick_no += 1
        mixer = self.mixer

        self._read_inputs(now)
        extra = self._read_room_sources(events)
        self._extra_now = extra is not None
        report = mixer.mix(extra)

        by_slot = self._by_slot
        levels = report.levels
        for slot in report.started.tolist():
            events.append(TalkingStarted(by_slot[slot].leg_id, round(float(levels[slot]), 1)))
        for slot in report.stopped.tolist():
            events.append(TalkingStopped(by_slot[slot].leg_id, round(float(levels[slot]), 1)))
        if report.dominant_changed:
            dom = report.dominant
            events.append(DominantSpeakerChanged(by_slot[dom].leg_id if dom is not None else None))

        signals: dict[tuple[Any, ...], Pcm] = {}
        if self._mix_sinks:
            self._write_sinks(self._mix_sinks, self._signal(("mix", -1, 1.0), None, signals), None)
        outgoing = self._send(signals, events)
        if self._sink_legs:
            self._write_leg_sinks()
        if self._pending_events:           # legs and sinks that failed during this tick
            events += self._pending_events
            self._pending_events = []
        return TickResult(outgoing, events)

