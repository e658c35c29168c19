"""JSON shapes of conferences and participants in the two API forms (one model, two views)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .model import Conference, ParticipantView, iso


@dataclass(frozen=True)
class Links:
    """Where callers and browsers reach the bridge; filled in by the HTTP adapter."""

    base_url: str  # e.g. http://192.0.2.10:8080 (no trailing slash)
    sip_host: str
    sip_port: int = 5060
    access_user: str = "conference"

    def access_uri(self) -> str:
        host = f"[{self.sip_host}]" if ":" in self.sip_host else self.sip_host
        return f"sip:{self.access_user}@{host}" + ("" if self.sip_port == 5060 else f":{self.sip_port}")


def _common(conf: Conference, links: Links, now: datetime, current: int) -> dict[str, object]:
    return {
        "id": conf.id,
        "name": conf.name,
        "status": conf.effective_status(now),
        "current_participants": current,
        "dial_in_code": conf.dial_in_code or None,
        "sip_uri": conf.sip_uri(links.sip_host, links.sip_port),
        "access_uri": links.access_uri(),
        "join_url": f"{links.base_url}/conferences/{conf.id}/join",
        "profile": conf.profile,
        "mute_on_entry": conf.mute_on_entry,
        "record": conf.record,
        "hold_music_id": conf.hold_music_id,
        "wait_for_moderator": conf.wait_for_moderator,
        "rate": conf.rate,
        "srtp": conf.srtp,
        "read_only": conf.read_only,
        "created_at": iso(conf.created_at),
        "updated_at": iso(conf.updated_at),
        "scheduled_for": iso(conf.scheduled_for),
        "duration_minutes": conf.duration_minutes,
        "expires_at": iso(conf.expires_at),
        "ended_at": iso(conf.ended_at),
    }


def flat_conference(conf: Conference, links: Links, now: datetime, current: int = 0) -> dict[str, object]:
    """The Audian flat form (``/v2/conferences``), with the Telnyx/FreeClimb settings alongside."""
    body = _common(conf, links, now, current)
    body.update(
        max_participants=conf.max_participants,
        require_pin=bool(conf.member_pins),
        pin=conf.member_pins[0] if conf.member_pins else None,
        moderator_pins=list(conf.moderator_pins),
        member_notification=conf.beep != "never",
        allow_recording_by_participant=conf.allow_recording_by_participant,
        beep_enabled=conf.beep,
        comfort_noise=conf.comfort_noise,
        start_conference_on_create=not conf.wait_for_moderator,
        hold_audio_url=conf.hold_music_url,
        waitUrl=conf.wait_url,
        statusCallbackUrl=conf.status_callback_url,
        webhook_url=conf.webhook_url,
        webhook_failover_url=conf.webhook_failover_url,
        client_state=conf.client_state,
    )
    return body


def account_conference(conf: Conference, links: Links, now: datetime, current: int = 0) -> dict[str, object]:
    """The account-scoped (Kazoo-style) form (``/v2/accounts/{id}/conferences``)."""
    body = _common(conf, links, now, current)
    body.update(
        max_members=conf.max_participants,
        member_pins=list(conf.member_pins),
        moderator_pins=list(conf.moderator_pins),
        play_entry_tone=conf.beep in ("always", "on_enter"),
        play_exit_tone=conf.beep in ("always", "on_exit"),
    )
    return body


def join_info(conf: Conference, links: Links, now: datetime) -> dict[str, object]:
    """What the public ``join_url`` shows: how to dial in, never the PINs."""
    return {
        "id": conf.id,
        "name": conf.name,
        "status": conf.effective_status(now),
        "sip_uri": conf.sip_uri(links.sip_host, links.sip_port),
        "access_uri": links.access_uri(),
        "dial_in_code": conf.dial_in_code or None,
        "require_pin": bool(conf.member_pins),
        "scheduled_for": iso(conf.scheduled_for),
        "expires_at": iso(conf.expires_at),
    }


def flat_participant(p: ParticipantView, conf_id: str, now: datetime) -> dict[str, object]:
    return {
        "id": p.participant_id,
        "conference_id": conf_id,
        "phone_number": p.caller_id_number,
        "name": p.caller_id_name,
        "role": p.role,
        "status": p.status,
        "muted": p.muted,
        "deaf": p.deaf,
        "talking": p.talking,
        "level_dbov": round(p.level_dbov, 1),
        "frames_fec": p.frames_fec,
        "frames_concealed": p.frames_concealed,
        "send_expected_loss": p.send_expected_loss,
        "duration": max(0, int(((p.left_at or now) - p.joined_at).total_seconds())) if p.joined_at else 0,
        "joined_at": iso(p.joined_at),
        "created_at": iso(p.created_at or p.joined_at),
        "left_at": iso(p.left_at),
        "leave_reason": p.leave_reason,
    }


def account_participant(p: ParticipantView) -> dict[str, object]:
    return {
        "participant_id": p.participant_id,
        "caller_id_number": p.caller_id_number,
        "caller_id_name": p.caller_id_name,
        "muted": p.muted,
        "deaf": p.deaf,
        "on_hold": p.on_hold,
        "role": p.role,
        "talking": p.talking,
        "level_dbov": round(p.level_dbov, 1),
        "join_time": iso(p.joined_at),
    }
