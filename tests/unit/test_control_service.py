"""ConferenceService, validation and the SQLite store without HTTP."""

from __future__ import annotations

import ast
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import bridge.control as control_pkg
from bridge.adapters.storage import ConferenceStore
from bridge.config import parse_config
from bridge.control.errors import ControlError
from bridge.control.model import Action, Conference, ParticipantView
from bridge.control.service import ConferenceService
from bridge.control.validation import parse_settings

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


class Live:
    def __init__(self) -> None:
        self.ended: list[str] = []
        self.changed: list[Conference] = []
        self.people: dict[str, list[ParticipantView]] = {}

    def participants(self, conf_id: str) -> list[ParticipantView]:
        return self.people.get(conf_id, [])

    def act(self, conf_id: str, participant_id: str, action: Action) -> bool:
        return any(p.participant_id == participant_id for p in self.people.get(conf_id, []))

    def end_conference(self, conf_id: str, reason: str = "ended_via_api") -> None:
        self.ended.append(conf_id)

    def conference_changed(self, conf: Conference) -> None:
        self.changed.append(conf)


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[str, Conference] = {}

    def load_all(self) -> list[Conference]:
        return list(self.rows.values())

    def put(self, conf: Conference) -> None:
        self.rows[conf.id] = conf


CONFIG = parse_config({
    "media": {"default_rate": 48000},
    "accounts": [{"id": "a"}, {"id": "b"}],
    "rooms": [
        {"name": "demo", "dial_in_code": "1000", "account": "a", "member_pins": ["4444"]},
        {"name": "lobby"},
    ],
})


@pytest.fixture
def clock() -> list[datetime]:
    return [T0]


@pytest.fixture
def svc(clock: list[datetime]) -> ConferenceService:
    return ConferenceService(MemoryStore(), CONFIG, Live(), lambda: clock[0], rng=random.Random(7))


def test_resolve_dial_by_id_room_name_and_code(svc: ConferenceService) -> None:
    conf = svc.create("a", {"name": "x"})
    assert len(conf.dial_in_code) == 8 and conf.dial_in_code.isdigit()
    assert svc.resolve_dial(conf.id) == conf
    assert svc.resolve_dial(conf.dial_in_code) == conf
    demo = svc.resolve_dial("demo")
    assert demo is not None and demo.id == "conf_demo" and demo.read_only and demo.pin_role("4444") == "member"
    assert svc.resolve_dial("1000") == demo
    assert svc.resolve_dial("lobby") is not None  # a room with no account is still dialable
    assert svc.resolve_dial("nope") is None and svc.resolve_dial("") is None


def test_defaults_come_from_config(svc: ConferenceService) -> None:
    conf = svc.create("a", {"name": "x"})
    assert conf.rate == 48000 and conf.max_participants == 100 and conf.beep == "always"
    assert conf.expires_at == T0 + timedelta(hours=24) and conf.status == "created"


def test_lifecycle_active_ended_and_expired(svc: ConferenceService, clock: list[datetime]) -> None:
    conf = svc.create("a", {"name": "x", "duration_minutes": 30})
    svc.mark_active(conf.id)
    assert svc.get(conf.id).status == "active"  # type: ignore[union-attr]
    ended = svc.delete("a", conf.id)
    assert ended.status == "ended" and svc.live.ended == [conf.id]  # type: ignore[attr-defined]
    svc.mark_active(conf.id)  # an ended conference never becomes active again
    svc.mark_empty(conf.id)
    assert svc.get(conf.id).status == "ended"  # type: ignore[union-attr]

    other = svc.create("a", {"name": "y", "duration_minutes": 30})
    clock[0] = T0 + timedelta(minutes=29)
    assert svc.expire_due() == []
    clock[0] = T0 + timedelta(minutes=30)
    assert [c.id for c in svc.expire_due()] == [other.id]
    assert svc.resolve_dial(other.dial_in_code) is None
    assert svc.store.rows[other.id].status == "expired"  # type: ignore[attr-defined]
    with pytest.raises(ControlError) as err:
        svc.update("a", other.id, {"name": "z"})
    assert err.value.status == 409


def test_scheduled_expiry_and_update_recomputes(svc: ConferenceService) -> None:
    conf = svc.create("a", {"name": "x", "scheduled_for": "2030-01-10T09:00:00+01:00"})
    assert conf.expires_at == datetime(2030, 1, 11, 8, tzinfo=timezone.utc)
    conf = svc.update("a", conf.id, {"duration_minutes": 90})
    assert conf.expires_at == datetime(2030, 1, 10, 9, 30, tzinfo=timezone.utc)


def test_accounts_are_isolated(svc: ConferenceService) -> None:
    conf = svc.create("a", {"name": "x"})
    for call in (lambda: svc.get_owned("b", conf.id), lambda: svc.update("b", conf.id, {"name": "y"}),
                 lambda: svc.delete("b", conf.id), lambda: svc.participants("b", conf.id),
                 lambda: svc.get_owned("a", "conf_lobby")):
        with pytest.raises(ControlError) as err:
            call()
        assert err.value.status == 404
    assert [c.id for c in svc.list("b")] == []
    assert [c.id for c in svc.list("a")] == ["conf_demo", conf.id]


def test_act_reports_unknown_participant(svc: ConferenceService) -> None:
    with pytest.raises(ControlError) as err:
        svc.act("a", "conf_demo", "part_x", "mute")
    assert (err.value.status, err.value.code) == (404, "participant_not_found")
    svc.live.people["conf_demo"] = [  # type: ignore[attr-defined]
        ParticipantView("part_x", "1", "n", False, False, False, "member", T0)]
    assert svc.act("a", "conf_demo", "part_x", "mute").muted is True
    assert svc.act("a", "conf_demo", "part_x", "deaf").deaf is True


@pytest.mark.parametrize("body, attr, value", [
    ({"name": "n", "pin": "1234"}, "member_pins", ("1234",)),
    ({"name": "n", "require_pin": False}, "member_pins", ()),
    ({"name": "n", "member_notification": False}, "beep", "never"),
    ({"name": "n", "play_entry_tone": True, "play_exit_tone": False}, "beep", "on_enter"),
    ({"name": "n", "playBeep": "exitOnly"}, "beep", "on_exit"),
    ({"name": "n", "start_conference_on_create": False}, "wait_for_moderator", True),
    ({"name": "n", "max_members": 7}, "max_participants", 7),
    ({"name": "n", "member_pins": ["1234", "1234"]}, "member_pins", ("1234",)),
])
def test_field_mapping(body: dict, attr: str, value: object) -> None:
    assert parse_settings(body, now=T0, creating=True)[attr] == value


def test_update_of_pin_fields_keeps_existing_pin() -> None:
    assert "member_pins" not in parse_settings({"require_pin": True}, now=T0, creating=False,
                                               current_member_pins=("1234",))
    with pytest.raises(ControlError):
        parse_settings({"require_pin": True}, now=T0, creating=False)


def test_store_round_trip_and_restart(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "bridge.sqlite3"
    store = ConferenceStore(path)
    svc = ConferenceService(store, CONFIG, Live(), lambda: T0)
    conf = svc.create("a", {"name": "é ☃", "moderator_pins": ["9999"], "scheduled_for": "2030-03-01T00:00:00Z"})
    svc.update("a", conf.id, {"max_members": 12})
    store.close()
    store2 = ConferenceStore(path)
    svc2 = ConferenceService(store2, CONFIG, Live(), lambda: T0)
    again = svc2.get(conf.id)
    assert again == svc.get(conf.id)
    assert again is not None and again.max_participants == 12 and again.name == "é ☃"
    store2.close()


def test_record_ignores_unknown_keys() -> None:
    conf = Conference(id="conf_x", account_id="a", name="n", dial_in_code="12345678", created_at=T0)
    record = conf.to_record() | {"from_the_future": 1}
    assert Conference.from_record(record) == conf


def test_control_core_does_no_io() -> None:
    folder = Path(control_pkg.__file__).parent
    for source in folder.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in {"asyncio", "socket", "threading", "time", "sqlite3", "aiohttp"}, (
                    source.name, name)


def test_status_follows_who_is_in_and_changes_reach_the_live_room(svc: ConferenceService) -> None:
    conf = svc.create("a", {"name": "x"})
    assert conf.status == "created"
    svc.mark_empty(conf.id)                      # nobody was ever in: still "created"
    assert svc.get(conf.id).status == "created"  # type: ignore[union-attr]
    svc.mark_active(conf.id)
    svc.mark_empty(conf.id)
    assert svc.get(conf.id).status == "empty"  # type: ignore[union-attr]
    assert svc.resolve_dial(conf.dial_in_code) is not None   # an empty conference can be joined
    svc.mark_active(conf.id)
    assert svc.get(conf.id).status == "active"  # type: ignore[union-attr]
    changed = svc.update("a", conf.id, {"max_participants": 3})
    assert svc.live.changed == [changed]  # type: ignore[attr-defined]


def test_status_is_driven_by_the_event_stream(svc: ConferenceService) -> None:
    from bridge.control.events import ConferenceEnded, ParticipantJoined

    conf = svc.create("a", {"name": "x"})
    svc.on_event(ParticipantJoined(conf.id, participant_id="p1"))
    assert svc.get(conf.id).status == "active"  # type: ignore[union-attr]
    svc.on_event(ConferenceEnded(conf.id, reason="all_left"))
    assert svc.get(conf.id).status == "empty"  # type: ignore[union-attr]
