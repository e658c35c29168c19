"""The room's plan: per-leg state, shared streams and the leg groups a tick runs over.

``Room`` (room.py) rebuilds these when membership or a leg's state changes; the tick
(room_ingress.py in, room_egress.py out) only walks them.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from bridge_codecs import Decoder, Encoder, Resampler

from bridge.media.opus_loss import LossBucket
from bridge.media.ports import AudioSink, AudioSource, RtpPort

Pcm = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]

ROOM_RATES = (8000, 16000, 48000)
# Decoders that map each payload byte to one sample: decoded for all legs in one numpy call.
BYTEWISE = ("PCMU", "PCMA")
LANE_MS = 20         # receive lanes model 20 ms packets (G.711: 160 bytes; Opus: RTP ticks 960 apart)

FRAME, MISSING, EMPTY = 0, 1, 2


def kind_of(result: Any) -> int:
    # Dispatch on shape, not class, so fakes and bridge.rtp.jitter results both work.
    if hasattr(result, "payload"):
        return FRAME
    if hasattr(result, "next_payload"):
        return MISSING
    return EMPTY


class LanePayload:
    """A frame a receive lane played, for the per-leg decode path (a ``Frame`` by shape)."""
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


def fit(pcm: Pcm, samples: int) -> Pcm:
    """Pad/truncate a frame whose length disagrees with the tick (odd ptime, bad packet)."""
    n = pcm.shape[0]
    if n == samples:
        return pcm
    if n > samples:
        return pcm[:samples]
    out = np.zeros(samples, np.int16)
    out[:n] = pcm
    return out


class RoomLeg:
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
        self.whispering = False       # a whisper supervisor: heard only by the legs it whispers to
        self.whisperers: list[RoomLeg] = []   # supervisors this leg hears on top of its mix
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
        self.loss: LossBucket | None = None   # Opus with packet_loss="auto": planned from RTCP
        self.talker_complexity: int | None = None   # Opus: complexity of the leg's private streams
        self.enc_rate = room_rate
        self.enc_stateful = False
        self.ticks = 0
        # Missing frames played (participant listing): rebuilt from in-band FEC, or concealed.
        self.frames_fec = 0
        self.frames_concealed = 0
        # Opus: frames its sender marks inactive are not decoded while it is out of the mix
        # (RoomIngress._sleeps); the last one skipped (opus_sleep.Dormant) is decoded first
        # when it wakes.
        self.opus = False
        self.vad_gated = False
        # Hot-loop caches, refreshed by Room._sync whenever flags, codec or source change.
        self.pop = port.pop_frame
        self.packetize = port.packetize
        self.fast_in = False          # bytewise codec and not held: bulk decode path
        self.opus_in = False          # Opus and not held: read through an Opus receive lane if any
        self.plain = True             # hears the mix, no source, not deaf: common-stream path
        self.common_key: tuple[Any, ...] = ()

    @property
    def eligible(self) -> bool:
        return not (self.muted or self.on_hold or self.listen_only or self.isolated or self.whispering
                    or self.failed)

    @property
    def hears_mix(self) -> bool:
        return not (self.on_hold or self.isolated)


class Stream:
    __slots__ = ("encoder", "resampler", "ticks", "tick", "payload", "last_in", "prev_in")

    def __init__(self, encoder: Encoder, resampler: Resampler | None, ticks: int) -> None:
        self.encoder = encoder
        self.resampler = resampler
        self.ticks = ticks
        self.tick = -1
        self.payload = b""
        self.last_in: Pcm | None = None
        self.prev_in: Pcm | None = None


def port_lane(legs: list[RoomLeg], kind: str) -> Any:
    """The ports' steady lane for this group (``rx_lane``/``tx_lane`` of the port class,
    e.g. the socket adapter's LegPort), or None: fakes and mixed port types have none."""
    cls = type(legs[0].port)
    factory = getattr(cls, kind, None)
    if factory is None or any(type(leg.port) is not cls for leg in legs):
        return None
    return factory([leg.port for leg in legs])


class BulkGroup:
    """Legs decoded together through one G.711 table (bytewise codec, not held).

    In a 16 or 48 kHz room (``g711_samples`` given) frames are decoded into ``stage`` (8 kHz,
    one row per leg, ``got`` flags the rows filled this tick) and then resampled together."""
    __slots__ = ("legs", "pops", "idx", "span", "pairs", "lane", "stage", "got")

    def __init__(self, legs: list[RoomLeg], pairs: npt.NDArray[np.int32], lane: Any = None,
                 g711_samples: int | None = None) -> None:
        self.legs = legs
        self.lane = lane      # RxLane: reads, checks and plays steady legs in numpy
        self.pops = [leg.pop for leg in legs]
        slots = [leg.slot for leg in legs]            # ascending (Room._replan sorts)
        self.idx = np.asarray(slots, np.intp)
        # Slots in one run (the usual case): write into a view, no scatter.
        self.span = slice(slots[0], slots[-1] + 1) if slots[-1] - slots[0] == len(slots) - 1 else None
        self.pairs = pairs
        self.stage: Pcm | None = None
        self.got = np.zeros(len(legs), np.bool_)
        if g711_samples is not None:
            self.stage = np.zeros((len(legs), g711_samples), np.int16)


class ReceiveLane(Protocol):
    """An Opus receive lane as the room uses it (bridge/rtp/lanes.py ``RxLane`` with the Opus
    shape): ``pop_all`` gives (payload rows, mask of rows the lane played, items for the rest),
    ``out_len`` the played rows' payload lengths."""
    out_len: npt.NDArray[np.int64]

    def pop_all(self, now: float) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_], list[Any]]: ...

    def close(self) -> None: ...


class OpusGroup:
    """Opus callers (not held) read through one receive lane, in slot order."""
    __slots__ = ("idx", "lane", "legs", "pops")

    def __init__(self, legs: list[RoomLeg], lane: ReceiveLane) -> None:
        self.legs = legs
        self.pops = [leg.pop for leg in legs]
        self.idx = np.asarray([leg.slot for leg in legs], np.intp)
        self.lane: ReceiveLane | None = lane


class CommonGroup:
    """Plain legs sharing one common-stream key, in room order."""
    __slots__ = ("key", "legs", "ids", "pks", "pos", "lane")

    def __init__(self, key: tuple[Any, ...], legs: list[RoomLeg], lane: Any = None) -> None:
        self.key = key
        self.legs = legs
        self.lane = lane      # TxLane: every header at once, one send call per leg
        self.ids = [leg.leg_id for leg in legs]
        self.pks = [leg.packetize for leg in legs]
        self.pos = dict(zip([leg.slot for leg in legs], range(len(legs))))   # slot -> index


SILENCE = ("silence",)


def slot_of(leg: RoomLeg) -> int:
    return leg.slot


def group_by(legs: list[RoomLeg], keys: list[Any]) -> dict[Any, list[RoomLeg]]:
    """Legs by key, first-seen key order, legs in order; one key (the usual case) costs one pass."""
    if not legs:
        return {}
    first = keys[0]
    if keys.count(first) == len(keys):
        return {first: legs}
    groups: dict[Any, list[RoomLeg]] = {}
    for leg, key in zip(legs, keys):
        groups.setdefault(key, []).append(leg)
    return groups


def pair_table(table: Pcm) -> npt.NDArray[np.int32]:
    """Decode table over byte *pairs*: a native uint16 view of the payload indexes it and the
    int32 result, viewed as int16, is the two decoded samples in order (half the lookups)."""
    pair_bytes = np.arange(65536, dtype=np.uint16).view(np.uint8).reshape(-1, 2)
    pairs = np.empty((65536, 2), np.int16)
    pairs[:, 0] = table[pair_bytes[:, 0]]
    pairs[:, 1] = table[pair_bytes[:, 1]]
    return pairs.view(np.int32).ravel()


