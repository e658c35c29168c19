"""Every validation rule, auth failure and malformed request gets its documented 4xx JSON error."""

from __future__ import annotations

import os
from typing import Any

import pytest

from .conftest import TOKEN_B, Env

FLAT = "/v2/conferences"
ACCT = "/v2/accounts/acct_a/conferences"


def _is_error(body: Any, code: str) -> None:
    assert set(body) == {"error", "message"} and body["error"] == code and body["message"]


@pytest.mark.parametrize("payload, code, hint", [
    ({}, "missing_field", "name"),
    ({"name": ""}, "invalid_name", "empty"),
    ({"name": "n" * 256}, "invalid_name", "255"),
    ({"name": 5}, "invalid_name", "string"),
    ({"name": "a\x00b"}, "invalid_name", "control"),
    ({"name": "ok", "max_participants": 1001}, "invalid_max_participants", "1000"),
    ({"name": "ok", "max_participants": 0}, "invalid_max_participants", "between 1"),
    ({"name": "ok", "max_participants": "50"}, "invalid_max_participants", "integer"),
    ({"name": "ok", "max_participants": 50.5}, "invalid_max_participants", "integer"),
    ({"name": "ok", "max_participants": True}, "invalid_max_participants", "integer"),
    ({"name": "ok", "pin": "123"}, "invalid_pin", "PIN must be 4-6 digits"),
    ({"name": "ok", "pin": "1234567"}, "invalid_pin", "PIN must be 4-6 digits"),
    ({"name": "ok", "pin": "12a4"}, "invalid_pin", "PIN must be 4-6 digits"),
    ({"name": "ok", "pin": 1234}, "invalid_pin", "PIN must be 4-6 digits"),
    ({"name": "ok", "require_pin": True}, "invalid_pin", "pin is required"),
    ({"name": "ok", "require_pin": False, "pin": "1234"}, "conflicting_fields", "require_pin"),
    ({"name": "ok", "require_pin": "yes"}, "invalid_require_pin", "boolean"),
    ({"name": "ok", "record": 1}, "invalid_record", "boolean"),
    ({"name": "ok", "scheduled_for": "2029-12-31T12:00:00Z"}, "invalid_scheduled_for", "future"),
    ({"name": "ok", "scheduled_for": "2031-01-02T12:00:00Z"}, "invalid_scheduled_for", "365"),
    ({"name": "ok", "scheduled_for": "2030-02-01T12:00:00"}, "invalid_scheduled_for", "time zone"),
    ({"name": "ok", "scheduled_for": "next tuesday"}, "invalid_scheduled_for", "ISO 8601"),
    ({"name": "ok", "scheduled_for": 1700000000}, "invalid_scheduled_for", "ISO 8601"),
    ({"name": "ok", "duration_minutes": 1441}, "invalid_duration_minutes", "1440"),
    ({"name": "ok", "duration_minutes": 0}, "invalid_duration_minutes", "between 1"),
    ({"name": "ok", "beep_enabled": "sometimes"}, "invalid_beep_enabled", "on_enter"),
    ({"name": "ok", "beep_enabled": "never", "member_notification": True}, "conflicting_fields", "beep"),
    ({"name": "ok", "max_participants": 5, "max_members": 5}, "conflicting_fields", "max_members"),
    ({"name": "ok", "hold_audio_url": "ftp://x/y.wav"}, "invalid_hold_audio_url", "http"),
    ({"name": "ok", "hold_audio_url": "https://x/a.wav", "hold_media_name": "m"}, "conflicting_fields", "together"),
    ({"name": "ok", "profile": "huge"}, "invalid_profile", "webinar"),
    ({"name": "ok", "rate": 44100}, "invalid_rate", "16000"),
    ({"name": "ok", "codecs": ["GSM"]}, "invalid_codecs", "PCMU"),
    ({"name": "ok", "srtp": "sometimes"}, "invalid_srtp", "required"),
    ({"alias": "a" * 65}, "invalid_alias", "64"),
    ({"name": "ok", "mute_on_entr": True}, "unknown_field", "mute_on_entr"),
    ({"name": "ok", "member_pins": ["1234"], "moderator_pins": ["1234"]}, "invalid_pin", "both"),
    ({"name": "ok", "member_pins": "1234"}, "invalid_pin", "array"),
])
async def test_flat_create_validation(env: Env, payload: dict, code: str, hint: str) -> None:
    status, body = await env.call("POST", FLAT, json=payload)
    assert status == 400
    _is_error(body, code)
    assert hint in body["message"]


async def test_seed_error_body_is_exact(env: Env) -> None:
    status, body = await env.call("POST", FLAT, json={"name": "x", "pin": "12"})
    assert (status, body) == (400, {"error": "invalid_pin", "message": "PIN must be 4-6 digits"})


async def test_limits_at_the_edge_are_accepted(env: Env) -> None:
    status, _ = await env.call("POST", FLAT, json={
        "name": "n" * 255, "max_participants": 1000, "pin": "123456", "duration_minutes": 1440,
        "scheduled_for": "2031-01-01T12:00:00Z"})
    assert status == 201


async def test_account_form_validation(env: Env) -> None:
    status, body = await env.call("PUT", ACCT, json={"data": {"name": "x", "member_pins": ["12"]}})
    assert status == 400 and body["error"] == "invalid_pin"
    status, body = await env.call("PUT", ACCT, json={"data": {"name": "x", "max_members": 1001}})
    assert status == 400 and body["error"] == "invalid_max_members"
    status, body = await env.call("PUT", ACCT, json={"name": "x"})
    _is_error(body, "invalid_body")
    assert status == 400


async def test_active_conference_limit_per_account(env: Env) -> None:
    for i in range(100):
        env.service.create("acct_a", {"name": f"c{i}"})
    status, body = await env.call("POST", FLAT, json={"name": "one too many"})
    assert status == 409
    _is_error(body, "too_many_conferences")
    status, _ = await env.call("POST", FLAT, json={"name": "other account"}, token=TOKEN_B)
    assert status == 201
    # Ending one frees a slot.
    first = env.service.list("acct_a")[1]
    await env.call("DELETE", f"{FLAT}/{first.id}")
    status, _ = await env.call("POST", FLAT, json={"name": "fits again"})
    assert status == 201


@pytest.mark.parametrize("raw, code", [
    (b"{not json", "invalid_json"),
    (b"", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b"[1, 2]", "invalid_body"),
    (b'"name"', "invalid_body"),
    (b"[" * 60000, "invalid_json"),
    (b'{"name": "x", "max_participants": 1' + b"0" * 5000 + b"}", "invalid_json"),
], ids=["broken", "empty", "not-utf8", "array", "string", "deep-nesting", "huge-int"])
async def test_malformed_json(env: Env, raw: bytes, code: str) -> None:
    status, body = await env.call("POST", FLAT, data=raw)
    assert status == 400
    _is_error(body, code)


async def test_oversized_body(env: Env) -> None:
    status, body = await env.call("POST", FLAT, data=b'{"name": "' + b"x" * 70000 + b'"}')
    assert status == 413
    _is_error(body, "payload_too_large")


@pytest.mark.parametrize("method, path", [
    ("GET", FLAT), ("POST", FLAT), ("GET", f"{FLAT}/conf_demo"), ("DELETE", f"{FLAT}/conf_demo"),
    ("GET", f"{FLAT}/conf_demo/participants"), ("GET", ACCT), ("PUT", ACCT), ("GET", f"{ACCT}/conf_demo"),
])
@pytest.mark.parametrize("token", [None, "wrong-token", ""])
async def test_missing_or_wrong_token_is_401(env: Env, method: str, path: str, token: str | None) -> None:
    status, body = await env.call(method, path, token=token, json={"name": "x"} if method in ("POST", "PUT") else None)
    assert status == 401
    _is_error(body, "unauthorized")


async def test_bearer_and_env_token(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    status, _ = await env.call("GET", FLAT, token="from-env", bearer=True)
    assert status == 401
    monkeypatch.setitem(os.environ, "TUTTI_TEST_EXTRA_TOKEN", "from-env")
    status, body = await env.call("GET", FLAT, token="from-env", bearer=True)
    assert status == 200 and body["conferences"][0]["id"] == "conf_demo"


async def test_other_accounts_conferences_are_invisible(env: Env) -> None:
    _, mine = await env.call("POST", FLAT, json={"name": "private", "pin": "1234"})
    cid = mine["id"]
    env.live.add(cid, "part_1")
    for method, path, payload in [
        ("GET", f"{FLAT}/{cid}", None), ("PATCH", f"{FLAT}/{cid}", {"name": "x"}), ("DELETE", f"{FLAT}/{cid}", None),
        ("GET", f"{FLAT}/{cid}/participants", None), ("DELETE", f"{FLAT}/{cid}/participants/part_1", None),
        ("POST", f"{FLAT}/{cid}/participants", {"phone_number": "+1"}),
        ("GET", f"{FLAT}/conf_demo", None),
        ("GET", "/v2/accounts/acct_b/conferences/" + cid, None),
        ("POST", "/v2/accounts/acct_b/conferences/" + cid, {"data": {"name": "x"}}),
        ("DELETE", "/v2/accounts/acct_b/conferences/" + cid, None),
        ("POST", f"/v2/accounts/acct_b/conferences/{cid}/participants/part_1", {"data": {"action": "kick"}}),
        # Using B's token on A's account path: 404 too, nothing leaks.
        ("GET", ACCT, None), ("GET", f"{ACCT}/{cid}", None), ("PUT", ACCT, {"data": {"name": "x"}}),
    ]:
        status, body = await env.call(method, path, token=TOKEN_B, json=payload)
        assert status == 404, (method, path, body)
        _is_error(body, "not_found")
    _, listing = await env.call("GET", FLAT, token=TOKEN_B)
    assert listing["conferences"] == []
    assert env.live.actions == [] and env.live.ended == []
    assert env.service.get(cid).name == "private"  # type: ignore[union-attr]


async def test_unknown_route_and_wrong_method(env: Env) -> None:
    status, body = await env.call("GET", "/v2/nothing")
    assert status == 404
    _is_error(body, "not_found")
    status, body = await env.call("PUT", FLAT, json={"name": "x"})
    assert status == 405
    _is_error(body, "method_not_allowed")
    status, body = await env.call("GET", "/v2/conferences/conf_nope")
    assert status == 404
    _is_error(body, "not_found")


async def test_openapi_is_public(env: Env) -> None:
    status, body = await env.call("GET", "/openapi.json", token=None)
    assert status == 200 and body["openapi"].startswith("3.")
    assert "/v2/accounts/{account_id}/conferences/{conference_id}/participants/{participant_id}" in body["paths"]
