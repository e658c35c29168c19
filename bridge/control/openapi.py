"""The OpenAPI 3 description of the REST API, built from the same limits the validator uses."""

from __future__ import annotations

import copy
from typing import Any

from .validation import (
    CODECS,
    MAX_DURATION_MINUTES,
    MAX_ID_TEXT,
    MAX_NAME,
    MAX_PARTICIPANTS,
    MAX_PINS,
    MAX_URL,
    PROFILES,
    RATES,
)

_PIN = {"type": "string", "pattern": "^[0-9]{4,6}$", "example": "1234"}
_URL = {"type": ["string", "null"], "maxLength": MAX_URL, "format": "uri", "example": "https://example.com/a.wav"}
_TS = {"type": ["string", "null"], "format": "date-time"}
# Printable text with at least one non-space character (the validator refuses control characters).
_NAME_PATTERN = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"

# Settings both forms accept (the validator accepts every name in either form).
_SETTINGS: dict[str, Any] = {
    "scheduled_for": {**_TS, "description": "Start time; in the future, at most 365 days ahead; needs a time zone."},
    "duration_minutes": {
        "type": ["integer", "null"], "minimum": 1, "maximum": MAX_DURATION_MINUTES,
        "description": "Telnyx: lifetime in minutes; expires_at = (scheduled_for or created_at) + this (default 24 h).",
    },
    "profile": {"type": "string", "enum": list(PROFILES)},
    "mute_on_entry": {"type": "boolean", "description": "Honoured: callers join muted."},
    "record": {"type": "boolean", "description": "Record the conference from the moment it starts (README \"Recording\")."},
    "hold_music_id": {
        "type": ["string", "null"], "minLength": 1, "maxLength": MAX_ID_TEXT,
        "description": "Hold music: the id or media_name of media uploaded to /v2/media by this account "
                       "(else 400 invalid_hold_music_id); null for the built-in music.",
    },
    "hold_media_name": {
        "type": ["string", "null"], "minLength": 1, "maxLength": MAX_ID_TEXT,
        "description": "Telnyx: same setting as hold_music_id (media_name or id of uploaded media).",
    },
    "hold_audio_url": {**_URL, "description": "Telnyx: stored as the hold music URL."},
    "wait_for_moderator": {"type": "boolean"},
    "end_when_moderator_leaves": {"type": "boolean"},
    "rate": {"type": "integer", "enum": list(RATES), "description": "Mixing rate (default: media.default_rate)."},
    "codecs": {
        "type": "array", "minItems": 1, "items": {"type": "string", "enum": list(CODECS)},
        "description": "Codecs offered to callers, in preference order (default: media.codecs).",
    },
    "max_talkers": {"type": ["integer", "null"], "minimum": 0, "maximum": 1000},
    "srtp": {"type": ["string", "null"], "enum": ["off", "optional", "required", None],
             "description": "SRTP policy for SIP calls in (default: sip.srtp); see README Security."},
}

_FLAT_IN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": _NAME_PATTERN,
                 "example": "Weekly Team Sync"},
        "max_participants": {"type": "integer", "minimum": 1, "maximum": MAX_PARTICIPANTS, "default": 100},
        "require_pin": {"type": "boolean", "default": False},
        "pin": {**_PIN, "description": "4-6 digit PIN; implies require_pin unless require_pin is false (then 400)."},
        "allow_recording_by_participant": {"type": "boolean", "default": False},
        "member_notification": {"type": "boolean", "default": True, "description": "Join/leave tones."},
        "beep_enabled": {"type": "string", "enum": ["always", "never", "on_enter", "on_exit"]},
        "comfort_noise": {"type": "boolean", "default": True, "description": "Telnyx: quiet background noise (-65 dBov) under the mix."},
        "start_conference_on_create": {
            "type": "boolean", "default": True,
            "description": "Telnyx; false = callers wait on hold until a moderator joins.",
        },
        "playBeep": {"type": "string", "enum": ["always", "never", "entryOnly", "exitOnly"]},
        "waitUrl": {**_URL, "description": "FreeClimb; stored."},
        "statusCallbackUrl": {
            **_URL, "description": "FreeClimb: conferenceStatus callbacks (empty, populated, inProgress, terminated) "
                                   "are POSTed here, signed with FreeClimb-Signature. Private and link-local "
                                   "addresses are refused (400 forbidden_statusCallbackUrl).",
        },
        "webhook_url": {
            **_URL, "description": "Telnyx: conference.* webhooks go here instead of the account's default URL.",
        },
        "webhook_failover_url": {**_URL, "description": "Telnyx: tried when webhook_url (or the account URL) fails."},
        "client_state": {
            "type": ["string", "null"], "maxLength": 4096, "description": "Telnyx: base64, echoed in every webhook.",
        },
        **_SETTINGS,
    },
}

_ACCT_IN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": _NAME_PATTERN,
                 "example": "Sales Meeting"},
        "member_pins": {"type": "array", "maxItems": MAX_PINS, "items": _PIN},
        "moderator_pins": {"type": "array", "maxItems": MAX_PINS, "items": _PIN},
        "max_members": {"type": "integer", "minimum": 1, "maximum": MAX_PARTICIPANTS, "default": 100},
        "play_entry_tone": {"type": "boolean", "default": True},
        "play_exit_tone": {"type": "boolean", "default": True},
        **_SETTINGS,
    },
}

_COMMON_OUT: dict[str, Any] = {
    "id": {"type": "string", "example": "conf_3f9a0c1d2b4e5f60"},
    "name": {"type": "string"},
    "status": {"type": "string", "enum": ["created", "active", "empty", "ended", "expired"]},
    "current_participants": {"type": "integer"},
    "dial_in_code": {"type": ["string", "null"], "example": "48213977"},
    "sip_uri": {"type": "string", "example": "sip:conf_3f9a0c1d2b4e5f60@192.0.2.10"},
    "access_uri": {"type": "string", "example": "sip:conference@192.0.2.10"},
    "join_url": {"type": "string"},
    "read_only": {"type": "boolean", "description": "true for rooms defined in config.yaml"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": _TS,
    "scheduled_for": _TS,
    "expires_at": _TS,
    "ended_at": _TS,
}

_FLAT_OUT = {"type": "object", "properties": {**_COMMON_OUT, **copy.deepcopy(_FLAT_IN["properties"])}}
_ACCT_OUT = {"type": "object", "properties": {**_COMMON_OUT, **copy.deepcopy(_ACCT_IN["properties"])}}

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string", "example": "invalid_pin"}, "message": {"type": "string"}},
}

_MEDIA = {
    "type": "object",
    "required": ["id", "media_name", "content_type", "size", "duration_s", "created_at"],
    "properties": {
        "id": {"type": "string", "pattern": "^media_[0-9a-f]{16}$", "example": "media_3f9a0c1d2b4e5f60"},
        "media_name": {"type": ["string", "null"], "example": "lobby music"},
        "content_type": {"type": "string", "enum": ["audio/wav", "audio/mpeg", "audio/ogg"]},
        "size": {"type": "integer", "description": "Bytes stored"},
        "duration_s": {"type": "number"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_MEDIA_UPLOAD = {
    "required": True,
    "description": (
        "One audio file (WAV, MP3 or Ogg; the format is recognised from the content) of at most 10 MiB: "
        "a multipart/form-data 'file' part with an optional 'media_name' field, or the file itself as the "
        "body (audio/wav, audio/x-wav, audio/mpeg, audio/ogg or application/octet-stream) with an optional "
        "?media_name=. Anything PyAV cannot decode as audio is refused with 400 invalid_media."
    ),
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object", "required": ["file"], "additionalProperties": False,
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "media_name": {"type": "string", "minLength": 1, "maxLength": MAX_ID_TEXT},
                },
            },
        },
        "application/octet-stream": _BINARY,
        "audio/wav": _BINARY,
        "audio/mpeg": _BINARY,
        "audio/ogg": _BINARY,
    },
}

_FLAT_PARTICIPANT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "conference_id": {"type": "string"}, "phone_number": {"type": "string"},
        "name": {"type": "string"}, "role": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "dialing", "connected", "held", "disconnected", "rejected"]},
        "muted": {"type": "boolean"}, "deaf": {"type": "boolean"}, "talking": {"type": "boolean"},
        "level_dbov": {"type": "number"}, "frames_fec": {"type": "integer"},
        "frames_concealed": {"type": "integer"}, "send_expected_loss": {"type": ["integer", "null"]},
        "duration": {"type": "integer"}, "joined_at": _TS,
        "left_at": _TS, "leave_reason": {"type": ["string", "null"]}, "created_at": _TS,
    },
}
_ACCT_PARTICIPANT = {
    "type": "object",
    "properties": {
        "participant_id": {"type": "string"}, "caller_id_number": {"type": "string"},
        "caller_id_name": {"type": "string"}, "muted": {"type": "boolean"}, "deaf": {"type": "boolean"},
        "on_hold": {"type": "boolean"}, "role": {"type": "string"}, "talking": {"type": "boolean"},
        "level_dbov": {"type": "number"}, "join_time": _TS,
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid body, field or query parameter", 401: "Missing or invalid token",
        404: "Not found (or another account's)", 409: "Conflict (read-only room, ended, limit, dial-out)",
        413: "Body larger than 64 KiB (media uploads: 10 MiB)",
        415: "Upload is neither multipart/form-data nor an accepted audio content type",
        429: "Too many dial-out adds (10 per second per account)",
        503: "Storage failed, or the dial-out trunk is busy or out of RTP ports",
    }
    return {str(c): _json(_ref("Error"), text[c]) for c in codes}


def _envelope(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data", "request_id", "status"],
        "properties": {"data": schema, "request_id": {"type": "string"}, "status": {"type": "string"}},
    }


def _body(schema: dict[str, Any], wrapped: bool = False) -> dict[str, Any]:
    if wrapped:
        schema = {"type": "object", "required": ["data"], "properties": {"data": schema}}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_CONF = {"name": "conference_id", "in": "path", "required": True, "schema": {"type": "string"},
         "example": "conf_demo"}
_ACCT = {"name": "account_id", "in": "path", "required": True, "schema": {"type": "string"},
         "example": "acct_demo"}
_MEDIA_ID = {"name": "media_id", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The media id, or its media_name", "example": "media_3f9a0c1d2b4e5f60"}
_PART = {"name": "participant_id", "in": "path", "required": True, "schema": {"type": "string"},
         "example": "part_1"}


def _op(summary: str, responses: dict[str, Any], *, params: list[Any] | None = None,
        body: dict[str, Any] | None = None, auth: bool = True, description: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if not auth:
        op["security"] = []
    return op


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def openapi_document() -> dict[str, Any]:
    flat_conf = _json(_ref("FlatConference"), "The conference")
    acct_conf = _json(_envelope(_ref("AccountConference")), "The conference in the response envelope")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tutti-bridge control API",
            "version": "1.0.0",
            "description": (
                "Conferences on a SIP/RTP audio bridge, in two forms that are views of one model: the flat "
                "form (/v2/conferences, Audian create/manage-participants, plus Telnyx and FreeClimb fields) "
                "and the account-scoped form (/v2/accounts/{account_id}/conferences, Kazoo-style "
                "{\"data\": ...} envelope). Authenticate with X-Auth-Token or Authorization: Bearer. "
                "Every error body is {\"error\": code, \"message\": text}. Rooms from config.yaml appear as "
                "read-only conferences conf_<room>. Unknown body fields are rejected (400 unknown_field) "
                "except Telnyx call_control_id/command_id and read-only response fields, which "
                "are ignored. See docs/API.md."
            ),
        },
        "security": [{"token": []}, {"bearer": []}],
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": _ERROR,
                "FlatConferenceInput": _FLAT_IN,
                "FlatConferenceUpdate": {**_FLAT_IN, "required": []},
                "FlatConference": _FLAT_OUT,
                "AccountConferenceInput": {**_ACCT_IN, "required": ["name"]},
                "AccountConferenceUpdate": _ACCT_IN,
                "AccountConference": _ACCT_OUT,
                "Media": _MEDIA,
                "FlatParticipant": _FLAT_PARTICIPANT,
                "AccountParticipant": _ACCT_PARTICIPANT,
            },
        },
        "paths": {
            "/openapi.json": {"get": _op("This document", {"200": {"description": "OpenAPI 3"}}, auth=False)},
            "/conferences/{conference_id}/join": {
                "get": _op(
                    "Public join details (SIP URI, dial-in code; never PINs)",
                    {"200": _json({"type": "object"}, "How to dial in"), **_errors(404)},
                    params=[_CONF], auth=False,
                ),
            },
            "/v2/conferences": {
                "get": _op(
                    "List the account's conferences (flat form)",
                    {"200": _json({"type": "object", "properties": {
                        "conferences": {"type": "array", "items": _ref("FlatConference")},
                        "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
                    }}, "Conferences"), **_errors(400, 401)},
                    params=[
                        _q("status", {"type": "string", "enum": ["created", "active", "empty", "ended", "expired"]}, "Filter"),
                        _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size (100)"),
                        _q("offset", {"type": "integer", "minimum": 0, "maximum": 1000000}, "Skip this many"),
                    ],
                ),
                "post": _op(
                    "Create a conference",
                    {"201": _json(_ref("FlatConference"), "Created"), **_errors(400, 401, 409, 413, 503)},
                    body=_body(_ref("FlatConferenceInput")),
                ),
            },
            "/v2/conferences/{conference_id}": {
                "get": _op("Get a conference", {"200": flat_conf, **_errors(401, 404)}, params=[_CONF]),
                "patch": _op(
                    "Change settings (only the fields sent)",
                    {"200": flat_conf, **_errors(400, 401, 404, 409, 413, 503)},
                    params=[_CONF], body=_body(_ref("FlatConferenceUpdate")),
                ),
                "delete": _op(
                    "End a conference (callers are hung up; it stays listed as ended)",
                    {"200": flat_conf, **_errors(401, 404, 409, 503)}, params=[_CONF],
                ),
            },
            "/v2/conferences/{conference_id}/participants": {
                "get": _op(
                    "List participants: those in the conference, then those who left (status disconnected)",
                    {"200": _json({"type": "object", "properties": {
                        "participants": {"type": "array", "items": _ref("FlatParticipant")},
                        "total": {"type": "integer"}, "active": {"type": "integer"},
                    }}, "Participants"), **_errors(401, 404)},
                    params=[_CONF],
                ),
                "post": _op(
                    "Add a participant by dialling out: answered at once with status dialing",
                    {"200": _json(_ref("FlatParticipant"), "Dialling"), **_errors(400, 401, 404, 409, 413, 429, 503)},
                    params=[_CONF],
                    body=_body({
                        "type": "object", "required": ["phone_number"], "additionalProperties": False,
                        "properties": {
                            "phone_number": {"type": "string", "maxLength": 20, "pattern": "^\\+?[0-9*#]{1,19}$"},
                            "name": {"type": "string", "minLength": 1, "maxLength": 100},
                            "role": {"type": "string", "enum": ["presenter", "listener", "operator"]},
                            "muted": {"type": "boolean"}, "send_pin_via_sms": {"type": "boolean"},
                        },
                    }),
                ),
            },
            "/v2/conferences/{conference_id}/participants/{participant_id}": {
                "delete": _op(
                    "Remove (kick) a participant",
                    {"204": {"description": "Removed"}, **_errors(401, 404)}, params=[_CONF, _PART],
                ),
            },
            "/v2/media": {
                "get": _op(
                    "List the account's uploaded media",
                    {"200": _json({"type": "object", "properties": {
                        "data": {"type": "array", "items": _ref("Media")}, "total": {"type": "integer"},
                    }}, "Media, oldest first"), **_errors(401)},
                ),
                "post": _op(
                    "Upload an audio file (hold music) as media",
                    {"201": _json(_ref("Media"), "Stored"), **_errors(400, 401, 409, 413, 415, 503)},
                    params=[_q("media_name", {"type": "string", "minLength": 1, "maxLength": MAX_ID_TEXT},
                               "Name for raw-body uploads (unique per account)")],
                    body=_MEDIA_UPLOAD,
                ),
            },
            "/v2/media/{media_id}": {
                "get": _op("Get media metadata", {"200": _json(_ref("Media"), "The media"), **_errors(401, 404)},
                           params=[_MEDIA_ID]),
                "delete": _op(
                    "Delete media (its file too); 409 media_in_use while an open conference plays it",
                    {"204": {"description": "Deleted"}, **_errors(401, 404, 409, 503)}, params=[_MEDIA_ID],
                ),
            },
            "/v2/accounts/{account_id}/conferences": {
                "get": _op(
                    "List conferences (account form)",
                    {"200": _json(_envelope({"type": "array", "items": _ref("AccountConference")}), "List"),
                     **_errors(400, 401, 404)},
                    params=[
                        _ACCT,
                        _q("paginate", {"type": "string", "enum": ["true", "false"]}, "false: everything"),
                        _q("page_size", {"type": "integer", "minimum": 1, "maximum": 100}, "Page size (50)"),
                        _q("start_key", {"type": "string", "pattern": "^[0-9]{1,7}$"}, "From next_start_key"),
                    ],
                ),
                "put": _op(
                    "Create a conference",
                    {"201": acct_conf, **_errors(400, 401, 404, 409, 413, 503)},
                    params=[_ACCT], body=_body(_ref("AccountConferenceInput"), wrapped=True),
                ),
            },
            "/v2/accounts/{account_id}/conferences/{conference_id}": {
                "get": _op("Get a conference", {"200": acct_conf, **_errors(401, 404)}, params=[_ACCT, _CONF]),
                "post": _op(
                    "Update a conference (only the fields sent)",
                    {"200": acct_conf, **_errors(400, 401, 404, 409, 413, 503)},
                    params=[_ACCT, _CONF], body=_body(_ref("AccountConferenceUpdate"), wrapped=True),
                ),
                "delete": _op(
                    "End a conference", {"200": acct_conf, **_errors(401, 404, 409, 503)}, params=[_ACCT, _CONF]
                ),
            },
            "/v2/accounts/{account_id}/conferences/{conference_id}/participants": {
                "get": _op(
                    "List participants: those in the conference, then those who left (status disconnected)",
                    {"200": _json(_envelope({"type": "array", "items": _ref("AccountParticipant")}), "List"),
                     **_errors(401, 404)},
                    params=[_ACCT, _CONF],
                ),
            },
            "/v2/accounts/{account_id}/conferences/{conference_id}/participants/{participant_id}": {
                "post": _op(
                    "Act on a participant: mute, unmute, deaf, undeaf, kick (applied at the next 20 ms tick)",
                    {"200": _json(_envelope(_ref("AccountParticipant")), "Participant after the action"),
                     **_errors(400, 401, 404, 413)},
                    params=[_ACCT, _CONF, _PART],
                    body=_body({
                        "type": "object", "required": ["action"],
                        "properties": {"action": {"type": "string",
                                                  "enum": ["mute", "unmute", "deaf", "undeaf", "kick"]}},
                    }, wrapped=True),
                ),
                "delete": _op(
                    "Kick a participant",
                    {"200": _json(_envelope(_ref("AccountParticipant")), "Kicked"), **_errors(401, 404)},
                    params=[_ACCT, _CONF, _PART],
                ),
            },
            "/v2/conferences/{conference_id}/webhooks": {
                "get": _op(
                    "The conference's webhook deliveries (state, attempts, last status, next attempt)",
                    {"200": _json({"type": "object", "properties": {
                        "conference_id": {"type": "string"}, "total": {"type": "integer"},
                        "webhooks": {"type": "array", "items": {"type": "object"}}}}, "Deliveries, oldest first"),
                     **_errors(400, 401, 404)},
                    params=[_CONF, _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Newest N (200)")],
                ),
            },
            "/v2/conferences/{conference_id}/webhooks/{webhook_id}/redeliver": {
                "post": _op(
                    "Send a delivered or dead webhook again (same id and body)",
                    {"202": _json({"type": "object"}, "Queued again"), **_errors(401, 404, 409)},
                    params=[_CONF, {"name": "webhook_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                ),
            },
            "/v2/webhooks/keys": {
                "get": _op(
                    "The account's Telnyx Ed25519 public key and FreeClimb signing secret",
                    {"200": _json({"type": "object", "properties": {
                        "account_id": {"type": "string"}, "telnyx_public_key": {"type": "string"},
                        "freeclimb_signing_secret": {"type": "string"}}}, "Keys"), **_errors(401, 404)},
                ),
            },
        },
    }

