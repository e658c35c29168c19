"""The account-scoped form (/v2/accounts/{ACCOUNT_ID}/conferences) with its {"data": ...} envelope."""

from __future__ import annotations

from .conftest import Env

BASE = "/v2/accounts/acct_a/conferences"


def _ok(body: dict) -> dict:
    assert body["status"] == "success" and body["request_id"].startswith("req_")
    return body["data"]


async def test_create_get_update_delete(env: Env) -> None:
    status, body = await env.call("PUT", BASE, json={"data": {
        "name": "Sales Meeting", "member_pins": ["5678"], "moderator_pins": ["1234"],
        "max_members": 50, "profile": "default"}})
    assert status == 201
    conf = _ok(body)
    cid = conf["id"]
    assert cid.startswith("conf_")
    assert conf["member_pins"] == ["5678"] and conf["moderator_pins"] == ["1234"]
    assert conf["max_members"] == 50 and conf["profile"] == "default"
    assert conf["play_entry_tone"] is True and conf["play_exit_tone"] is True
    assert conf["dial_in_code"].isdigit() and conf["sip_uri"] == f"sip:{cid}@192.0.2.10"
    assert env.service.get(cid).pin_role("1234") == "moderator"  # type: ignore[union-attr]

    status, body = await env.call("GET", f"{BASE}/{cid}")
    assert status == 200 and _ok(body)["name"] == "Sales Meeting"

    status, body = await env.call("POST", f"{BASE}/{cid}", json={"data": {
        "name": "Updated Meeting Name", "max_members": 100, "play_exit_tone": False}})
    assert status == 200
    conf = _ok(body)
    assert conf["name"] == "Updated Meeting Name" and conf["max_members"] == 100
    assert conf["member_pins"] == ["5678"]  # untouched fields keep their value
    assert conf["play_entry_tone"] is True and conf["play_exit_tone"] is False
    # Same conference, flat view.
    _, flat = await env.call("GET", f"/v2/conferences/{cid}")
    assert flat["max_participants"] == 100 and flat["beep_enabled"] == "on_enter" and flat["pin"] == "5678"

    status, body = await env.call("DELETE", f"{BASE}/{cid}")
    assert status == 200 and _ok(body)["status"] == "ended" and env.live.ended == [cid]


async def test_list_paginate(env: Env) -> None:
    for i in range(3):
        await env.call("PUT", BASE, json={"data": {"name": f"m{i}"}})
    status, body = await env.call("GET", f"{BASE}?paginate=false")
    assert status == 200
    data = _ok(body)
    assert [c["name"] for c in data] == ["demo", "m0", "m1", "m2"]
    assert data[0] == {**data[0], "id": "conf_demo", "member_pins": [], "moderator_pins": [], "max_members": 30,
                       "profile": "default"}
    assert "auth_token" not in body  # the token is never echoed back
    _, body = await env.call("GET", f"{BASE}?page_size=3")
    assert len(body["data"]) == 3 and body["next_start_key"] == "3"
    _, body = await env.call("GET", f"{BASE}?page_size=3&start_key=3")
    assert [c["name"] for c in body["data"]] == ["m2"] and "next_start_key" not in body
    status, body = await env.call("GET", f"{BASE}?paginate=maybe")
    assert status == 400 and body["error"] == "invalid_paginate"


async def test_participants_and_actions(env: Env) -> None:
    env.live.add("conf_demo", "part_xyz789", "+14155559999", "John Doe")
    env.live.add("conf_demo", "part_2", "+14155550000", "Ann")
    path = f"{BASE}/conf_demo/participants"
    status, body = await env.call("GET", path)
    assert status == 200
    assert _ok(body)[0] == {
        "participant_id": "part_xyz789", "caller_id_number": "+14155559999", "caller_id_name": "John Doe",
        "muted": False, "deaf": False, "on_hold": False, "role": "member", "talking": False,
        "level_dbov": -127.0, "join_time": "2030-01-01T12:00:00Z",
    }
    for action, field, value in [("mute", "muted", True), ("unmute", "muted", False),
                                 ("deaf", "deaf", True), ("undeaf", "deaf", False)]:
        status, body = await env.call("POST", f"{path}/part_xyz789", json={"data": {"action": action}})
        assert status == 200, body
        assert _ok(body)[field] is value and body["data"]["action"] == action
    assert [a[2] for a in env.live.actions] == ["mute", "unmute", "deaf", "undeaf"]

    status, body = await env.call("POST", f"{path}/part_xyz789", json={"data": {"action": "kick"}})
    assert status == 200 and env.live.actions[-1] == ("conf_demo", "part_xyz789", "kick")
    status, body = await env.call("DELETE", f"{path}/part_2")
    assert status == 200 and _ok(body)["participant_id"] == "part_2"
    assert env.live.participants("conf_demo") == []

    status, body = await env.call("POST", f"{path}/part_2", json={"data": {"action": "mute"}})
    assert status == 404 and body["error"] == "participant_not_found"
    env.live.add("conf_demo", "part_3")
    for payload, code in [({"data": {"action": "explode"}}, "invalid_action"), ({"data": {}}, "missing_field"),
                          ({"action": "mute"}, "invalid_body")]:
        status, body = await env.call("POST", f"{path}/part_3", json=payload)
        assert (status, body["error"]) == (400, code)
