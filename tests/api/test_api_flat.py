"""The Audian flat form (/v2/conferences): the seed examples with their status codes and bodies."""

from __future__ import annotations

from .conftest import START, Env


async def test_basic_conference_matches_seed_response(env: Env) -> None:
    status, body = await env.call("POST", "/v2/conferences", json={"name": "Weekly Team Sync", "max_participants": 50})
    assert status == 201
    assert body["id"].startswith("conf_")
    assert body["name"] == "Weekly Team Sync"
    assert body["status"] == "created"
    assert body["max_participants"] == 50
    assert body["current_participants"] == 0
    assert body["require_pin"] is False
    assert body["record"] is False
    assert body["mute_on_entry"] is False
    assert body["member_notification"] is True
    assert body["join_url"] == f"{env.base}/conferences/{body['id']}/join"
    assert body["created_at"] == "2030-01-01T12:00:00Z"
    assert body["scheduled_for"] is None
    assert body["expires_at"] == "2030-01-02T12:00:00Z"  # created_at + 24 h
    # What a caller needs to dial in.
    assert body["sip_uri"] == f"sip:{body['id']}@192.0.2.10"
    assert body["access_uri"] == "sip:conference@192.0.2.10"
    assert body["dial_in_code"].isdigit() and 6 <= len(body["dial_in_code"]) <= 9
    by_code, by_id = env.service.resolve_dial(body["dial_in_code"]), env.service.resolve_dial(body["id"])
    assert by_code is not None and by_id is not None and by_code.id == by_id.id == body["id"]


async def test_js_example_with_bearer_token(env: Env) -> None:
    status, body = await env.call(
        "POST", "/v2/conferences", bearer=True,
        json={"name": "Weekly Team Sync", "max_participants": 50, "record": True, "mute_on_entry": False},
    )
    assert status == 201 and body["record"] is True


async def test_scheduled_conference_with_pin(env: Env) -> None:
    status, body = await env.call("POST", "/v2/conferences", json={
        "name": "Client Quarterly Review", "scheduled_for": "2030-02-15T14:00:00Z", "max_participants": 25,
        "require_pin": True, "pin": "5678", "record": True, "mute_on_entry": True, "member_notification": True,
    })
    assert status == 201
    assert body["scheduled_for"] == "2030-02-15T14:00:00Z"
    assert body["expires_at"] == "2030-02-16T14:00:00Z"  # scheduled_for + 24 h
    assert body["require_pin"] is True and body["pin"] == "5678"
    assert body["mute_on_entry"] is True and body["record"] is True
    conf = env.service.get(body["id"])
    assert conf is not None and conf.member_pins == ("5678",) and conf.pin_role("5678") == "member"


async def test_large_webinar(env: Env) -> None:
    status, body = await env.call("POST", "/v2/conferences", json={
        "name": "Product Launch Webinar", "max_participants": 500, "require_pin": False, "record": True,
        "mute_on_entry": True, "allow_recording_by_participant": False, "member_notification": False,
    })
    assert status == 201
    assert body["max_participants"] == 500
    assert body["member_notification"] is False and body["beep_enabled"] == "never"
    assert body["allow_recording_by_participant"] is False


async def test_telnyx_and_freeclimb_fields_are_stored(env: Env) -> None:
    status, body = await env.call("POST", "/v2/conferences", json={
        "name": "Business", "call_control_id": "v3:abc", "client_state": "aGF2ZQ==", "command_id": "891",
        "beep_enabled": "on_enter", "comfort_noise": False, "duration_minutes": 5,
        "hold_audio_url": "http://www.example.com/audio.wav", "start_conference_on_create": False,
        "max_participants": 250, "waitUrl": "https://example.com/wait", "statusCallbackUrl": "https://example.com/cb",
    })
    assert status == 201
    assert body["beep_enabled"] == "on_enter" and body["comfort_noise"] is False
    assert body["expires_at"] == "2030-01-01T12:05:00Z"  # duration_minutes
    assert body["start_conference_on_create"] is False and body["wait_for_moderator"] is True
    assert body["hold_audio_url"] == "http://www.example.com/audio.wav"
    assert body["statusCallbackUrl"] == "https://example.com/cb"
    status, body = await env.call("POST", "/v2/conferences", json={"alias": "FC room", "playBeep": "exitOnly"})
    assert status == 201 and body["name"] == "FC room" and body["beep_enabled"] == "on_exit"


async def test_get_list_patch_delete_lifecycle(env: Env) -> None:
    _, created = await env.call("POST", "/v2/conferences", json={"name": "Sync"})
    cid = created["id"]
    status, body = await env.call("GET", f"/v2/conferences/{cid}")
    assert status == 200 and body["id"] == cid and body["status"] == "created"

    env.service.mark_active(cid)
    status, body = await env.call("GET", "/v2/conferences")
    assert status == 200
    ids = [c["id"] for c in body["conferences"]]
    assert ids == ["conf_demo", cid] and body["total"] == 2
    assert body["conferences"][1]["status"] == "active"
    _, body = await env.call("GET", "/v2/conferences?status=active")
    assert [c["id"] for c in body["conferences"]] == [cid]

    status, body = await env.call("PATCH", f"/v2/conferences/{cid}", json={"pin": "4321"})
    assert status == 200 and body["require_pin"] is True and body["pin"] == "4321" and body["name"] == "Sync"

    status, body = await env.call("DELETE", f"/v2/conferences/{cid}")
    assert status == 200 and body["status"] == "ended" and body["ended_at"] == "2030-01-01T12:00:00Z"
    assert env.live.ended == [cid]  # callers get BYE
    assert env.service.resolve_dial(cid) is None and env.service.resolve_dial(created["dial_in_code"]) is None
    # Kept for listing; deleting again is a no-op; changing it is refused.
    _, body = await env.call("GET", "/v2/conferences?status=ended")
    assert [c["id"] for c in body["conferences"]] == [cid]
    status, body = await env.call("DELETE", f"/v2/conferences/{cid}")
    assert status == 200 and body["status"] == "ended" and env.live.ended == [cid]
    status, body = await env.call("PATCH", f"/v2/conferences/{cid}", json={"name": "x"})
    assert status == 409 and body["error"] == "conference_ended"


async def test_participants_list_and_kick(env: Env) -> None:
    _, conf = await env.call("POST", "/v2/conferences", json={"name": "Sync"})
    cid = conf["id"]
    env.live.add(cid, "part_xyz789", "+12025551234", "John Smith")
    env.live.add(cid, "part_abc111", "+12025555678", "Jane Doe", muted=True, on_hold=True)
    env.clock.advance(seconds=245)
    status, body = await env.call("GET", f"/v2/conferences/{cid}/participants")
    assert status == 200
    assert body["total"] == 2 and body["active"] == 1
    first = body["participants"][0]
    assert first == {
        "id": "part_xyz789", "conference_id": cid, "phone_number": "+12025551234", "name": "John Smith",
        "role": "member", "status": "connected", "muted": False, "deaf": False, "talking": False,
        "level_dbov": -127.0, "frames_fec": 0, "frames_concealed": 0,
        "send_expected_loss": None, "duration": 245,
        "joined_at": "2030-01-01T12:00:00Z", "left_at": None,
        "leave_reason": None, "created_at": "2030-01-01T12:00:00Z",
    }
    assert body["participants"][1]["status"] == "held" and body["participants"][1]["muted"] is True
    _, got = await env.call("GET", f"/v2/conferences/{cid}")
    assert got["current_participants"] == 2

    status, body = await env.call("DELETE", f"/v2/conferences/{cid}/participants/part_xyz789")
    assert status == 204 and body is None
    assert env.live.actions == [(cid, "part_xyz789", "kick")]
    status, body = await env.call("DELETE", f"/v2/conferences/{cid}/participants/part_xyz789")
    assert status == 404 and body["error"] == "participant_not_found"


async def test_dial_out_answers_at_once_validates_and_is_rate_limited(env: Env) -> None:
    _, conf = await env.call("POST", "/v2/conferences", json={"name": "Sync"})
    path = f"/v2/conferences/{conf['id']}/participants"
    status, body = await env.call("POST", path, json={
        "phone_number": "+12025551234", "name": "John Smith", "role": "presenter"})
    assert status == 200
    assert {k: body[k] for k in ("conference_id", "phone_number", "name", "role", "status", "muted",
                                 "duration", "joined_at", "created_at")} == {
        "conference_id": conf["id"], "phone_number": "+12025551234", "name": "John Smith", "role": "presenter",
        "status": "dialing", "muted": False, "duration": 0, "joined_at": None, "created_at": "2030-01-01T12:00:00Z"}
    assert body["id"].startswith("part_")
    for bad, code in [
        ({}, "missing_field"),
        ({"phone_number": "+1" + "2" * 20}, "invalid_phone_number"),
        ({"phone_number": "+12025551234", "name": "n" * 101}, "invalid_name"),
        ({"phone_number": "+12025551234", "role": "boss"}, "invalid_role"),
        ({"phone_number": "+12025551234", "muted": "yes"}, "invalid_muted"),
        ({"phone_number": "+12025551234", "send_pin_via_sms": True}, "sms_not_configured"),  # no gateway
    ]:
        status, body = await env.call("POST", path, json=bad)
        assert (status, body["error"]) == (400, code), bad
    # The seed's limit: 10 adds per second per account (one was made above, in this second).
    answers = [await env.call("POST", path, json={"phone_number": f"+1202555{i:04d}"}) for i in range(10)]
    assert [s for s, _ in answers] == [200] * 9 + [429]
    assert answers[-1][1]["error"] == "rate_limited"
    env.clock.advance(seconds=1)
    status, body = await env.call("POST", path, json={"phone_number": "+12025559999", "role": "listener",
                                                      "muted": True})
    assert status == 200 and body["muted"] is True and body["role"] == "listener"


async def test_config_room_is_listed_and_read_only(env: Env) -> None:
    status, body = await env.call("GET", "/v2/conferences/conf_demo")
    assert status == 200
    assert body["read_only"] is True and body["dial_in_code"] == "1000" and body["max_participants"] == 30
    assert body["expires_at"] is None
    for method, path, payload in [
        ("PATCH", "/v2/conferences/conf_demo", {"name": "x"}),
        ("DELETE", "/v2/conferences/conf_demo", None),
        ("POST", "/v2/accounts/acct_a/conferences/conf_demo", {"data": {"name": "x"}}),
        ("DELETE", "/v2/accounts/acct_a/conferences/conf_demo", None),
    ]:
        status, body = await env.call(method, path, json=payload)
        assert status == 409
        assert body == {"error": "read_only", "message": "conference is defined in config.yaml"}


async def test_join_url_is_public_and_hides_pins(env: Env) -> None:
    _, conf = await env.call("POST", "/v2/conferences", json={"name": "Sync", "pin": "9999"})
    status, body = await env.call("GET", f"/conferences/{conf['id']}/join", token=None)
    assert status == 200
    assert body["sip_uri"] == conf["sip_uri"] and body["require_pin"] is True
    assert "9999" not in str(body)


async def test_expiry_sweep(env: Env) -> None:
    _, conf = await env.call("POST", "/v2/conferences", json={"name": "Short", "duration_minutes": 10})
    env.clock.advance(minutes=10)
    # Past expires_at: not joinable and shown expired even before the sweep runs.
    assert env.service.resolve_dial(conf["dial_in_code"]) is None
    _, body = await env.call("GET", f"/v2/conferences/{conf['id']}")
    assert body["status"] == "expired"
    swept = env.service.expire_due(START.replace(minute=10))
    assert [c.id for c in swept] == [conf["id"]]
    assert env.service.expire_due() == []
    assert env.service.get(conf["id"]).status == "expired"  # type: ignore[union-attr]
