"""Request bodies in each vendor's form, built from domain events and the conference.

Telnyx: ``{"data": {"record_type": "event", "event_type", "id", "occurred_at", "payload"}}``.
Telnyx itself puts ``occurred_at`` at the ``data`` level for participant events and inside
``payload`` for the others; we put it at both levels for every event so a receiver written for
either place works. Payload ids: Telnyx's call ids (``call_control_id``, ``call_leg_id``,
``call_session_id``) are the participant id until call control (issue 12) issues its own;
``connection_id`` is the account id; conference-level events carry them as null. ``client_state``
is the conference's, echoed as given.

FreeClimb: a JSON body with ``requestType`` (``conferenceStatus`` or
``conferenceRecordingStatus``), ``accountId``, ``conferenceId``, ``status`` and, once a
recording exists, ``recordingUrl``, ``recordingId``, ``recordingDurationSec``. The call fields
of FreeClimb's standard request parameters (``callId``, ``from``, ``to``, ``callStatus``,
``direction``, ``queueId``) are sent as null: a status change is not about one call.

Bodies are serialised once, compactly, and stored: the bytes signed and sent on every retry are
the bytes persisted.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..control.events import (
    ConferenceCreated,
    ConferenceEnded,
    DomainEvent,
    FloorChanged,
    ParticipantJoined,
    ParticipantLeft,
    PlaybackEnded,
    PlaybackStarted,
)
from ..control.model import Conference

# Delivery ids derived from an event id (one event can yield several deliveries).
_ID_NAMESPACE = uuid.UUID("5b0e8f8e-2f4e-4d52-9a0b-7e1c3d6a9f10")

TELNYX_EVENT_TYPES = (
    "conference.created",
    "conference.participant.joined",
    "conference.participant.left",
    "conference.ended",
    "conference.floor.changed",
    "conference.playback.started",
    "conference.playback.ended",
    "conference.participant.playback.started",
    "conference.participant.playback.ended",
    "conference.recording.saved",
)
FREECLIMB_STATUSES = ("empty", "populated", "inProgress", "terminated")


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def telnyx_time(at: datetime) -> str:
    """ISO 8601 UTC with microseconds and ``Z``, as Telnyx writes ``occurred_at``."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def delivery_id(event_id: str, *parts: str) -> str:
    """A UUID that is the same every time for this event and destination form."""
    if not parts:
        try:
            return str(uuid.UUID(hex=event_id))
        except ValueError:
            pass
    return str(uuid.uuid5(_ID_NAMESPACE, "/".join((event_id, *parts))))


@dataclass(frozen=True)
class Recording:
    """What a saved recording's webhooks carry (``Router`` builds it from ``RecordingSaved``)."""

    recording_id: str
    started_at: datetime
    ended_at: datetime
    urls: dict[str, str]                 # format ("wav", "mp3") -> URL
    public_urls: dict[str, str] | None = None
    channels: str = "single"             # single | dual
    format: str = "wav"                  # wav | mp3

    @property
    def duration_s(self) -> int:
        """Rounded up to a whole second, as FreeClimb's recordingDurationSec."""
        return max(0, math.ceil((self.ended_at - self.started_at).total_seconds()))


def _common(conf: Conference, participant_id: str | None) -> dict[str, Any]:
    return {
        "call_control_id": participant_id,
        "call_leg_id": participant_id,
        "call_session_id": participant_id,
        "client_state": conf.client_state,
        "conference_id": conf.id,
        "connection_id": conf.account_id,
    }


def telnyx_body(event_type: str, webhook_id: str, at: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    occurred = telnyx_time(at)
    return {
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": webhook_id,
            "occurred_at": occurred,
            "payload": {**payload, "occurred_at": occurred},
        }
    }


def telnyx_event(event: DomainEvent, conf: Conference) -> tuple[str, dict[str, Any]] | None:
    """The Telnyx webhook for ``event`` as ``(event_type, body)``; None if Telnyx has no such webhook."""
    payload: dict[str, Any]
    if isinstance(event, ConferenceCreated):
        event_type, payload = "conference.created", _common(conf, None)
    elif isinstance(event, ConferenceEnded):
        event_type, payload = "conference.ended", {**_common(conf, None), "reason": event.reason}
    elif isinstance(event, ParticipantJoined):
        event_type, payload = "conference.participant.joined", _common(conf, event.participant_id)
    elif isinstance(event, ParticipantLeft):
        event_type, payload = "conference.participant.left", _common(conf, event.participant_id)
    elif isinstance(event, FloorChanged):
        if event.participant_id is None:
            return None  # Telnyx only reports a new speaker, never "nobody"
        event_type, payload = "conference.floor.changed", _common(conf, event.participant_id)
    elif isinstance(event, (PlaybackStarted, PlaybackEnded)):
        phase = "started" if isinstance(event, PlaybackStarted) else "ended"
        scope = "conference.participant.playback" if event.participant_id else "conference.playback"
        event_type = f"{scope}.{phase}"
        media_url = event.media if event.media.startswith(("http://", "https://")) else None
        payload = {
            **_common(conf, event.participant_id),
            "creator_call_session_id": None,
            "media_name": None if media_url else event.media or None,
            "media_url": media_url,
        }
    else:
        return None
    return event_type, telnyx_body(event_type, delivery_id(event.event_id), event.at, payload)


def telnyx_recording_saved(conf: Conference, recording: Recording, webhook_id: str, at: datetime) -> dict[str, Any]:
    """``conference.recording.saved`` (the recording issue calls this when a file is ready)."""
    payload = {
        **_common(conf, None),
        "channels": recording.channels,
        "format": recording.format,
        "recording_id": recording.recording_id,
        "recording_started_at": telnyx_time(recording.started_at),
        "recording_ended_at": telnyx_time(recording.ended_at),
        "recording_urls": dict(recording.urls),
        "public_recording_urls": dict(recording.public_urls or {}),
    }
    return telnyx_body("conference.recording.saved", webhook_id, at, payload)


def freeclimb_body(
    conf: Conference, status: str, *, recording: Recording | None = None,
    request_type: str = "conferenceStatus",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requestType": request_type,
        "accountId": conf.account_id,
        "conferenceId": conf.id,
        "callId": None,
        "from": None,
        "to": None,
        "callStatus": None,
        "direction": None,
        "queueId": None,
        "status": status,
    }
    if recording is not None:
        body["recordingUrl"] = (recording.urls.get(recording.format) or recording.urls.get("wav")
                                or next(iter(recording.urls.values()), None))
        body["recordingId"] = recording.recording_id
        body["recordingDurationSec"] = recording.duration_s
    return body
