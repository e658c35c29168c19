"""Telnyx request bodies and queries: checked, with Telnyx's defaults and limits.

Every refusal is a ``TelnyxError`` (HTTP 422 unless said otherwise) naming the field as a JSON
pointer. Refused rather than accepted and ignored: unknown fields, ``region`` (the bridge runs in
one place), ``supervisor_role: whisper`` (needs per-listener routing in the mixer), unknown
``filter[...]`` keys.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ...control.errors import ControlError

MAX_PARTICIPANTS = (2, 800)
DEFAULT_MAX_PARTICIPANTS = 250
DEFAULT_BEEP = "never"
DEFAULT_DURATION_MINUTES = 4 * 60   # Telnyx: a conference ends after 4 hours at the latest
BEEPS = ("always", "never", "on_enter", "on_exit")
SUPERVISOR_ROLES = ("barge", "monitor", "none", "whisper")
MAX_DURATION_MINUTES = 24 * 60
PAGE_SIZE = (1, 250)
DEFAULT_PAGE_SIZE = 20
CREATE_FIELDS = ("call_control_id", "name", "beep_enabled", "client_state", "comfort_noise", "command_id",
                 "duration_minutes", "hold_audio_url", "hold_media_name", "max_participants", "region",
                 "start_conference_on_create")
_URL = re.compile(r"^https?://[^\s/]+\S*$")


class TelnyxError(ControlError):
    """A refused request in Telnyx's terms: ``telnyx_code`` (e.g. ``10015``) and the field's pointer."""

    def __init__(self, status: int, telnyx_code: str, detail: str, field: str | None = None) -> None:
        super().__init__(status, telnyx_code, detail)
        self.telnyx_code = telnyx_code
        self.pointer = f"/{field}" if field else None


def invalid(field: str, detail: str) -> TelnyxError:
    return TelnyxError(422, "10015", detail, field)


def missing(field: str) -> TelnyxError:
    return TelnyxError(422, "10004", f"{field} is required", field)


def _str(field: str, value: object, max_len: int = 255) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise invalid(field, f"{field} must be a non-empty string of at most {max_len} characters")
    return value


def _bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise invalid(field, f"{field} must be a boolean")
    return value


def _int(field: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid(field, f"{field} must be an integer between {lo} and {hi}")
    return value


def _url(field: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > 2000 or not _URL.match(value):
        raise invalid(field, f"{field} must be an http:// or https:// URL of at most 2000 characters")
    return value


def _unknown(body: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise invalid(key, f"unknown field {key!r}")


def _no_region(body: Mapping[str, object]) -> None:
    if body.get("region") is not None:
        raise invalid("region", "region is not supported: this bridge keeps its data in one place; leave it out")


def command_id(body: Mapping[str, object]) -> str | None:
    value = body.get("command_id")
    return None if value is None else _str("command_id", value)


def client_state(value: object) -> str:
    text = _str("client_state", value, 4096)
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("client_state", "client_state must be valid base64") from None
    return text


@dataclass(frozen=True)
class CreateRequest:
    call_control_id: str
    command_id: str | None
    settings: dict[str, object]   # shared field names, for ConferenceService.create


def parse_create(body: Mapping[str, object]) -> CreateRequest:
    """``POST /conferences``: Telnyx's fields with its defaults (beep never, max 250, started)."""
    _unknown(body, CREATE_FIELDS)
    _no_region(body)
    for field in ("call_control_id", "name"):
        if body.get(field) is None:
            raise missing(field)
    settings: dict[str, object] = {
        "name": _str("name", body["name"]),
        "beep_enabled": DEFAULT_BEEP,
        "max_participants": DEFAULT_MAX_PARTICIPANTS,
        "duration_minutes": DEFAULT_DURATION_MINUTES,
    }
    if body.get("beep_enabled") is not None:
        if body["beep_enabled"] not in BEEPS:
            raise invalid("beep_enabled", f"beep_enabled must be one of: {', '.join(BEEPS)}")
        settings["beep_enabled"] = body["beep_enabled"]
    if body.get("max_participants") is not None:
        settings["max_participants"] = _int("max_participants", body["max_participants"], *MAX_PARTICIPANTS)
    if body.get("duration_minutes") is not None:
        settings["duration_minutes"] = _int("duration_minutes", body["duration_minutes"], 1, MAX_DURATION_MINUTES)
    if body.get("comfort_noise") is not None:
        settings["comfort_noise"] = _bool("comfort_noise", body["comfort_noise"])
    if body.get("start_conference_on_create") is not None:
        settings["start_conference_on_create"] = _bool("start_conference_on_create",
                                                       body["start_conference_on_create"])
    if body.get("client_state") is not None:
        settings["client_state"] = client_state(body["client_state"])
    if body.get("hold_audio_url") is not None and body.get("hold_media_name") is not None:
        raise invalid("hold_media_name", "hold_audio_url and hold_media_name cannot be used together")
    if body.get("hold_audio_url") is not None:
        settings["hold_audio_url"] = _url("hold_audio_url", body["hold_audio_url"])
    if body.get("hold_media_name") is not None:
        settings["hold_media_name"] = _str("hold_media_name", body["hold_media_name"])
    return CreateRequest(_str("call_control_id", body["call_control_id"]), command_id(body), settings)


def parse_ids(body: Mapping[str, object], field: str, *, required: bool = False) -> list[str] | None:
    """A list of call_control_ids; None when absent (or empty, which Telnyx reads as everyone)."""
    value = body.get(field)
    if value is None or value == []:
        if required:
            raise missing(field)
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or len(value) > 1000:
        raise invalid(field, f"{field} must be an array of call_control_id strings")
    return list(dict.fromkeys(value))


def parse_mute(body: Mapping[str, object]) -> list[str] | None:
    """``mute``/``unmute``: ``call_control_ids`` (omitted or empty: everyone in the conference)."""
    _unknown(body, ("call_control_ids", "region", "command_id"))
    _no_region(body)
    return parse_ids(body, "call_control_ids")


def parse_hold(body: Mapping[str, object]) -> tuple[list[str] | None, str | None]:
    """``hold``: ``call_control_ids`` (omitted or empty: everyone) and ``audio_url`` or ``media_name``."""
    _unknown(body, ("call_control_ids", "audio_url", "media_name", "region", "command_id"))
    _no_region(body)
    if body.get("audio_url") is not None and body.get("media_name") is not None:
        raise invalid("media_name", "audio_url and media_name cannot be used together")
    music = None
    if body.get("audio_url") is not None:
        music = _url("audio_url", body["audio_url"])
    elif body.get("media_name") is not None:
        music = _str("media_name", body["media_name"])
    return parse_ids(body, "call_control_ids"), music


def parse_unhold(body: Mapping[str, object]) -> list[str]:
    """``unhold``: ``call_control_ids`` is required."""
    _unknown(body, ("call_control_ids", "region", "command_id"))
    _no_region(body)
    ids = parse_ids(body, "call_control_ids", required=True)
    assert ids is not None
    return ids


def parse_call_command(body: Mapping[str, object]) -> str | None:
    """``calls/{id}/actions/answer`` and ``hangup``: ``client_state`` and ``command_id`` only."""
    _unknown(body, ("client_state", "command_id"))
    return None if body.get("client_state") is None else client_state(body["client_state"])


@dataclass(frozen=True)
class JoinRequest:
    call_control_id: str
    role: str          # moderator when it starts the conference on entering
    muted: bool
    client_state: str | None
    whisper_to: list[str] | None = None   # supervisor_role whisper: who hears this leg


def _supervisor(body: Mapping[str, object]) -> tuple[str, list[str] | None]:
    """``supervisor_role`` and, for ``whisper``, the non-empty ``whisper_call_control_ids``."""
    role = body.get("supervisor_role") or "none"
    if role not in SUPERVISOR_ROLES:
        raise invalid("supervisor_role", f"supervisor_role must be one of: {', '.join(SUPERVISOR_ROLES)}")
    ids = parse_ids(body, "whisper_call_control_ids")
    if role == "whisper":
        if not ids:
            raise invalid("whisper_call_control_ids", "whisper needs the legs that hear the supervisor")
        return str(role), ids
    if ids:
        raise invalid("whisper_call_control_ids", "whisper_call_control_ids goes with supervisor_role whisper")
    return str(role), None


def parse_join(body: Mapping[str, object]) -> JoinRequest:
    """``join``: a call under call control into the conference."""
    _unknown(body, ("call_control_id", "command_id", "client_state", "mute", "start_conference_on_enter",
                    "supervisor_role", "whisper_call_control_ids", "region"))
    _no_region(body)
    if body.get("call_control_id") is None:
        raise missing("call_control_id")
    role, whisper_to = _supervisor(body)
    muted = _bool("mute", body["mute"]) if body.get("mute") is not None else False
    starts = body.get("start_conference_on_enter") is not None and _bool(
        "start_conference_on_enter", body["start_conference_on_enter"])
    state = None if body.get("client_state") is None else client_state(body["client_state"])
    return JoinRequest(_str("call_control_id", body["call_control_id"]), "moderator" if starts else "member",
                       muted or role == "monitor", state, whisper_to)


def parse_end(body: Mapping[str, object]) -> None:
    _unknown(body, ("command_id",))


@dataclass(frozen=True)
class UpdateRequest:
    call_control_id: str
    muted: bool   # monitor: heard by none; barge/none/whisper: speaks (whisper: to some only)
    whisper_to: list[str] | None = None


def parse_update(body: Mapping[str, object]) -> UpdateRequest:
    """``update``: the supervisor role of one participant."""
    _unknown(body, ("call_control_id", "supervisor_role", "command_id", "region", "whisper_call_control_ids"))
    _no_region(body)
    for field in ("call_control_id", "supervisor_role"):
        if body.get(field) is None:
            raise missing(field)
    role, whisper_to = _supervisor(body)
    return UpdateRequest(_str("call_control_id", body["call_control_id"]), role == "monitor", whisper_to)


@dataclass(frozen=True)
class PlayRequest:
    location: str          # audio_url, or the account's media_name
    is_url: bool
    loops: int | None      # None: "infinity"


def _whole_conference(body: Mapping[str, object]) -> None:
    if parse_ids(body, "call_control_ids") is not None:
        raise invalid("call_control_ids", "play and stop reach the whole conference on this bridge; "
                      "leave call_control_ids out")


def parse_play(body: Mapping[str, object]) -> PlayRequest:
    """``play``: ``audio_url`` or ``media_name`` into the conference, ``loop`` times (default 1)."""
    _unknown(body, ("audio_url", "media_name", "loop", "call_control_ids", "command_id", "region"))
    _no_region(body)
    _whole_conference(body)
    url, name = body.get("audio_url"), body.get("media_name")
    if (url is None) == (name is None):
        raise invalid("audio_url", "give exactly one of audio_url and media_name")
    loop = body.get("loop", 1)
    if loop == "infinity":
        loops = None
    else:
        loops = _int("loop", loop, 1, 100)
    if url is not None:
        return PlayRequest(_url("audio_url", url), True, loops)
    return PlayRequest(_str("media_name", name), False, loops)


def parse_stop(body: Mapping[str, object]) -> None:
    _unknown(body, ("call_control_ids", "command_id", "region"))
    _no_region(body)
    _whole_conference(body)


def parse_page(query: Mapping[str, str]) -> tuple[int, int]:
    """``page[number]`` (from 1) and ``page[size]`` (1-250, default 20)."""
    def number(name: str, default: int, lo: int, hi: int) -> int:
        text = query.get(name)
        if text is None:
            return default
        if not text.isascii() or not text.isdigit() or not lo <= int(text) <= hi:
            raise invalid(name, f"{name} must be an integer between {lo} and {hi}")
        return int(text)
    return number("page[number]", 1, 1, 1_000_000), number("page[size]", DEFAULT_PAGE_SIZE, *PAGE_SIZE)


def parse_filters(query: Mapping[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    """``filter[<key>]`` values; other query parameters than filters, pages and region are refused."""
    out: dict[str, str] = {}
    for key, value in query.items():
        if key in ("page[number]", "page[size]"):
            continue
        if key == "region":
            raise invalid("region", "region is not supported: this bridge keeps its data in one place")
        m = re.fullmatch(r"filter\[(\w+)\]", key)
        if m is None or m.group(1) not in allowed:
            raise invalid(key, f"unsupported query parameter {key!r}; filters: "
                          + ", ".join(f"filter[{a}]" for a in allowed))
        out[m.group(1)] = value
    return out


def bool_filter(name: str, text: str | None) -> bool | None:
    if text is None:
        return None
    if text not in ("true", "false"):
        raise invalid(f"filter[{name}]", f"filter[{name}] must be true or false")
    return text == "true"


def parse_recording_control(body: Mapping[str, object]) -> str | None:
    """``record_stop``/``record_pause``/``record_resume``: which recording (None: the current one)."""
    _unknown(body, ("command_id", "recording_id"))
    return None if body.get("recording_id") is None else _str("recording_id", body["recording_id"])
