"""The vendor APIs' pure parts: FreeClimb and Telnyx request checks, shapes, command_id memory,
and the call.* webhook payloads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bridge.control.call_events import CallHangup
from bridge.control.errors import ControlError
from bridge.control.model import Conference, ParticipantView
from bridge.vendors.freeclimb import validation as fcv
from bridge.vendors.freeclimb import views as fcviews
from bridge.vendors.telnyx import validation as txv
from bridge.vendors.telnyx import views as txviews
from bridge.vendors.telnyx.commands import CommandLog
from bridge.webhooks.call_envelopes import call_payload

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def conf(**kw: object) -> Conference:
    base: dict[str, object] = dict(id="conf_1", account_id="acct1", name="n", dial_in_code="12345678",
                                   created_at=NOW, expires_at=NOW + timedelta(hours=24))
    base.update(kw)
    return Conference(**base)  # type: ignore[arg-type]


def person(pid: str = "part_1", **kw: object) -> ParticipantView:
    base: dict[str, object] = dict(participant_id=pid, caller_id_number="a", caller_id_name="A", muted=False,
                                   deaf=False, on_hold=False, role="member", joined_at=NOW)
    base.update(kw)
    return ParticipantView(**base)  # type: ignore[arg-type]


# -- FreeClimb ---------------------------------------------------------------------------------


def test_freeclimb_create_translates_and_refuses() -> None:
    got = fcv.parse_create({"statusCallbackUrl": "https://x.example/cb", "alias": "a", "playBeep": "exitOnly",
                            "waitUrl": "https://x.example/m.wav", "record": False})
    assert got == {"statusCallbackUrl": "https://x.example/cb", "alias": "a", "playBeep": "exitOnly",
                   "waitUrl": "https://x.example/m.wav", "hold_audio_url": "https://x.example/m.wav", "record": False}
    assert fcv.parse_create({"statusCallbackUrl": "https://x/cb", "record": True})["record"] is True
    for body, code in [({}, "missing_field"), ({"statusCallbackUrl": "https://x/cb", "record": "yes"},
                       "invalid_record"), ({"statusCallbackUrl": "https://x/cb", "actionUrl": "x"},
                       "unknown_field"), ({"statusCallbackUrl": "mailto:x"}, "invalid_statusCallbackUrl")]:
        with pytest.raises(ControlError) as err:
            fcv.parse_create(body)
        assert err.value.code == code and err.value.status == 400


def test_freeclimb_updates() -> None:
    assert fcv.parse_update({"alias": "b", "status": "terminated"}) == ({"alias": "b"}, "terminated")
    with pytest.raises(ControlError):
        fcv.parse_update({"status": "inProgress"})
    assert fcv.parse_participant_update({"talk": False, "listen": False}) == ["mute", "deaf"]
    assert fcv.parse_participant_update({"talk": True, "dtmfPassThrough": False}) == ["unmute"]
    with pytest.raises(ControlError) as err:
        fcv.parse_participant_update({"dtmfPassThrough": True})
    assert err.value.code == "unsupported_dtmfPassThrough"
    with pytest.raises(ControlError):
        fcv.parse_participant_update({"talk": "no"})


def test_freeclimb_status_and_shapes() -> None:
    c = conf(beep="on_enter")
    assert fcviews.conference_status(c, [], NOW) == "empty"
    assert fcviews.conference_status(c, [person()], NOW) == "inProgress"
    waiting = conf(wait_for_moderator=True)
    assert fcviews.conference_status(waiting, [person()], NOW) == "populated"
    assert fcviews.conference_status(waiting, [person(role="moderator")], NOW) == "inProgress"
    assert fcviews.conference_status(conf(status="ended"), [], NOW) == "terminated"
    assert fcviews.conference_status(c, [person(status="disconnected")], NOW) == "empty"
    body = fcviews.conference(c, "acct1", [], NOW)
    assert body["playBeep"] == "entryOnly" and body["dateCreated"] == "Mon, 02 Mar 2026 10:00:00 GMT"
    assert body["uri"] == "/Accounts/acct1/Conferences/conf_1" and body["alias"] == "n"
    assert fcviews.conference(conf(name=""), "acct1", [], NOW)["alias"] is None
    part = fcviews.participant(c, "acct1", person(muted=True, deaf=True))
    assert part["talk"] is False and part["listen"] is False and part["callId"] == "part_1"
    page = fcviews.page([{"x": 1}], "participants", 0, 1, None)
    assert page["end"] == 0 and page["numPages"] == 1 and page["participants"] == [{"x": 1}]
    assert fcviews.error(404, "not_found", "gone") == {"code": 404, "message": "gone", "url": None,
                                                       "details": {"error": "not_found"}}


# -- Telnyx ------------------------------------------------------------------------------------


def test_telnyx_create_defaults_and_limits() -> None:
    spec = txv.parse_create({"call_control_id": "v3:x", "name": "n"})
    assert spec.settings == {"name": "n", "beep_enabled": "never", "max_participants": 250, "duration_minutes": 240}
    assert spec.call_control_id == "v3:x" and spec.command_id is None
    spec = txv.parse_create({"call_control_id": "v3:x", "name": "n", "max_participants": 800,
                             "start_conference_on_create": False, "client_state": "YWJj", "command_id": "c"})
    assert spec.settings["max_participants"] == 800 and spec.settings["start_conference_on_create"] is False
    assert spec.command_id == "c"
    for body, pointer, code in [
        ({"name": "n"}, "/call_control_id", "10004"),
        ({"call_control_id": "x", "name": "n", "max_participants": 1}, "/max_participants", "10015"),
        ({"call_control_id": "x", "name": "n", "beep_enabled": "on_entry"}, "/beep_enabled", "10015"),
        ({"call_control_id": "x", "name": "n", "region": "US"}, "/region", "10015"),
        ({"call_control_id": "x", "name": "n", "client_state": "%%"}, "/client_state", "10015"),
        ({"call_control_id": "x", "name": "n", "hold_audio_url": "https://a/b", "hold_media_name": "m"},
         "/hold_media_name", "10015"),
        ({"call_control_id": "x", "name": "n", "wat": 1}, "/wat", "10015"),
    ]:
        with pytest.raises(txv.TelnyxError) as err:
            txv.parse_create(body)
        assert (err.value.status, err.value.pointer, err.value.telnyx_code) == (422, pointer, code), body


def test_telnyx_actions() -> None:
    assert txv.parse_mute({}) is None and txv.parse_mute({"call_control_ids": []}) is None
    assert txv.parse_mute({"call_control_ids": ["a", "a", "b"]}) == ["a", "b"]
    with pytest.raises(txv.TelnyxError):
        txv.parse_mute({"call_control_ids": "a"})
    assert txv.parse_hold({"media_name": "tune"}) == (None, "tune")
    with pytest.raises(txv.TelnyxError):
        txv.parse_unhold({})
    assert txv.parse_update({"call_control_id": "a", "supervisor_role": "monitor"}).muted is True
    assert txv.parse_update({"call_control_id": "a", "supervisor_role": "barge"}).muted is False
    with pytest.raises(txv.TelnyxError):     # whisper needs the legs that hear it
        txv.parse_update({"call_control_id": "a", "supervisor_role": "whisper"})
    whisper = txv.parse_update({"call_control_id": "a", "supervisor_role": "whisper",
                                "whisper_call_control_ids": ["b", "b"]})
    assert (whisper.muted, whisper.whisper_to) == (False, ["b"])
    with pytest.raises(txv.TelnyxError):     # ids without whisper
        txv.parse_update({"call_control_id": "a", "supervisor_role": "barge", "whisper_call_control_ids": ["b"]})
    assert txv.parse_join({"call_control_id": "a", "supervisor_role": "whisper",
                           "whisper_call_control_ids": ["b"]}).whisper_to == ["b"]
    join = txv.parse_join({"call_control_id": "a", "start_conference_on_enter": True, "mute": True})
    assert (join.role, join.muted) == ("moderator", True)
    with pytest.raises(txv.TelnyxError):
        txv.parse_join({"call_control_id": "a", "end_conference_on_exit": True})
    assert txv.parse_call_command({"client_state": "YWJj", "command_id": "x"}) == "YWJj"
    with pytest.raises(txv.TelnyxError):
        txv.parse_call_command({"webhook_url": "https://a/b"})
    assert txv.parse_filters({"filter[name]": "x", "page[size]": "5"}, ("name",)) == {"name": "x"}
    assert txv.parse_page({"page[number]": "2", "page[size]": "5"}) == (2, 5)
    with pytest.raises(txv.TelnyxError):
        txv.parse_filters({"filter[failed]": "true"}, ("name",))
    with pytest.raises(txv.TelnyxError):
        txv.parse_page({"page[size]": "251"})


def test_telnyx_shapes() -> None:
    assert txviews.conference(conf(status="created"), NOW)["status"] == "init"
    ended = txviews.conference(conf(status="ended"), NOW)
    assert ended["status"] == "completed" and ended["end_reason"] == "ended_via_api"
    assert txviews.conference(conf(), NOW + timedelta(days=2))["end_reason"] == "time_exceeded"
    assert [txviews.participant(conf(), person(status=s))["status"] for s in ("dialing", "held", "rejected")] == [
        "joining", "joined", "left"]
    page = txviews.page([{"i": i} for i in range(5)], 2, 2)
    assert page["data"] == [{"i": 2}, {"i": 3}]
    assert page["meta"] == {"page_number": 2, "page_size": 2, "total_pages": 3, "total_results": 5}
    assert txviews.error("10005", "gone", "/id") == {"errors": [
        {"code": "10005", "title": "Resource not found", "detail": "gone", "source": {"pointer": "/id"}}]}


def test_command_ids_are_remembered_for_60_seconds() -> None:
    log = CommandLog(limit=3)
    assert not log.seen("a", "conf", "c1", 0.0)
    log.record("a", "conf", "c1", 0.0, "conf_1")
    assert log.seen("a", "conf", "c1", 59.0) and log.result("a", "conf", "c1") == "conf_1"
    assert not log.seen("a", "other", "c1", 59.0) and not log.seen("b", "conf", "c1", 59.0)
    assert not log.seen("a", "conf", "c1", 60.5) and log.result("a", "conf", "c1") is None
    assert not log.seen("a", "conf", None, 1.0)
    for i in range(5):
        log.record("a", "conf", f"x{i}", 100.0)
    assert not log.seen("a", "conf", "x0", 100.0) and log.seen("a", "conf", "x4", 100.0)


def test_call_hangup_payload() -> None:
    event = CallHangup("", call_control_id="part_1", account_id="acct1", app="app", webhook_url="https://a/b",
                       client_state="YWJj", caller="alice", callee="4000", caller_name="Alice", started_at=0.0,
                       hangup_cause="timeout", hangup_source="callee", sip_hangup_cause="480", ended_at=30.0)
    payload = call_payload(event)
    assert payload["call_control_id"] == payload["call_leg_id"] == "part_1"
    assert payload["connection_id"] == "app" and payload["from"] == "alice" and payload["to"] == "4000"
    assert payload["hangup_cause"] == "timeout" and payload["sip_hangup_cause"] == "480"
    assert payload["start_time"] == "1970-01-01T00:00:00.000000Z" and payload["state"] == "hangup"
    assert event.name == "call.hangup"


def test_call_control_config_checks() -> None:
    from bridge.config import ConfigError, parse_config

    base = {"accounts": [{"id": "acct1", "tokens": ["t"]}], "rooms": [{"name": "room1", "dial_in_code": "1001"}]}
    app = {"name": "app", "account": "acct1", "webhook_url": "https://hooks.example.com/x", "sip_users": ["4000"]}
    cfg = parse_config({**base, "call_control": [app]})
    assert cfg.call_control[0].answer_timeout_s == 30.0
    for bad, word in [
        ({**app, "account": "nobody"}, "unknown account"),
        ({**app, "sip_users": ["room1"]}, "already"),
        ({**app, "sip_users": ["1001"]}, "already"),
        ({**app, "sip_users": ["conference"]}, "already"),
        ({**app, "sip_users": []}, "sip_users"),
        ({**app, "webhook_url": "http://127.0.0.1/x"}, "webhook_url"),
        ({**app, "answer_timeout_s": 0}, "answer_timeout_s"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_config({**base, "call_control": [bad]})
        assert word in str(err.value), (bad, str(err.value))
    loopback = {**app, "webhook_url": "http://127.0.0.1/x"}
    assert parse_config({**base, "webhooks": {"allow_networks": ["127.0.0.1/32"]}, "call_control": [loopback]})


def test_telnyx_dial_body_is_validated_and_unsupported_fields_refused() -> None:
    import pytest

    from bridge.vendors.telnyx.dial import parse_dial
    from bridge.vendors.telnyx.validation import TelnyxError

    ok = parse_dial({"connection_id": "lab", "to": "+12025551234", "from": "+15550000",
                     "conference_config": {"conference_name": "Board", "mute": True}})
    assert (ok.timeout_s, ok.conference_name, ok.muted, ok.role) == (30, "Board", True, "member")
    for bad, pointer in [
        ({"connection_id": "lab", "to": "x", "from": "1", "conference_config": {"id": "c"}}, "/to"),
        ({"connection_id": "lab", "to": "1", "from": "1"}, "/conference_config"),
        ({"connection_id": "lab", "to": "1", "from": "1", "conference_config": {"id": "c"}, "record": "x"}, "/record"),
        ({"connection_id": "lab", "to": "1", "from": "1", "conference_config": {"id": "c", "hold": True}}, "/hold"),
        ({"connection_id": "lab", "to": "1", "from": "1", "conference_config": {}}, "/conference_config"),
        ({"connection_id": "lab", "to": "1", "from": "1", "conference_config": {"id": "c"}, "timeout_secs": 2},
         "/timeout_secs"),
    ]:
        with pytest.raises(TelnyxError) as err:
            parse_dial(bad)
        assert err.value.status == 422 and err.value.pointer == pointer, bad
