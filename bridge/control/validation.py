"""Turn a JSON request body (either API form) into canonical ``Conference`` changes.

Both API forms share one table of field names: the flat Audian form (``max_participants``,
``pin``/``require_pin``, ``member_notification``), the account-scoped form (``max_members``,
``member_pins``, ``play_entry_tone``...), Telnyx (``beep_enabled``, ``duration_minutes``,
``start_conference_on_create``, ``hold_audio_url``...) and FreeClimb (``alias``, ``playBeep``,
``waitUrl``, ``statusCallbackUrl``). Two names for the same setting in one body are refused as
``conflicting_fields`` rather than silently picking one.

Decisions where the seeds are vague:
- Unknown fields get ``400 unknown_field`` (a typo such as ``mute_on_entr`` must not be lost),
  except fields other APIs' clients send that mean nothing here (``call_control_id``,
  ``command_id``) and read-only response fields (``id``, ``status``...), which
  are ignored so that a GET-modify-POST round trip works.
- Booleans must be JSON booleans and integers JSON integers (``"true"``/``1``/``50.0`` are refused).
- ``scheduled_for`` must carry a time zone (``Z`` or ``+hh:mm``); a naive time is ambiguous.
- ``pin`` without ``require_pin`` implies ``require_pin: true``; ``pin`` with ``require_pin:
  false`` is a contradiction (400); ``require_pin: true`` needs a PIN.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Callable

from .errors import ControlError, bad_request
from .model import Beep

MAX_NAME = 255
MAX_ALIAS = 64
MAX_PARTICIPANTS = 1000
MAX_DURATION_MINUTES = 24 * 60
MAX_SCHEDULE_AHEAD = timedelta(days=365)
MAX_PINS = 20
MAX_URL = 2048
MAX_ID_TEXT = 255
PIN_RE = re.compile(r"^[0-9]{4,6}$")
PIN_MESSAGE = "PIN must be 4-6 digits"
RATES = (8000, 16000, 48000)
CODECS = ("opus", "G722", "PCMU", "PCMA")
PROFILES = ("default", "large", "webinar")
BEEPS: tuple[Beep, ...] = ("always", "never", "on_enter", "on_exit")
FREECLIMB_BEEPS: dict[str, Beep] = {
    "always": "always", "never": "never", "entryOnly": "on_enter", "exitOnly": "on_exit",
}

# Sent by other APIs' clients or echoed back from our own responses; accepted and ignored.
IGNORED_FIELDS = frozenset({
    "call_control_id", "command_id",
    "id", "status", "created_at", "updated_at", "expires_at", "ended_at", "join_url", "sip_uri",
    "access_uri", "dial_in_code", "current_participants", "account_id", "read_only", "source",
})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(field: str, value: object, max_len: int, *, min_len: int = 1) -> str:
    if not isinstance(value, str):
        raise bad_request(f"invalid_{field}", f"{field} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"invalid_{field}", f"{field} must be valid Unicode text") from None
    if _CONTROL.search(value):
        raise bad_request(f"invalid_{field}", f"{field} must not contain control characters")
    if len(value.strip()) < min_len:
        raise bad_request(f"invalid_{field}", f"{field} must not be empty")
    if len(value) > max_len:
        raise bad_request(f"invalid_{field}", f"{field} must be at most {max_len} characters")
    return value


def _bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"invalid_{field}", f"{field} must be a boolean (true or false)")
    return value


def _int(field: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"invalid_{field}", f"{field} must be an integer between {lo} and {hi}")
    if not lo <= value <= hi:
        raise bad_request(f"invalid_{field}", f"{field} must be an integer between {lo} and {hi}")
    return value


def _choice(field: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise bad_request(f"invalid_{field}", f"{field} must be one of: {', '.join(choices)}")
    return value


def _url(field: str, value: object) -> str | None:
    if value is None:
        return None
    text = _text(field, value, MAX_URL)
    if not re.match(r"^https?://[^\s/]+", text) or " " in text:
        raise bad_request(f"invalid_{field}", f"{field} must be an http:// or https:// URL")
    return text


MAX_CLIENT_STATE = 4096


def _client_state(value: object) -> str | None:
    """Telnyx ``client_state``: base64 text echoed in every webhook of the conference."""
    if value is None:
        return None
    text = _text("client_state", value, MAX_CLIENT_STATE)
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("invalid_client_state", "client_state must be valid base64") from None
    return text


def _pin(field: str, value: object) -> str:
    if not isinstance(value, str) or not PIN_RE.match(value):
        # The seed's exact body for the flat ``pin``; other PIN fields say which field.
        raise bad_request("invalid_pin", PIN_MESSAGE if field == "pin" else f"{PIN_MESSAGE} ({field})")
    return value


def _pins(field: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise bad_request("invalid_pin", f"{field} must be an array of PIN strings; {PIN_MESSAGE}")
    if len(value) > MAX_PINS:
        raise bad_request("invalid_pin", f"{field} may hold at most {MAX_PINS} PINs")
    pins = tuple(_pin(field, v) for v in value)
    return tuple(dict.fromkeys(pins))  # drop duplicates, keep order


def _scheduled_for(value: object, now: datetime) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise bad_request("invalid_scheduled_for", "scheduled_for must be an ISO 8601 date-time string")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad_request(
            "invalid_scheduled_for", "scheduled_for must be an ISO 8601 date-time such as 2030-02-15T14:00:00Z"
        ) from None
    if when.tzinfo is None:
        raise bad_request("invalid_scheduled_for", "scheduled_for must include a time zone (Z or +hh:mm)")
    when = when.astimezone(timezone.utc)
    if when <= now:
        raise bad_request("invalid_scheduled_for", "scheduled_for must be in the future")
    if when - now > MAX_SCHEDULE_AHEAD:
        raise bad_request("invalid_scheduled_for", "scheduled_for must be at most 365 days in advance")
    return when


def _optional_text(field: str, value: object, max_len: int) -> str | None:
    return None if value is None else _text(field, value, max_len)


def _codecs(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise bad_request("invalid_codecs", f"codecs must be a non-empty array of: {', '.join(CODECS)}")
    out = tuple(dict.fromkeys(_choice("codecs", v, CODECS) for v in value))
    return out


# Fields whose value maps one-to-one onto a Conference attribute: name -> (attribute, parser).
_Parser = Callable[[object, datetime], object]
SRTP_POLICIES = ("off", "optional", "required")
_SIMPLE: dict[str, tuple[str, _Parser]] = {
    "name": ("name", lambda v, now: _text("name", v, MAX_NAME)),
    "alias": ("name", lambda v, now: _text("alias", v, MAX_ALIAS)),
    "scheduled_for": ("scheduled_for", lambda v, now: _scheduled_for(v, now)),
    "duration_minutes": (
        "duration_minutes", lambda v, now: None if v is None else _int("duration_minutes", v, 1, MAX_DURATION_MINUTES)
    ),
    "max_participants": ("max_participants", lambda v, now: _int("max_participants", v, 1, MAX_PARTICIPANTS)),
    "max_members": ("max_participants", lambda v, now: _int("max_members", v, 1, MAX_PARTICIPANTS)),
    "member_pins": ("member_pins", lambda v, now: _pins("member_pins", v)),
    "moderator_pins": ("moderator_pins", lambda v, now: _pins("moderator_pins", v)),
    "profile": ("profile", lambda v, now: _choice("profile", v, PROFILES)),
    "record": ("record", lambda v, now: _bool("record", v)),
    "allow_recording_by_participant": (
        "allow_recording_by_participant", lambda v, now: _bool("allow_recording_by_participant", v)
    ),
    "comfort_noise": ("comfort_noise", lambda v, now: _bool("comfort_noise", v)),
    "mute_on_entry": ("mute_on_entry", lambda v, now: _bool("mute_on_entry", v)),
    "wait_for_moderator": ("wait_for_moderator", lambda v, now: _bool("wait_for_moderator", v)),
    "start_conference_on_create": (
        "wait_for_moderator", lambda v, now: not _bool("start_conference_on_create", v)
    ),
    "end_when_moderator_leaves": (
        "end_when_moderator_leaves", lambda v, now: _bool("end_when_moderator_leaves", v)
    ),
    "hold_music_id": ("hold_music_id", lambda v, now: _optional_text("hold_music_id", v, MAX_ID_TEXT)),
    "hold_media_name": ("hold_music_id", lambda v, now: _optional_text("hold_media_name", v, MAX_ID_TEXT)),
    "hold_audio_url": ("hold_music_url", lambda v, now: _url("hold_audio_url", v)),
    "hold_music_url": ("hold_music_url", lambda v, now: _url("hold_music_url", v)),
    "waitUrl": ("wait_url", lambda v, now: _url("waitUrl", v)),
    "statusCallbackUrl": ("status_callback_url", lambda v, now: _url("statusCallbackUrl", v)),
    "webhook_url": ("webhook_url", lambda v, now: _url("webhook_url", v)),
    "webhook_failover_url": ("webhook_failover_url", lambda v, now: _url("webhook_failover_url", v)),
    "client_state": ("client_state", lambda v, now: _client_state(v)),
    "rate": ("rate", lambda v, now: _int_choice("rate", v, RATES)),
    "codecs": ("codecs", lambda v, now: _codecs(v)),
    "max_talkers": ("max_talkers", lambda v, now: None if v is None else _int("max_talkers", v, 0, 1000)),
    "srtp": ("srtp", lambda v, now: None if v is None else _choice("srtp", v, SRTP_POLICIES)),
}

_BEEP_FIELDS = ("beep_enabled", "playBeep", "member_notification", "play_entry_tone", "play_exit_tone")
_PIN_FIELDS = ("pin", "require_pin")
KNOWN_FIELDS = frozenset(_SIMPLE) | frozenset(_BEEP_FIELDS) | frozenset(_PIN_FIELDS)


def _int_choice(field: str, value: object, choices: tuple[int, ...]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in choices:
        raise bad_request(f"invalid_{field}", f"{field} must be one of: {', '.join(map(str, choices))}")
    return value


def _beep(body: Mapping[str, object], current: Beep) -> Beep | None:
    """Combine the five ways of saying when to beep; None when the body says nothing about it."""
    given = [f for f in _BEEP_FIELDS if f in body]
    if not given:
        return None
    modes = [f for f in ("beep_enabled", "playBeep") if f in body]
    if modes and len(given) > 1:
        raise bad_request("conflicting_fields", f"{' and '.join(given)} all set the beep mode; send only one")
    if "beep_enabled" in body:
        return _choice("beep_enabled", body["beep_enabled"], BEEPS)  # type: ignore[return-value]
    if "playBeep" in body:
        return FREECLIMB_BEEPS[_choice("playBeep", body["playBeep"], tuple(FREECLIMB_BEEPS))]
    entry = current in ("always", "on_enter")
    leave = current in ("always", "on_exit")
    if "member_notification" in body:
        entry = leave = _bool("member_notification", body["member_notification"])
    if "play_entry_tone" in body:
        entry = _bool("play_entry_tone", body["play_entry_tone"])
    if "play_exit_tone" in body:
        leave = _bool("play_exit_tone", body["play_exit_tone"])
    return "always" if entry and leave else "on_enter" if entry else "on_exit" if leave else "never"


def parse_settings(
    body: Mapping[str, object],
    *,
    now: datetime,
    creating: bool,
    current_beep: Beep = "always",
    current_member_pins: tuple[str, ...] = (),
    name_required: bool = True,
) -> dict[str, object]:
    """Validate ``body`` and return the canonical attribute changes it asks for.

    ``name_required=False``: a create without a name (FreeClimb's optional ``alias``) is named "".
    Raises ``ControlError`` (400) naming the field and the reason on the first problem found.
    """
    for key in body:
        if key not in KNOWN_FIELDS and key not in IGNORED_FIELDS:
            raise bad_request("unknown_field", f"unknown field {key!r}")
    if "hold_media_name" in body and "hold_audio_url" in body:
        raise bad_request("conflicting_fields", "hold_media_name and hold_audio_url cannot be used together")
    changes: dict[str, object] = {}
    source: dict[str, str] = {}
    for key, (attr, parse) in _SIMPLE.items():
        if key not in body:
            continue
        if attr in source:
            raise bad_request("conflicting_fields", f"{source[attr]} and {key} set the same setting; send only one")
        source[attr] = key
        changes[attr] = parse(body[key], now)
    if creating and name_required and "name" not in changes:
        raise bad_request("missing_field", "name is required")
    beep = _beep(body, current_beep)
    if beep is not None:
        changes["beep"] = beep
    _apply_pin(body, changes, creating=creating, current_member_pins=current_member_pins)
    return changes


def _apply_pin(
    body: Mapping[str, object], changes: dict[str, object], *, creating: bool, current_member_pins: tuple[str, ...]
) -> None:
    """Map the flat form's ``pin`` + ``require_pin`` onto the member PIN list."""
    if not any(f in body for f in _PIN_FIELDS):
        return
    if "member_pins" in changes:
        raise bad_request("conflicting_fields", "pin/require_pin and member_pins set the same setting; send only one")
    pin = body.get("pin")
    pin = None if pin is None else _pin("pin", pin)
    require = _bool("require_pin", body["require_pin"]) if "require_pin" in body else None
    if require is False:
        if pin is not None:
            raise bad_request("conflicting_fields", "pin was given but require_pin is false")
        changes["member_pins"] = ()
    elif pin is not None:
        changes["member_pins"] = (pin,)
    elif require is True and (creating or not current_member_pins):
        raise bad_request("invalid_pin", f"pin is required when require_pin is true; {PIN_MESSAGE}")
    elif "pin" in body and require is None:
        changes["member_pins"] = ()  # "pin": null clears the PIN


def check_pins(member_pins: tuple[str, ...], moderator_pins: tuple[str, ...]) -> None:
    """A PIN must say which role it grants, so it cannot be in both lists."""
    both = set(member_pins) & set(moderator_pins)
    if both:
        raise ControlError(400, "invalid_pin", "a PIN cannot be both a member PIN and a moderator PIN")


MEDIA_ID_RE = re.compile(r"^media_[0-9a-f]{16}$")


def parse_media_name(value: object) -> str | None:
    """An upload's optional ``media_name`` (Telnyx): printable text that cannot pass for a media id."""
    if value is None:
        return None
    name = _text("media_name", value, MAX_ID_TEXT)
    if MEDIA_ID_RE.match(name):
        raise bad_request("invalid_media_name", "media_name must not look like a media id (media_<16 hex>)")
    return name


def parse_action(value: object) -> str:
    if not isinstance(value, str) or value not in ("mute", "unmute", "deaf", "undeaf", "kick"):
        raise bad_request("invalid_action", "action must be one of: mute, unmute, deaf, undeaf, kick")
    return value


def parse_dial_out(body: Mapping[str, object]) -> dict[str, object]:
    """Validate an add-participant (dial-out) body with the limits of the Audian seed."""
    allowed = {"phone_number", "name", "role", "muted", "send_pin_via_sms"}
    for key in body:
        if key not in allowed:
            raise bad_request("unknown_field", f"unknown field {key!r}")
    if "phone_number" not in body:
        raise bad_request("missing_field", "phone_number is required")
    phone = _text("phone_number", body["phone_number"], 20)
    if not re.fullmatch(r"\+?[0-9*#]{1,19}", phone):
        raise bad_request("invalid_phone_number", "phone_number must be digits with an optional leading +")
    out: dict[str, object] = {"phone_number": phone}
    if "name" in body:
        out["name"] = _text("name", body["name"], 100)
    if "role" in body:
        out["role"] = _choice("role", body["role"], ("presenter", "listener", "operator"))
    for flag in ("muted", "send_pin_via_sms"):
        if flag in body:
            out[flag] = _bool(flag, body[flag])
    return out
