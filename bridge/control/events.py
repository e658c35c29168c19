"""Domain events: what happened in a conference, as typed, frozen records.

The call core and the conference service publish them; subscribers (the log, REST views,
the webhook outbox, recording bookkeeping, metrics) consume them. Each event is stamped
by the ``EventBus`` with a stable id, a per-conference sequence number and the wall-clock
time, so a consumer can order, de-duplicate and date it without asking anyone.

Publishing never calls a subscriber: it only appends to a queue. The adapter drains the
queue after the media tick (``EventBus.drain``), so no subscriber can stall the clock,
and one that raises is logged and counted, never propagated.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from bridge.control.model import EndReason

log = logging.getLogger("bridge.events")

__all__ = ["EndReason"]  # re-exported: the reasons a ConferenceEnded carries

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

LeaveReason = Literal[
    "hangup",            # the caller hung up (BYE or CANCEL from their side)
    "kicked",            # removed over the API or by a moderator's keypad
    "left_by_keypad",    # pressed the leave key
    "conference_ended",  # the conference ended under them
    "rtp_timeout",       # no media for rtp.inactivity_timeout_s
    "fault",             # their input broke something; only this call was ended
    "shutdown",          # the bridge is stopping
    "node_lost",         # cluster: the node mixing their room died (announced by a survivor)
]
ParticipantKind = Literal["sip_inbound", "sip_outbound", "webrtc", "remote"]


@dataclass(frozen=True)
class DomainEvent:
    """Fields every event carries; ``event_id``, ``seq`` and ``at`` are set by the bus."""

    conference_id: str
    event_id: str = ""
    seq: int = 0
    at: datetime = EPOCH

    @property
    def name(self) -> str:
        """The event's type as a dotted name, e.g. ``participant.joined``."""
        return _NAMES[type(self)]


@dataclass(frozen=True)
class ConferenceCreated(DomainEvent):
    conference_name: str = ""


@dataclass(frozen=True)
class ConferenceStarted(DomainEvent):
    """The first participant is in and nobody waits for a host any more."""


@dataclass(frozen=True)
class ConferenceEnded(DomainEvent):
    """The live conference closed (its room is gone); the definition may stay open."""

    reason: EndReason = "all_left"


@dataclass(frozen=True)
class ParticipantEvent(DomainEvent):
    participant_id: str = ""


@dataclass(frozen=True)
class ParticipantJoined(ParticipantEvent):
    kind: ParticipantKind = "sip_inbound"
    role: str = "member"
    caller_number: str = ""
    caller_name: str = ""
    muted: bool = False
    waiting: bool = False   # in the room but waiting for the host (hears hold music)


@dataclass(frozen=True)
class ParticipantDialing(ParticipantEvent):
    """The bridge is calling a participant (dial-out); joined or rejected follows."""

    phone_number: str = ""
    role: str = "member"


@dataclass(frozen=True)
class ParticipantRejected(ParticipantEvent):
    """A dialled participant never got in: busy, declined, no_answer, not_found, unreachable,
    trunk_auth_failed, canceled or failed, with the SIP status when there was one."""

    reason: str = "failed"
    sip_status: int | None = None


@dataclass(frozen=True)
class ParticipantLeft(ParticipantEvent):
    reason: LeaveReason = "hangup"
    duration_s: float = 0.0


@dataclass(frozen=True)
class ParticipantMuteChanged(ParticipantEvent):
    muted: bool = False


@dataclass(frozen=True)
class ParticipantDeafChanged(ParticipantEvent):
    deaf: bool = False


@dataclass(frozen=True)
class ParticipantHoldChanged(ParticipantEvent):
    on_hold: bool = False


@dataclass(frozen=True)
class TalkingStarted(ParticipantEvent):
    pass


@dataclass(frozen=True)
class TalkingStopped(ParticipantEvent):
    pass


@dataclass(frozen=True)
class FloorChanged(DomainEvent):
    """The dominant speaker changed (the room's hysteresis already applied)."""

    participant_id: str | None = None
    previous_id: str | None = None


@dataclass(frozen=True)
class PlaybackStarted(DomainEvent):
    participant_id: str | None = None   # None: played to the whole room
    media: str = ""


@dataclass(frozen=True)
class PlaybackEnded(DomainEvent):
    participant_id: str | None = None
    media: str = ""


@dataclass(frozen=True)
class KeyPressed(ParticipantEvent):
    digit: str = ""
    source: Literal["rfc4733", "info", "inband"] = "rfc4733"


@dataclass(frozen=True)
class RecordingEvent(DomainEvent):
    recording_id: str = ""


@dataclass(frozen=True)
class RecordingStarted(RecordingEvent):
    format: str = "wav"                 # the mix file: wav | mp3 | ogg
    channels: str = "single"            # single | dual (Telnyx: the creator vs everyone else)
    multitrack: bool = True             # also the one-file-per-recording multitrack artifact
    started_by: str | None = None       # a participant id (keypad), None: API or record=true


@dataclass(frozen=True)
class RecordingPaused(RecordingEvent):
    pass


@dataclass(frozen=True)
class RecordingResumed(RecordingEvent):
    pass


@dataclass(frozen=True)
class RecordingStopped(RecordingEvent):
    """No more audio is taken; the files are being finished (``RecordingSaved`` follows)."""

    reason: str = "api"                 # api | keypad | conference_ended | shutdown


@dataclass(frozen=True)
class RecordingSaved(RecordingEvent):
    """The files are complete, fsynced and renamed: they can be downloaded."""

    account_id: str | None = None
    format: str = "wav"
    channels: str = "single"
    started_at: datetime = EPOCH
    ended_at: datetime = EPOCH
    duration_s: float = 0.0
    recovered: bool = False             # finished at start-up from what a crash left behind
    files: tuple[str, ...] = ()         # the kinds there are: mix, dual, multitrack, sidecar


@dataclass(frozen=True)
class RecordingFailed(RecordingEvent):
    """Writing stopped (disk full, permission): what was written is kept; the call goes on."""

    error: str = ""


@dataclass(frozen=True)
class RecordingAudioDropped(RecordingEvent):
    """Frames the writer could not take in time (full queue): written as silence, never a tick."""

    frames: int = 0


@dataclass(frozen=True)
class PinRejected(ParticipantEvent):
    """A wrong PIN (never the digits): ``failures`` from this address for this conference so far,
    ``retry_after_s`` before its next guess counts (-1: locked out for ``lockout_s``)."""

    source: str = ""
    failures: int = 0
    retry_after_s: float = 0.0
    locked_out: bool = False


_NAMES: dict[type, str] = {
    ConferenceCreated: "conference.created",
    ConferenceStarted: "conference.started",
    ConferenceEnded: "conference.ended",
    ParticipantJoined: "participant.joined",
    ParticipantLeft: "participant.left",
    ParticipantDialing: "participant.dialing",
    ParticipantRejected: "participant.rejected",
    ParticipantMuteChanged: "participant.mute_changed",
    ParticipantDeafChanged: "participant.deaf_changed",
    ParticipantHoldChanged: "participant.hold_changed",
    TalkingStarted: "participant.talking_started",
    TalkingStopped: "participant.talking_stopped",
    FloorChanged: "conference.floor.changed",
    PlaybackStarted: "playback.started",
    PlaybackEnded: "playback.ended",
    KeyPressed: "participant.key_pressed",
    RecordingStarted: "recording.started",
    RecordingPaused: "recording.paused",
    RecordingResumed: "recording.resumed",
    RecordingStopped: "recording.stopped",
    RecordingSaved: "recording.saved",
    RecordingFailed: "recording.failed",
    RecordingAudioDropped: "recording.audio_dropped",
    PinRejected: "security.pin_rejected",
}

Subscriber = Callable[[DomainEvent], None]


class EventBus:
    """Stamps and queues events; hands them to subscribers when drained.

    ``limit`` bounds the queue between drains (a drain runs after every tick, so it only
    fills if the loop is stuck); past it the oldest events are dropped and counted, so a
    stuck consumer can never grow memory without bound.
    """

    def __init__(self, wall_clock: Callable[[], datetime], limit: int = 100_000) -> None:
        self._wall = wall_clock
        self._seq: dict[str, int] = {}
        self._queue: deque[DomainEvent] = deque()
        self._limit = limit
        self._subscribers: list[tuple[str, Subscriber]] = []
        self.dropped = 0
        self.subscriber_errors = 0
        self.published = 0

    def subscribe(self, name: str, subscriber: Subscriber) -> None:
        self._subscribers.append((name, subscriber))

    def publish(self, event: DomainEvent) -> DomainEvent:
        seq = self._seq.get(event.conference_id, 0) + 1
        self._seq[event.conference_id] = seq
        stamped = dataclasses.replace(event, event_id=uuid.uuid4().hex, seq=seq, at=self._wall())
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(stamped)
        self.published += 1
        return stamped

    def forget(self, conference_id: str) -> None:
        """A conference is deleted for good: its counter can go (a new one restarts at 1)."""
        self._seq.pop(conference_id, None)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def drain(self) -> int:
        """Deliver every queued event to every subscriber, in order; returns how many."""
        count = 0
        while self._queue:
            event = self._queue.popleft()
            count += 1
            for name, subscriber in self._subscribers:
                try:
                    subscriber(event)
                except Exception:   # one subscriber's bug must not starve the others
                    self.subscriber_errors += 1
                    log.exception("event subscriber %s failed on %s", name, event.name)
        return count


def log_subscriber(event: DomainEvent) -> None:
    """A debug log line per event (fields without the bus's stamps); the call layer writes
    its own human-readable info lines."""
    skip = {"conference_id", "event_id", "seq", "at"}
    fields = " ".join(f"{f.name}={getattr(event, f.name)}" for f in dataclasses.fields(event) if f.name not in skip)
    extra = {"conference_id": event.conference_id}
    if isinstance(event, ParticipantEvent):
        extra["participant_id"] = event.participant_id
    log.debug("%s #%d %s %s", event.conference_id, event.seq, event.name, fields, extra=extra)
