"""The conference model shared by REST (both API forms), SIP routing and config.yaml rooms.

A ``Conference`` is immutable; the service replaces it with ``dataclasses.replace`` on every
change, so a reader (the SIP side on the event loop) always sees one consistent version.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Protocol, runtime_checkable

Status = Literal["created", "active", "empty", "ended", "expired"]
EndReason = Literal["all_left", "host_left", "time_exceeded", "ended_via_api"]
Profile = Literal["default", "large", "webinar"]
Beep = Literal["always", "never", "on_enter", "on_exit"]
Action = Literal["mute", "unmute", "deaf", "undeaf", "kick", "hold", "unhold"]  # hold: Telnyx API hold
ACTIONS: tuple[Action, ...] = ("mute", "unmute", "deaf", "undeaf", "kick")
OPEN_STATUSES: frozenset[str] = frozenset({"created", "active", "empty"})


def iso(dt: datetime | None) -> str | None:
    """RFC 3339 UTC with a ``Z`` suffix and whole seconds, as in the seed examples."""
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


@dataclass(frozen=True)
class Conference:
    """Every setting of one conference, whichever API (or config.yaml) defined it."""

    id: str
    account_id: str | None
    name: str
    dial_in_code: str
    created_at: datetime
    status: Status = "created"
    source: Literal["api", "config"] = "api"
    updated_at: datetime | None = None
    scheduled_for: datetime | None = None
    duration_minutes: int | None = None
    expires_at: datetime | None = None  # None: never (config rooms)
    ended_at: datetime | None = None
    max_participants: int = 100
    member_pins: tuple[str, ...] = ()
    moderator_pins: tuple[str, ...] = ()
    profile: Profile = "default"
    mute_on_entry: bool = False
    beep: Beep = "always"
    wait_for_moderator: bool = False
    end_when_moderator_leaves: bool = False
    hold_music_id: str | None = None
    hold_music_url: str | None = None
    # Absolute path of the uploaded media file that hold_music_id names (resolved by the service
    # at create/update time, so the media side needs no lookup); None when it names no upload.
    hold_music_path: str | None = None
    record: bool = False
    allow_recording_by_participant: bool = False
    comfort_noise: bool = True
    rate: int = 16000
    codecs: tuple[str, ...] = ()
    max_talkers: int | None = None
    srtp: str | None = None     # off | optional | required for calls in; None: sip.srtp
    wait_url: str | None = None
    status_callback_url: str | None = None
    # Telnyx: where this conference's webhooks go instead of the account's webhooks.accounts URL,
    # the URL tried when that one fails, and the opaque base64 state echoed in every webhook.
    webhook_url: str | None = None
    webhook_failover_url: str | None = None
    client_state: str | None = None

    @property
    def read_only(self) -> bool:
        """Rooms from config.yaml are defined by the file, not by the API."""
        return self.source == "config"

    @property
    def require_pin(self) -> bool:
        return bool(self.member_pins or self.moderator_pins)

    def effective_status(self, now: datetime) -> Status:
        """The status with ``expires_at`` applied even before the periodic sweep has run."""
        if self.status in OPEN_STATUSES and self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return self.status

    def joinable(self, now: datetime) -> bool:
        return self.effective_status(now) in OPEN_STATUSES

    def pin_role(self, pin: str) -> Literal["moderator", "member"] | None:
        """Which role a PIN typed by a caller grants (None: wrong PIN)."""
        if pin in self.moderator_pins:
            return "moderator"
        if pin in self.member_pins:
            return "member"
        return None

    def sip_uri(self, host: str, port: int = 5060) -> str:
        """The SIP URI a caller dials to reach this conference directly."""
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # IPv6 literal
        hostport = host if port == 5060 else f"{host}:{port}"
        return f"sip:{self.id}@{hostport}"

    # -- persistence: a JSON-ready dict, tolerant of fields added or removed later --

    def to_record(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.astimezone(timezone.utc).isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_record(cls, record: dict[str, object]) -> "Conference":
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, object] = {}
        for key, value in record.items():
            if key not in known:
                continue  # written by a newer version; ignore rather than refuse to start
            if key in _DATETIME_FIELDS and isinstance(value, str):
                value = parse_iso(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)  # type: ignore[arg-type]


_DATETIME_FIELDS = frozenset({"created_at", "updated_at", "scheduled_for", "expires_at", "ended_at"})


@dataclass(frozen=True)
class ParticipantView:
    """One live caller as the media side reports it."""

    participant_id: str
    caller_id_number: str
    caller_id_name: str
    muted: bool
    deaf: bool
    on_hold: bool
    role: str
    joined_at: datetime | None           # None: not in yet (a dialled participant still ringing)
    talking: bool = False
    level_dbov: float = -127.0
    status: str = "connected"    # pending | dialing | connected | held | disconnected | rejected
    kind: str = "sip_inbound"    # sip_inbound | sip_outbound | webrtc | remote
    left_at: datetime | None = None
    leave_reason: str | None = None
    created_at: datetime | None = None
    # Its missing inbound frames while connected: rebuilt from in-band FEC (Opus) / concealed.
    frames_fec: int = 0
    frames_concealed: int = 0
    # The loss % the bridge's Opus encode for it plans in-band FEC for (None: not an Opus listener).
    send_expected_loss: int | None = None


class LiveRooms(Protocol):
    """What the control plane needs from the live (media/SIP) side; the app implements it.

    Every method must be cheap and non-blocking: it is called from HTTP handlers on the event loop.
    ``act`` queues the change so that it takes effect at the start of the next 20 ms tick.
    """

    def participants(self, conf_id: str) -> list[ParticipantView]: ...

    def act(self, conf_id: str, participant_id: str, action: Action) -> bool: ...

    def end_conference(self, conf_id: str, reason: EndReason = "ended_via_api") -> None:
        """Everyone hears the closing prompt, then gets a BYE."""

    def hold(self, conf_id: str, participant_id: str, on_hold: bool, music: str | None = None) -> bool:
        """API hold: the participant hears ``music`` (a file path or http(s) URL; None: the
        conference's hold music) and nobody hears them; ``on_hold=False`` brings them back."""

    def conference_changed(self, conf: Conference) -> None:
        """Settings changed over the API: a live room applies them from its next tick."""

    def dial_out(self, conf: Conference, number: str, name: str, role: str, muted: bool,
                 sms_text: str | None = None) -> ParticipantView:
        """Call ``number`` into ``conf`` (and text it ``sms_text``); raises ControlError when it
        cannot even be tried."""


@dataclass(frozen=True)
class Media:
    """One uploaded audio file (hold music): metadata; the bytes live in ``<data_dir>/media/<filename>``."""

    id: str
    account_id: str
    media_name: str | None
    content_type: str
    size: int
    duration_s: float
    created_at: datetime
    filename: str  # ``<id><ext>``, relative to the media directory

    def to_record(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["created_at"] = self.created_at.astimezone(timezone.utc).isoformat()
        return out

    @classmethod
    def from_record(cls, record: dict[str, object]) -> "Media":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in record.items() if k in known}
        kwargs["created_at"] = parse_iso(str(record["created_at"]))
        return cls(**kwargs)  # type: ignore[arg-type]


@runtime_checkable
class MediaRepository(Protocol):
    """Persistence of media metadata (``ConferenceStore`` implements it on the same database).

    ``put_media``/``delete_media`` only queue the write, like ``ConferenceRepository.put``.
    """

    def load_media(self) -> list[Media]: ...

    def put_media(self, media: Media) -> None: ...

    def delete_media(self, media_id: str) -> None: ...


class ConferenceRepository(Protocol):
    """Persistence used by the service (``bridge.adapters.storage.ConferenceStore``).

    ``put`` must not block on disk: the SQLite store queues the write to its worker thread.
    """

    def load_all(self) -> list[Conference]: ...

    def put(self, conf: Conference) -> None: ...

