"""Telnyx JSON shapes: ``{"data": ...}`` resources, list pages with ``meta``, command results and
``{"errors": [...]}`` bodies.

Ids: a conference's ``id`` is the id every API form uses; a participant's ``id``,
``call_control_id`` and ``call_leg_id`` are its participant id (the same ids the Telnyx-form
webhooks carry); ``connection_id`` is the account id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...control.model import Conference, ParticipantView, iso

# Our conference status -> Telnyx's: init (nobody has joined yet), in_progress, completed.
STATUS = {"created": "init", "active": "in_progress", "empty": "in_progress", "ended": "completed",
          "expired": "completed"}
# Our participant status -> Telnyx's joining | joined | left.
PARTICIPANT_STATUS = {"pending": "joining", "dialing": "joining", "connected": "joined", "held": "joined",
                      "disconnected": "left", "rejected": "left"}
ERROR_TITLES = {
    "10004": "Missing required parameter", "10005": "Resource not found", "10007": "Unexpected error",
    "10009": "Authentication failed", "10010": "Authorization failed", "10011": "Too many requests",
    "10015": "Bad Request", "90061": "Unsupported action",
}


def conference(conf: Conference, now: datetime) -> dict[str, Any]:
    status = conf.effective_status(now)
    end_reason = {"ended": "ended_via_api", "expired": "time_exceeded"}.get(status)
    return {
        "record_type": "conference",
        "id": conf.id,
        "name": conf.name,
        "created_at": iso(conf.created_at),
        "updated_at": iso(conf.updated_at or conf.created_at),
        "expires_at": iso(conf.expires_at),
        "status": STATUS[status],
        "end_reason": end_reason,
        "ended_by": None,
        "region": None,
        "connection_id": conf.account_id,
    }


def participant(conf: Conference, p: ParticipantView, whisper_to: list[str] | None = None) -> dict[str, Any]:
    created = p.created_at or p.joined_at
    updated = p.left_at or p.joined_at or created
    return {
        "record_type": "participant",
        "id": p.participant_id,
        "call_control_id": p.participant_id,
        "call_leg_id": p.participant_id,
        "conference": {"id": conf.id, "name": conf.name},
        "status": PARTICIPANT_STATUS.get(p.status, "left"),
        "muted": p.muted,
        "on_hold": p.on_hold,
        "end_conference_on_exit": False,
        "soft_end_conference_on_exit": False,
        "whisper_call_control_ids": whisper_to or [],
        "label": p.caller_id_name or None,
        "created_at": iso(created),
        "updated_at": iso(updated),
    }


def page(items: list[dict[str, Any]], number: int, size: int) -> dict[str, Any]:
    """``page[number]`` (from 1) of ``page[size]`` items, with Telnyx's ``meta``."""
    chunk = items[(number - 1) * size : number * size]
    return {
        "data": chunk,
        "meta": {"page_number": number, "page_size": size, "total_pages": max(1, -(-len(items) // size)),
                 "total_results": len(items)},
    }


def command_ok() -> dict[str, Any]:
    return {"data": {"result": "ok"}}


def error(code: str, detail: str, pointer: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"code": code, "title": ERROR_TITLES.get(code, "Error"), "detail": detail}
    if pointer is not None:
        item["source"] = {"pointer": pointer}
    return {"errors": [item]}


def dialled_call(participant_id: str) -> dict[str, Any]:
    """The call record ``POST /v2/calls`` answers with; its ids are the participant's."""
    return {"record_type": "call", "call_control_id": participant_id, "call_leg_id": participant_id,
            "call_session_id": participant_id, "is_alive": True, "call_duration": None}
