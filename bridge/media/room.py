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
fixed group; a stream unused for a tick is dropped.

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
bridge/rtp/lanes.py), a bulk group at 8 kHz is read through a receive lane (every header checked
and every jitter buffer advanced in numpy, frames handed over as one array) and a common group is
sent through a send lane (every header built at once). Packets a send lane sent are not listed in
``TickResult.outgoing``; fakes and other ports keep the per-leg calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.media.containment import FAILED, call_each
from bridge.media.levels import TalkConfig
from bridge.media.mixer import Mixer, db_to_gain, limit
from bridge.media.ports import AudioSink, AudioSource, RtpPort
from bridge.media.room_events import (
    DominantSpeakerChanged,
    LegFailed,
    SinkFailed,
    LegState,
    RoomEvent,
    SourceFinished,
    TalkingStarted,
    TalkingStopped,
    TickResult,
)
from bridge_codecs import Decoder, Encoder, Resampler, make_decoder, make_encoder

Pcm = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]

ROOM_RATES = (8000, 16000, 48000)
# Decoders that map each payload byte to one sample: decoded for all legs in one numpy call.
_BYTEWISE = ("PCMU", "PCMA")
_LANE_FRAME = 160     # receive lanes model G.711 at 20 ms: an 8 kHz room's frame

__all__ = ["Room", "RoomEvent", "TickResult", "LegState", "TalkingStarted", "TalkingStopped",
           "DominantSpeakerChanged", "SourceFinished", "LegFailed", "SinkFailed"]


# -- internals ---------------------------------------------------------------------------------
_FRAME, _MISSING, _EMPTY = 0, 1, 2


def _kind_of(result: Any) -> int:
    # Dispatch on shape, not class, so fakes and bridge.rtp.jitter results both work.
    if hasattr(result, "payload"):
        return _FRAME
    if hasattr(result, "next_payload"):
        return _MISSING
    return _EMPTY


class _Payload:
    """A frame a receive lane played, for the per-leg decode path (a ``Frame`` by shape)."""
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


def _fit(pcm: Pcm, samples: int) -> Pcm:
    """Pad/truncate a frame whose length disagrees with the tick (odd ptime, bad packet)."""
    n = pcm.shape[0]
    if n == samples:
        return pcm
    if n > samples:
        return pcm[:samples]
    out = np.zeros(samples, np.int16)
    out[:n] = pcm
    return out


class _Leg:
    def __init__(self, leg_id: str, port: RtpPort, slot: int, frame_ms: int, room_rate: int) -> None:
        self.leg_id = leg_id
        self.port = port
        self.slot = slot
        self.order = 0                # position in the room's leg order (Room._legs)
        self.muted = False
        self.deaf = False
        self.on_hold = False
        self.listen_only = False
        self.isolated = False
        self.failed = False           # its port/source/sink raised: out of the plan (LegFailed)
        self.input_gain_db = 0.0
        self.output_gain_db = 0.0
        self.out_gain = 1.0
        self.source: AudioSource | None = None
        self.source_mode = "replace"
        self.source_frame: Pcm | None = None
        self.sinks: dict[str, AudioSink] = {}
        # Key of the stream the leg heard last tick (None: nothing), used to prime a new stream.
        # Legs on the common stream are only rewritten when it changes (Room._stray).
        self.stream_key: tuple[Any, ...] | None = None
        # codec state (set by _install_codec)
        self.dec_name = ""
        self.enc_name = ""
        self.payload_type = 0
        self.decoder: Decoder
        self.dec_samples = 0
        self.in_resampler: Resampler | None = None
        self.bytewise: str | None = None
        self.enc_key: tuple[Any, ...] = ()
        self.enc_opts: dict[str, Any] = {}
        self.enc_rate = room_rate
        self.enc_stateful = False
        self.ticks = 0
        # Hot-loop caches, refreshed by Room._sync whenever flags, codec or source change.
        self.pop = port.pop_frame
        self.packetize = port.packetize
        self.fast_in = False          # bytewise codec and not held: bulk decode path
        self.plain = True             # hears the mix, no source, not deaf: common-stream path
        self.common_key: tuple[Any, ...] = ()

    @property
    def eligible(self) -> bool:
        return not (self.muted or self.on_hold or self.listen_only or self.isolated or self.failed)

    @property
    def hears_mix(self) -> bool:
        return not (self.on_hold or self.isolated)


class _Stream:
    __slots__ = ("encoder", "resampler", "ticks", "tick", "payload", "last_in", "prev_in")

    def __init__(self, encoder: Encoder, resampler: Resampler | None, ticks: int) -> None:
        self.encoder = encoder
        self.resampler = resampler
        self.ticks = ticks
        self.tick = -1
        self.payload = b""
        self.last_in: Pcm | None = None
        self.prev_in: Pcm | None = None


def _lane(legs: list[_Leg], kind: str) -> Any:
    """The ports' steady lane for this group (``rx_lane``/``tx_lane`` of the port class,
    e.g. the socket adapter's LegPort), or None: fakes and mixed port types have none."""
    cls = type(legs[0].port)
    factory = getattr(cls, kind, None)
    if factory is None or any(type(leg.port) is not cls for leg in legs):
        return None
    return factory([leg.port for leg in legs])


class _Bulk:
    """Legs decoded together through one G.711 table (bytewise codec, not held)."""
    __slots__ = ("legs", "pops", "idx", "span", "pairs", "lane")

    def __init__(self, legs: list[_Leg], pairs: npt.NDArray[np.int32], lane: Any = None) -> None:
        self.legs = legs
        self.lane = lane      # RxLane: reads, checks and plays steady legs in numpy
        self.pops = [leg.pop for leg in legs]
        slots = [leg.slot for leg in legs]            # ascending (Room._replan sorts)
        self.idx = np.asarray(slots, np.intp)
        # Slots in one run (the usual case): write into a view, no scatter.
        self.span = slice(slots[0], slots[-1] + 1) if slots[-1] - slots[0] == len(slots) - 1 else None
        self.pairs = pairs


class _Common:
    """Plain legs sharing one common-stream key, in room order."""
    __slots__ = ("key", "legs", "ids", "pks", "pos", "lane")

    def __init__(self, key: tuple[Any, ...], legs: list[_Leg], lane: Any = None) -> None:
        self.key = key
        self.legs = legs
        self.lane = lane      # TxLane: every header at once, one send call per leg
        self.ids = [leg.leg_id for leg in legs]
        self.pks = [leg.packetize for leg in legs]
        self.pos = dict(zip([leg.slot for leg in legs], range(len(legs))))   # slot -> index


_SILENCE = ("silence",)


def _slot_of(leg: _Leg) -> int:
    return leg.slot


def _group_by(legs: list[_Leg], keys: list[Any]) -> dict[Any, list[_Leg]]:
    """Legs by key, first-seen key order, legs in order; one key (the usual case) costs one pass."""
    if not legs:
        return {}
    first = keys[0]
    if keys.count(first) == len(keys):
        return {first: legs}
    groups: dict[Any, list[_Leg]] = {}
    for leg, key in zip(legs, keys):
        groups.setdefault(key, []).append(leg)
    return groups


def _pair_table(table: Pcm) -> npt.NDArray[np.int32]:
    """Decode table over byte *pairs*: a native uint16 view of the payload indexes it and the
    int32 result, viewed as int16, is the two decoded samples in order (half the lookups)."""
    pair_bytes = np.arange(65536, dtype=np.uint16).view(np.uint8).reshape(-1, 2)
    pairs = np.empty((65536, 2), np.int16)
    pairs[:, 0] = table[pair_bytes[:, 0]]
    pairs[:, 1] = table[pair_bytes[:, 1]]
    return pairs.view(np.int32).ravel()


class Room:
    def __init__(self, room_id: str, rate: int, max_talkers: int = 0, frame_ms: int = 20,
                 *, talk: TalkConfig | None = None, share_encodes: bool = True) -> None:
        if rate not in ROOM_RATES:
            raise ValueError(f"room rate must be one of {ROOM_RATES}, not {rate}")
        if frame_ms <= 0 or rate * frame_ms % 1000:
            raise ValueError(f"frame_ms {frame_ms} does not give whole samples at {rate} Hz")
        self.room_id = room_id
        self.rate = rate
        self.share_encodes = share_encodes   # False: one stream per leg (benchmark baseline)
        self.frame_ms = frame_ms
        self.frame_samples = rate * frame_ms // 1000
        self.mixer = Mixer(rate, frame_ms, max_talkers, talk=talk)
        self._legs: dict[str, _Leg] = {}
        self._by_slot: dict[int, _Leg] = {}
        self._known: set[str] = set()     # legs existing once queued ops are applied
        self._ops: list[Callable[[], None]] = []
        self._room_sources: dict[str, AudioSource] = {}
        self._mix_sinks: dict[str, AudioSink] = {}
        self._streams: dict[tuple[Any, ...], _Stream] = {}
        self._tables: dict[str, Pcm] = {}
        self._pair_tables: dict[str, npt.NDArray[np.int32]] = {}
        self._tick_no = 0
        self._pending_events: list[RoomEvent] = []
        self._zeros = np.zeros(self.frame_samples, np.int16)
        self._need_marker: set[_Leg] = set()   # next packet carries the RTP marker bit
        self._stray: set[_Leg] = set()         # stream_key may differ from common_key
        self._keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}   # interned common keys
        self._added = 0
        # Per slot: decoder concealment state and, for bulk-decoded legs, the last two payloads
        # (replayed through the decoder on a loss, so its concealment has history).
        cap = self.mixer.capacity
        self._in_loss = np.zeros(cap, np.bool_)
        self._stale = np.zeros(cap, np.bool_)      # decoder missed payloads decoded in bulk
        self._hist = np.zeros((2, cap, self.frame_samples), np.uint8)
        self._hist_ok = np.zeros((2, cap), np.bool_)
        self._hist_new = np.zeros(cap, np.intp)    # row of _hist holding the newest payload
        # The plan (see module doc), rebuilt at tick start when _dirty.
        self._dirty = True
        self._lanes_ok = True      # False once a lane raised: this room stays on the per-leg path
        self._bulk: list[_Bulk] = []
        self._other: list[_Leg] = []
        self._other_pops: list[Callable[[], Any]] = []
        self._common: list[_Common] = []
        self._group_of: dict[_Leg, _Common] = {}
        self._nonplain: list[_Leg] = []
        self._sink_legs: list[_Leg] = []

    # -- control (queued, applied at the start of the next tick) -------------------------------
    def add_leg(self, leg_id: str, port: RtpPort, decoder_name: str, encoder_name: str, *,
                payload_type: int, encoder_opts: dict[str, Any] | None = None) -> None:
        if leg_id in self._known:
            raise ValueError(f"leg {leg_id!r} already in room {self.room_id!r}")
        codec = self._build_codec(decoder_name, encoder_name, encoder_opts)   # errors raise here
        self._known.add(leg_id)

        def op() -> None:
            leg = _Leg(leg_id, port, self.mixer.add(), self.frame_ms, self.rate)
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

    def set_isolated(self, leg_id: str, value: bool) -> None:
        self._set_flag(leg_id, "isolated", value)

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
                     leg.payload_type, self.mixer.is_contributor(leg.slot))
            for leg in self._legs.values()
        ]

    def __len__(self) -> int:
        return len(self._legs)

    def __contains__(self, leg_id: object) -> bool:
        return leg_id in self._legs

    # -- helpers for control -------------------------------------------------------------------
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

    def _sync(self, leg: _Leg) -> None:
        self.mixer.eligible[leg.slot] = leg.eligible
        self.mixer.set_gain(leg.slot, leg.input_gain_db)
        leg.out_gain = db_to_gain(leg.output_gain_db)
        path = (leg.fast_in, leg.plain, leg.common_key)
        leg.fast_in = leg.bytewise is not None and not leg.on_hold
        leg.plain = leg.source is None and leg.hears_mix and not leg.deaf
        sig = ("mix", -1, leg.out_gain)
        if self.share_encodes:
            key = (sig, leg.enc_key)
            # One object per distinct key: grouping legs then compares by identity.
            leg.common_key = self._keys.setdefault(key, key)
        else:
            leg.common_key = (sig, leg.enc_key, leg.leg_id)
        if (leg.fast_in, leg.plain, leg.common_key) != path:
            # Rebuilding the plan is O(legs): mute, listen-only and input gain never need it.
            self._stray.add(leg)
            self._dirty = True

    def _build_codec(self, dec_name: str, enc_name: str,
                     enc_opts: dict[str, Any] | None) -> tuple[Decoder, Encoder, dict[str, Any]]:
        opts = dict(enc_opts or {})
        opts.setdefault("frame_ms", self.frame_ms)
        decoder = make_decoder(dec_name, frame_ms=self.frame_ms)
        probe = make_encoder(enc_name, **opts)
        return decoder, probe, opts

    def _install_codec(self, leg: _Leg, codec: tuple[Decoder, Encoder, dict[str, Any]],
                       payload_type: int) -> None:
        decoder, probe, opts = codec
        leg.decoder = decoder
        leg.dec_name = decoder.name
        leg.dec_samples = decoder.sample_rate * self.frame_ms // 1000
        leg.in_resampler = (Resampler(decoder.sample_rate, self.rate)
                            if decoder.sample_rate != self.rate else None)
        leg.bytewise = None
        if decoder.name in _BYTEWISE and decoder.sample_rate == self.rate:
            if decoder.name not in self._tables:
                # The decoder's own mapping, so bulk decoding is byte-identical to decode().
                table = make_decoder(decoder.name).decode(bytes(range(256))).copy()
                self._tables[decoder.name] = table
                self._pair_tables[decoder.name] = _pair_table(table)
            leg.bytewise = decoder.name
        self._reset_slot(leg.slot)
        leg.enc_name = probe.name
        leg.enc_opts = opts
        leg.enc_rate = probe.sample_rate
        leg.enc_stateful = probe.stateful
        leg.ticks = probe.clock_rate * self.frame_ms // 1000
        leg.enc_key = (probe.name, probe.sample_rate, tuple(sorted(opts.items())))
        # Recorded for the listing; the RTP session writes the header (RtpSession.update_remote).
        leg.payload_type = payload_type

    def _reset_slot(self, slot: int) -> None:
        cap = self.mixer.capacity
        old = self._in_loss.shape[0]
        if cap > old:
            grow = cap - old
            self._in_loss = np.concatenate([self._in_loss, np.zeros(grow, np.bool_)])
            self._stale = np.concatenate([self._stale, np.zeros(grow, np.bool_)])
            self._hist = np.concatenate(
                [self._hist, np.zeros((2, grow, self.frame_samples), np.uint8)], axis=1)
            self._hist_ok = np.concatenate([self._hist_ok, np.zeros((2, grow), np.bool_)], axis=1)
            self._hist_new = np.concatenate([self._hist_new, np.zeros(grow, np.intp)])
        self._in_loss[slot] = False
        self._stale[slot] = False
        self._hist_ok[:, slot] = False
        self._hist_new[slot] = 0

    def _replan(self) -> None:
        self._dirty = False
        old_lanes: list[Any] = [group.lane for group in self._bulk] + [group.lane for group in self._common]
        for lane in old_lanes:
            if lane is not None:
                lane.close()       # the sessions take their state back
        legs = [leg for leg in self._legs.values() if not leg.failed]
        fast = [leg for leg in legs if leg.fast_in]
        self._other = [leg for leg in legs if not leg.fast_in]
        self._other_pops = [leg.pop for leg in self._other]
        plain = [leg for leg in legs if leg.plain]
        self._nonplain = [leg for leg in legs if not leg.plain]
        self._sink_legs = [leg for leg in legs if leg.sinks]
        # Bulk groups in slot order (their order is free): usually one run of slots, written
        # through a view instead of a scatter.  Bytewise codecs run at 8 kHz, so frames hold
        # whole sample pairs for the pair tables.
        fast.sort(key=_slot_of)
        lanes = self.frame_samples == _LANE_FRAME and self._lanes_ok
        self._bulk = [_Bulk(group, self._pair_tables[name], _lane(group, "rx_lane") if lanes else None)
                      for name, group in _group_by(fast, [leg.bytewise for leg in fast]).items()]
        self._common = [_Common(key, group, _lane(group, "tx_lane") if self._lanes_ok else None)
                        for key, group in _group_by(plain, [leg.common_key for leg in plain]).items()]
        self._group_of = {}
        for group in self._common:
            self._group_of.update(dict.fromkeys(group.legs, group))

    # -- the tick ------------------------------------------------------------------------------
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

    def _read_inputs(self, now: float) -> None:
        mixer = self.mixer
        inputs = mixer.inputs
        present = mixer.present
        present[:mixer.count] = False
        kinds: dict[type, int] = {}   # per tick: dispatch on the shape of the first result seen
        for group in self._bulk:
            if group.lane is not None:
                self._read_lane(group, now, kinds, inputs, present)
            else:
                self._read_bulk(group, kinds, inputs, present)
        if self._other:
            results = self._each(self._other_pops, self._other, "receive")
            # Classify by class in C-level passes: most of these are Empty (DTX listeners).
            classes = [r.__class__ for r in results]
            for cls in set(classes):
                if cls not in kinds:
                    kinds[cls] = _kind_of(results[classes.index(cls)])
            empty = {cls for cls, kind in kinds.items() if kind == _EMPTY}
            legs = self._other
            for i in [i for i, cls in enumerate(classes) if cls not in empty]:
                leg = legs[i]
                if not leg.on_hold:                      # held legs are drained, never decoded
                    result = results[i]
                    self._decode_one(leg, kinds[classes[i]], result, inputs, present)

    def _read_bulk(self, group: _Bulk, kinds: dict[type, int], inputs: npt.NDArray[np.int16],
                   present: npt.NDArray[np.bool_]) -> None:
        """Pop every leg of a bulk group; frames of the right length from legs not recovering
        from a loss are decoded together, the rest go through their own decoder."""
        samples = self.frame_samples
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
        self._decode_each(group.legs, bad, results, kinds, inputs, present)

    def _decode_rows(self, group: _Bulk, rows: npt.NDArray[np.intp] | None, codes: npt.NDArray[np.uint8],
                     inputs: npt.NDArray[np.int16], present: npt.NDArray[np.bool_]) -> None:
        """Decode payload rows of a bulk group through its pair table in one lookup: ``rows``
        are the group positions ``codes`` belong to (None: the whole group, in order)."""
        in32 = inputs.view(np.int32)
        pairs = codes.view(np.uint16)
        if rows is None and group.span is not None:
            np.take(group.pairs, pairs, out=in32[group.span], mode="clip")
            present[group.span] = True
            slots = group.idx
        else:
            slots = group.idx if rows is None else group.idx[rows]
            in32[slots] = np.take(group.pairs, pairs, mode="clip")
            present[slots] = True
        self._remember(slots, codes)

    def _decode_each(self, legs: list[_Leg], positions: Iterable[int], results: list[Any],
                     kinds: dict[type, int], inputs: npt.NDArray[np.int16],
                     present: npt.NDArray[np.bool_]) -> None:
        """The per-leg path for the items a bulk group could not decode together."""
        for i in positions:
            result = results[i]
            kind = kinds.get(result.__class__)
            if kind is None:
                kind = kinds[result.__class__] = _kind_of(result)
            if kind != _EMPTY:
                self._decode_one(legs[i], kind, result, inputs, present)

    def _read_lane(self, group: _Bulk, now: float, kinds: dict[type, int],
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
                results[i] = _Payload(payloads[i].tobytes())
        self._decode_each(group.legs, rest, results, kinds, inputs, present)

    def _remember(self, slots: npt.NDArray[np.intp], codes: npt.NDArray[np.uint8]) -> None:
        """Bulk-decoded payloads become each slot's newest history entry; the decoders missed them."""
        older = 1 - self._hist_new[slots]
        self._hist[older, slots] = codes
        self._hist_ok[older, slots] = True
        self._hist_new[slots] = older
        self._stale[slots] = True

    def _decode_one(self, leg: _Leg, kind: int, result: Any, inputs: npt.NDArray[np.int16],
                    present: npt.NDArray[np.bool_]) -> None:
        slot = leg.slot
        try:
            if self._stale[slot]:
                self._catch_up(leg)
            if kind == _FRAME:
                pcm = leg.decoder.decode(result.payload)
                self._in_loss[slot] = False
            else:
                pcm = leg.decoder.conceal(leg.dec_samples, result.next_payload)
                self._in_loss[slot] = True
            if leg.in_resampler is not None:
                pcm = leg.in_resampler.process(_fit(pcm, leg.dec_samples))
        except Exception:
            # A corrupt payload must cost this leg one frame, never the room's tick.
            return
        inputs[slot] = _fit(pcm, self.frame_samples)
        present[slot] = True

    def _catch_up(self, leg: _Leg) -> None:
        """Feed the leg's decoder the payloads it missed while they were decoded in bulk (the
        older first), so its concealment history is what it would have been; it then has
        them all, so the history is emptied (the next bulk payloads start it again)."""
        slot = leg.slot
        new = int(self._hist_new[slot])
        for row in (1 - new, new):
            if self._hist_ok[row, slot]:
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
            extra += _fit(pcm, self.frame_samples)
        return extra

    def _signal(self, sig: tuple[Any, ...], leg: _Leg | None, cache: dict[tuple[Any, ...], Pcm]) -> Pcm:
        pcm = cache.get(sig)
        if pcm is not None:
            return pcm
        kind = sig[0]
        mixer = self.mixer
        if kind == "mix":
            pcm = mixer.render(None if sig[1] < 0 else sig[1], sig[2])
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
        streams = self._streams
        tick_no = self._tick_no
        markers = self._need_marker
        by_slot = self._by_slot
        group_of = self._group_of
        # Contributors are routed to their own mix-minus; find their place in the common groups.
        talkers: list[_Leg] = []
        excluded: dict[_Common, set[int]] = {}
        for slot in contrib_slots:
            leg = by_slot[slot]
            if leg.plain:
                talkers.append(leg)
                group = self._group_of[leg]
                excluded.setdefault(group, set()).add(group.pos[slot])
        # Private sources first: a leg whose prompt ends joins its common stream this very tick,
        # and the first leg in room order to reach a new stream is the one that primes it.
        joiners: dict[tuple[Any, ...], _Leg] = {}
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

    # -- fault containment (containment.py): one leg's failure costs that leg only ----------------
    def _each(self, funcs: list[Callable[[], Any]], legs: list[_Leg], phase: str) -> list[Any]:
        results, failures = call_each(funcs)
        for i, exc in failures:
            self._fail(legs[i], phase, exc)
        return results

    def _packetize(self, outgoing: list[tuple[str, bytes]], ids: list[str], pks: list[Callable[..., bytes]],
                   legs: list[_Leg], payload: bytes, ticks: int) -> None:
        packets, failures = call_each(pks, payload, ticks, False)
        if failures:
            for i, exc in failures:
                self._fail(legs[i], "send", exc)
            outgoing.extend((i, pkt) for i, pkt in zip(ids, packets) if pkt is not FAILED)
        else:
            outgoing.extend(zip(ids, packets))

    def _packetize_one(self, outgoing: list[tuple[str, bytes]], leg: _Leg, pk: Callable[..., bytes],
                       payload: bytes, ticks: int, marker: bool) -> None:
        try:
            outgoing.append((leg.leg_id, pk(payload, ticks, marker)))
        except Exception as exc:
            self._fail(leg, "send", exc)

    def _fail(self, leg: _Leg, phase: str, exc: BaseException) -> None:
        """Take the leg out of the plan (from the next tick on; it is no longer mixed from now)
        and report it once, at the end of this tick."""
        if leg.failed:
            return
        leg.failed = True
        self.mixer.eligible[leg.slot] = False
        self._need_marker.discard(leg)
        self._dirty = True
        self._pending_events.append(LegFailed(leg.leg_id, phase, f"{type(exc).__name__}: {exc}"[:200]))

    def _lane_send(self, group: _Common, payload: bytes, ticks: int, cuts: set[int] | None) -> None:
        try:
            group.lane.send(payload, ticks, cuts)
        except Exception:
            self._drop_lanes()       # a lane is an optimisation: the per-leg path takes over

    def _drop_lanes(self) -> None:
        self._lanes_ok = False
        self._dirty = True
        groups: list[_Bulk | _Common] = [*self._bulk, *self._common]
        for group in groups:
            if group.lane is not None:
                group.lane.close()
                group.lane = None

    def _routes(self, talkers: list[_Leg]) -> Iterable[_Leg]:
        """Legs off the common path: every non-plain leg, then the plain contributors."""
        if not talkers:
            return self._nonplain
        return [*self._nonplain, *talkers]

    def _read_source(self, leg: _Leg, events: list[RoomEvent]) -> bool:
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
        leg.source_frame = _fit(frame, self.frame_samples)
        return False

    def _route(self, leg: _Leg, contrib: set[int],
               signals: dict[tuple[Any, ...], Pcm]) -> tuple[tuple[Any, ...], _Stream] | None:
        """Stream for a leg off the common path (talker, source, held, isolated, deaf); its
        private source, if any, was read this tick already. None: nothing to send."""
        # A deaf leg hears silence (and its own prompts), never nothing: phones and NAT
        # bindings time out on a stream that stops.
        hears = leg.hears_mix and not leg.deaf
        if leg.source is not None:
            sig: tuple[Any, ...] = (("srcmix" if hears and leg.source_mode == "mix" else "src"), leg.leg_id)
        elif hears:
            sig = ("mix", leg.slot if leg.slot in contrib else -1, leg.out_gain)
        else:
            sig = _SILENCE
        key = (sig, leg.enc_key) if self.share_encodes else (sig, leg.enc_key, leg.leg_id)
        stream = self._streams.get(key)
        if stream is None or stream.tick != self._tick_no:
            stream = self._produce(key, sig, leg, signals)
        return key, stream

    def _produce(self, key: tuple[Any, ...], sig: tuple[Any, ...], leg: _Leg,
                 signals: dict[tuple[Any, ...], Pcm]) -> _Stream:
        stream = self._streams.get(key)
        if stream is None:
            encoder = make_encoder(leg.enc_name, **leg.enc_opts)
            resampler = Resampler(self.rate, leg.enc_rate) if leg.enc_rate != self.rate else None
            stream = _Stream(encoder, resampler, leg.ticks)
            self._streams[key] = stream
            self._prime(stream, leg)
        pcm = self._signal(sig, leg, signals)
        stream.prev_in, stream.last_in = stream.last_in, pcm
        stream.tick = self._tick_no
        out = stream.resampler.process(pcm) if stream.resampler is not None else pcm
        stream.payload = stream.encoder.encode(out)
        return stream

    def _prime(self, stream: _Stream, leg: _Leg) -> None:
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

    def _write_sinks(self, sinks: dict[str, AudioSink], pcm: Pcm, leg: _Leg | None) -> None:
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
