"""What a room's tick reports: events, the tick result, a leg's state for listings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TalkingStarted:
    leg_id: str
    level_dbov: float


@dataclass(frozen=True)
class TalkingStopped:
    leg_id: str
    level_dbov: float


@dataclass(frozen=True)
class DominantSpeakerChanged:
    leg_id: str | None


@dataclass(frozen=True)
class SourceFinished:
    source_id: str | None      # room-wide source id
    leg_id: str | None         # per-leg source: the leg it played to


@dataclass(frozen=True)
class LegFailed:
    """One leg's port, source or sink raised during a tick. The room has already taken the
    leg out of its plan (nobody hears it, it is sent nothing); its owner ends the call."""
    leg_id: str
    phase: str                 # "receive", "send", "source" or "sink"
    error: str


@dataclass(frozen=True)
class SinkFailed:
    """A recording sink raised on write (disk full, say): it was detached, the call goes on."""
    sink_id: str
    leg_id: str | None         # None: a mix sink
    error: str


RoomEvent = TalkingStarted | TalkingStopped | DominantSpeakerChanged | SourceFinished | LegFailed | SinkFailed


@dataclass
class TickResult:
    outgoing: list[tuple[str, bytes]]   # (leg_id, RTP datagram)
    events: list[RoomEvent]


@dataclass(frozen=True)
class LegState:
    leg_id: str
    muted: bool
    deaf: bool
    on_hold: bool
    listen_only: bool
    isolated: bool
    talking: bool
    level_dbov: float
    input_gain_db: float
    output_gain_db: float
    decoder: str
    encoder: str
    payload_type: int
    contributing: bool
    frames_fec: int = 0            # missing frames rebuilt from the next packet's in-band FEC
    frames_concealed: int = 0      # missing frames the decoder had to invent (PLC)
    send_expected_loss: int | None = None   # loss % its Opus encode plans FEC for (None: not Opus)
