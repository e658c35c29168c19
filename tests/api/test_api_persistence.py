"""Conferences survive a restart: new store + service + app on the same SQLite file."""

from __future__ import annotations

from pathlib import Path

from .conftest import Clock, start_env


async def test_conference_survives_restart(tmp_path: Path) -> None:
    clock = Clock()
    first = await start_env(tmp_path, clock)
    try:
        status, created = await first.call("POST", "/v2/conferences", json={
            "name": "Client Quarterly Review", "scheduled_for": "2030-02-15T14:00:00Z", "max_participants": 25,
            "pin": "5678", "record": True, "mute_on_entry": True, "beep_enabled": "on_exit",
            "hold_audio_url": "https://example.com/hold.wav", "codecs": ["PCMU"], "rate": 8000,
            "srtp": "required",
        })
        assert status == 201
        _, ended = await first.call("PUT", "/v2/accounts/acct_a/conferences", json={"data": {
            "name": "old", "moderator_pins": ["1111"]}})
        await first.call("DELETE", f"/v2/accounts/acct_a/conferences/{ended['data']['id']}")
        first.service.mark_active(created["id"])
    finally:
        await first.stop()  # closes the store: the write queue is drained

    assert (tmp_path / "bridge.sqlite3").exists()
    second = await start_env(tmp_path, clock)
    try:
        status, again = await second.call("GET", f"/v2/conferences/{created['id']}")
        assert status == 200
        assert again == {**created, "status": "active", "join_url": again["join_url"]}
        conf = second.service.get(created["id"])
        assert conf is not None
        assert conf.codecs == ("PCMU",) and conf.rate == 8000 and conf.hold_music_url == "https://example.com/hold.wav"
        assert conf.srtp == "required" and again["srtp"] == "required"
        assert second.service.resolve_dial(created["dial_in_code"]).id == created["id"]  # type: ignore[union-attr]
        status, old = await second.call("GET", f"/v2/accounts/acct_a/conferences/{ended['data']['id']}")
        assert status == 200 and old["data"]["status"] == "ended" and old["data"]["moderator_pins"] == ["1111"]
        assert second.service.resolve_dial(ended["data"]["id"]) is None
        # A new conference never reuses a stored dial-in code.
        _, new = await second.call("POST", "/v2/conferences", json={"name": "n"})
        assert new["dial_in_code"] not in (created["dial_in_code"], ended["data"]["dial_in_code"])
    finally:
        await second.stop()
