"""FreeClimb JSON shapes (camelCase) of conferences, participants, lists and errors.

Ids are the bridge's own: ``conferenceId`` is the conference id every API form uses, ``callId``
a participant id. Dates are RFC 1123 in GMT (``Mon, 15 Jun 2009 20:45:30 GMT``). Fields the
bridge does not keep (``revision``, ``actionUrl``) are null.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from ...control.model import Conference, ParticipantView

PLAY_BEEP = {"always": "always", "never": "never", "on_enter": "entryOnly", "on_exit": "exitOnly"}
PAGE_SIZE = 100
IN_CONFERENCE = ("connected", "held")


def rfc1123(dt: datetime | None) -> str | None:
    return None if dt is None else format_datetime(dt.replace(microsecond=0), usegmt=True)


def conference_uri(account_id: str, conf_id: str) -> str:
    return f"/Accounts/{account_id}/Conferences/{conf_id}"


def starts_conference(conf: Conference, p: ParticipantView) -> bool:
    """FreeClimb's ``startConfOnEnter``: a moderator, or anyone when nobody waits for one."""
    return p.role == "moderator" or not conf.wait_for_moderator


def conference_status(conf: Conference, people: Sequence[ParticipantView], now: datetime) -> str:
    """empty | populated | inProgress | terminated, from the conference and who is in it."""
    if conf.effective_status(now) in ("ended", "expired"):
        return "terminated"
    present = [p for p in people if p.status in IN_CONFERENCE]
    if not present:
        return "empty"
    return "inProgress" if any(starts_conference(conf, p) for p in present) else "populated"


def conference(
    conf: Conference, account_id: str, people: Sequence[ParticipantView], now: datetime
) -> dict[str, Any]:
    uri = conference_uri(account_id, conf.id)
    return {
        "uri": uri,
        "dateCreated": rfc1123(conf.created_at),
        "dateUpdated": rfc1123(conf.updated_at or conf.created_at),
        "revision": None,
        "conferenceId": conf.id,
        "accountId": account_id,
        "alias": conf.name or None,
        "playBeep": PLAY_BEEP[conf.beep],
        "record": conf.record,
        "status": conference_status(conf, people, now),
        "waitUrl": conf.wait_url,
        "actionUrl": None,
        "statusCallbackUrl": conf.status_callback_url,
        "subresourceUris": {"participants": uri + "/Participants"},
    }


def participant(conf: Conference, account_id: str, p: ParticipantView) -> dict[str, Any]:
    return {
        "uri": f"{conference_uri(account_id, conf.id)}/Participants/{p.participant_id}",
        "dateCreated": rfc1123(p.joined_at or p.created_at),
        "dateUpdated": rfc1123(p.joined_at or p.created_at),
        "revision": None,
        "accountId": account_id,
        "conferenceId": conf.id,
        "callId": p.participant_id,
        "talk": not p.muted,
        "listen": not p.deaf,
        "dtmfPassThrough": False,
        "startConfOnEnter": starts_conference(conf, p),
    }


def page(items: list[dict[str, Any]], key: str, start: int, total: int, next_uri: str | None) -> dict[str, Any]:
    """FreeClimb's list envelope: ``total, start, end, page, numPages, pageSize, nextPageUri``."""
    return {
        "total": total,
        "start": start,
        "end": start + len(items) - 1 if items else start,
        "page": start // PAGE_SIZE,
        "numPages": max(1, -(-total // PAGE_SIZE)),
        "pageSize": PAGE_SIZE,
        "nextPageUri": next_uri,
        key: items,
    }


def error(status: int, code: str, message: str) -> dict[str, Any]:
    """FreeClimb's error body: ``code`` (the HTTP status), ``message``, ``url`` and ``details``."""
    return {"code": status, "message": message, "url": None, "details": {"error": code}}
