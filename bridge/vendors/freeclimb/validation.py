"""FreeClimb request bodies and queries, checked and translated to the shared setting names.

What is refused (400) rather than accepted and ignored:
- unknown fields (FreeClimb's own fields the bridge does not implement included);
- ``dtmfPassThrough: true`` (the bridge keeps callers' DTMF for its keypad commands; it never
  passes digits to the other participants).

``waitUrl`` must be an http(s) URL of a WAV or MP3 file: it becomes the conference's hold
music. ``alias`` is the conference's name (optional here; at most 64 characters).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from ...control.errors import ControlError, bad_request
from ...control.model import Action

CREATE_FIELDS = ("alias", "playBeep", "record", "waitUrl", "statusCallbackUrl")
UPDATE_FIELDS = ("alias", "playBeep", "status")
PARTICIPANT_FIELDS = ("talk", "listen", "dtmfPassThrough")
LIST_FILTERS = ("status", "alias", "dateCreated", "dateUpdated", "cursor")
PARTICIPANT_FILTERS = ("talk", "listen", "dtmfPassThrough", "cursor")
STATUSES = ("empty", "populated", "inProgress", "terminated")
_URL = re.compile(r"^https?://[^\s/]+\S*$")


def _unknown(body: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise bad_request("unknown_field", f"unknown field {key!r}; accepted: {', '.join(allowed)}")


def _bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"invalid_{field}", f"{field} must be a boolean (true or false)")
    return value


def _url(field: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > 2048 or not _URL.match(value):
        raise bad_request(f"invalid_{field}", f"{field} must be an http:// or https:// URL")
    return value


def parse_create(body: Mapping[str, object]) -> dict[str, object]:
    """The create body as fields for ``ConferenceService.create`` (shared names)."""
    _unknown(body, CREATE_FIELDS)
    if "statusCallbackUrl" not in body or body["statusCallbackUrl"] is None:
        raise bad_request("missing_field", "statusCallbackUrl is required")
    out: dict[str, object] = {"statusCallbackUrl": _url("statusCallbackUrl", body["statusCallbackUrl"])}
    if body.get("alias") is not None:
        out["alias"] = body["alias"]
    if "playBeep" in body:
        out["playBeep"] = body["playBeep"]
    if "record" in body:
        out["record"] = _bool("record", body["record"])   # recorded from start to empty (README "Recording")
    if body.get("waitUrl") is not None:
        wait = _url("waitUrl", body["waitUrl"])
        out["waitUrl"] = wait
        out["hold_audio_url"] = wait   # played as the hold music (a WAV or MP3 file)
    return out


def parse_update(body: Mapping[str, object]) -> tuple[dict[str, object], str | None]:
    """``(settings, status)``: settings for ``ConferenceService.update``; status ``empty``,
    ``terminated`` or None."""
    _unknown(body, UPDATE_FIELDS)
    settings = {k: body[k] for k in ("alias", "playBeep") if k in body}
    status = body.get("status")
    if status is not None and status not in ("empty", "terminated"):
        raise bad_request("invalid_status", "status must be one of: empty, terminated")
    return settings, status  # type: ignore[return-value]


def parse_participant_update(body: Mapping[str, object]) -> list[Action]:
    """The live actions a participant update asks for, in order."""
    _unknown(body, PARTICIPANT_FIELDS)
    actions: list[Action] = []
    if "talk" in body:
        actions.append("unmute" if _bool("talk", body["talk"]) else "mute")
    if "listen" in body:
        actions.append("undeaf" if _bool("listen", body["listen"]) else "deaf")
    if "dtmfPassThrough" in body and _bool("dtmfPassThrough", body["dtmfPassThrough"]):
        raise bad_request("unsupported_dtmfPassThrough", "dtmfPassThrough: true is not supported: the bridge "
                          "keeps DTMF for its keypad commands and never passes it to other participants")
    return actions


def parse_bool_query(name: str, text: str | None) -> bool | None:
    if text is None:
        return None
    if text in ("true", "false"):
        return text == "true"
    raise bad_request(f"invalid_{name}", f"{name} must be true or false")


def parse_date_query(name: str, text: str | None) -> date | None:
    """``dateCreated``/``dateUpdated`` filters: a day, ``YYYY-MM-DD`` (UTC)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text) if len(text) == 10 else _raise()
    except ValueError:
        raise bad_request(f"invalid_{name}", f"{name} must be a date such as 2026-01-31") from None


def _raise() -> date:
    raise ValueError


def parse_cursor(text: str | None) -> int:
    if text is None:
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise bad_request("invalid_cursor", "cursor must come from a nextPageUri")
    return int(text)


def check_query(query: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    for key in query:
        if key not in allowed:
            raise bad_request("unknown_filter", f"unknown query parameter {key!r}; accepted: {', '.join(allowed)}")


def status_filter(text: str | None) -> str | None:
    if text is not None and text not in STATUSES:
        raise ControlError(400, "invalid_status", f"status must be one of: {', '.join(STATUSES)}")
    return text
