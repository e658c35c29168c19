"""Metrics collectors, readiness checks, the JSON log format and config reload reconciliation."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.config import ConfigError, parse_config
from bridge.control.events import ParticipantJoined, ParticipantLeft
from bridge.control.service import ConferenceService
from bridge.ops import metrics as metrics_mod
from bridge.ops.health import HealthSources, Readiness
from bridge.ops.logs import CallContextFilter, JsonFormatter
from bridge.ops.metrics import BridgeMetrics, Sources, sip_labels
from bridge.ops.reload import merge, restart_needed
from tests.api.conftest import FakeLive

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def samples(m: BridgeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def val(s: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return s[(name, tuple(sorted(labels.items())))]


# -- SIP counting -----------------------------------------------------------------------------


def test_sip_labels_bound_methods_and_codes() -> None:
    assert sip_labels(b"INVITE sip:a@b SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n") == ("request", "INVITE", None)
    assert sip_labels(b"FOO sip:a@b SIP/2.0\r\n\r\n") == ("request", "other", None)
    assert sip_labels(b"SIP/2.0 200 OK\r\nVia: x\r\ncseq: 7 bye\r\n\r\n") == ("response", "BYE", "200")
    assert sip_labels(b"SIP/2.0 599 Odd\r\nCSeq: 2 INVITE\r\n\r\n") == ("response", "INVITE", "5xx")
    assert sip_labels(b"SIP/2.0 200 OK\r\n\r\n") == ("response", "other", "200")
    assert sip_labels(b"\r\n\r\n") is None      # keep-alive
    assert sip_labels(b"SIP/2.0 abc\r\n") is None


def test_sip_counter_by_direction() -> None:
    m = BridgeMetrics()
    for _ in range(3):
        m.sip.received(b"OPTIONS sip:x@y SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n")
    m.sip.sent(b"SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\n\r\n")
    s = samples(m)
    assert val(s, "tutti_sip_requests_total", direction="in", method="OPTIONS") == 3
    assert val(s, "tutti_sip_responses_total", direction="out", method="OPTIONS", code="200") == 1


# -- the live collector -----------------------------------------------------------------------


def session(received: int, lost: int = 0, fraction: float = 0.0, concealed: int = 0) -> SimpleNamespace:
    stats = {
        "packets_received": received, "packets_sent": received, "cumulative_lost": lost,
        "fraction_lost": fraction, "jitter_ms": 3.0, "malformed": 1, "unknown_pt": 0, "foreign": 2,
        "rtcp_malformed": 0, "rtcp_foreign": 0,
        "jitter_buffer": {"received": received, "concealed": concealed, "late": 0, "duplicates": 0, "dropped": 0},
    }
    return SimpleNamespace(stats=lambda: stats)


def leg(pid: str, sess: Any, in_room: bool = True, in_lobby: bool = False, muted: bool = False) -> SimpleNamespace:
    participant = SimpleNamespace(on_hold=False, waiting=False, muted=muted)
    return SimpleNamespace(leg_id=pid, answer_due=None, in_room=in_room, in_lobby=in_lobby,
                           participant=participant, session=sess)


def test_collector_reads_live_legs_and_keeps_totals_of_ended_ones() -> None:
    m = BridgeMetrics()
    a = leg("part_a", session(100, fraction=0.0))
    b = leg("part_b", session(50, lost=5, fraction=0.1, concealed=5), muted=True)
    c = leg("part_c", None, in_room=False, in_lobby=True)
    legs = [a, b, c]
    room = SimpleNamespace(room=SimpleNamespace(participants_snapshot=lambda: [
        SimpleNamespace(level_dbov=-20.0), SimpleNamespace(level_dbov=-65.0)]))
    clock = SimpleNamespace(ticks=10, late_ticks=1, skipped_ticks=0, last_tick=4.0)
    m.attach(Sources(legs=lambda: legs, rooms=lambda: {"conf_x": room}, conferences=lambda: [],
                     clock=clock, now=lambda: 4.5, webhooks=lambda: {"dead": 2, "pending": 3}))
    s = samples(m)
    assert val(s, "tutti_calls", state="in_room") == 2
    assert val(s, "tutti_calls", state="lobby") == 1
    assert val(s, "tutti_participants", state="lobby") == 1
    assert val(s, "tutti_participants_muted") == 1
    assert val(s, "tutti_rtp_packets_received_total") == 150
    assert val(s, "tutti_rtp_packets_lost_total") == 5
    assert val(s, "tutti_rtp_dropped_packets_total", reason="foreign") == 4
    assert val(s, "tutti_participant_receive_loss_ratio_bucket", le="0.0") == 1
    assert val(s, "tutti_participant_receive_loss_ratio_bucket", le="0.1") == 2
    assert val(s, "tutti_participant_worst", quantity="receive_loss_ratio") == pytest.approx(0.1)
    assert val(s, "tutti_participant_worst", quantity="concealed_ratio") == pytest.approx(5 / 55)
    assert val(s, "tutti_participant_level_dbov_bucket", le="-60.0") == 1
    assert val(s, "tutti_media_clock_last_tick_age_seconds") == pytest.approx(0.5)
    assert val(s, "tutti_webhook_deliveries_total", outcome="dead") == 2
    assert val(s, "tutti_webhook_queue", state="pending") == 3
    # b ends: its counters move to the totals, which never go down.
    m.retire_session(b.session)
    legs.remove(b)
    s = samples(m)
    assert val(s, "tutti_rtp_packets_received_total") == 150
    assert val(s, "tutti_calls", state="in_room") == 1


def test_participant_events_and_recording_hook() -> None:
    m = BridgeMetrics()
    m.attach(Sources(legs=list, rooms=dict, conferences=list))
    m.events.on_event(ParticipantJoined("conf_x", participant_id="part_a"))
    m.events.on_event(ParticipantLeft("conf_x", participant_id="part_a", reason="kicked"))
    metrics_mod.use(m)
    metrics_mod.add_recording_bytes(640)
    s = samples(m)
    assert val(s, "tutti_participants_joined_total") == 1
    assert val(s, "tutti_participants_left_total", reason="kicked") == 1
    assert val(s, "tutti_recording_bytes_total") == 640


def test_a_broken_source_does_not_break_the_scrape() -> None:
    m = BridgeMetrics()

    def broken() -> list[Any]:
        raise RuntimeError("boom")

    m.attach(Sources(legs=broken, rooms=dict, conferences=list))
    assert b"tutti_media_tick_seconds" in m.render()


# -- readiness --------------------------------------------------------------------------------


def readiness(tmp_path: Path, *, last_tick: float | None = 9.99, running: bool = True,
              down: list[str] | None = None, alive: bool = True, db: Path | None = None) -> Readiness:
    clock = SimpleNamespace(running=running, last_tick=last_tick, period=0.02)
    return Readiness(HealthSources(sip_down=lambda: down or [], db_path=db or tmp_path / "b.sqlite3",
                                   clock=clock, now=lambda: 10.0, sender_alive=lambda: alive))


async def test_ready_when_everything_is_up(tmp_path: Path) -> None:
    checks, problems = await readiness(tmp_path).check()
    assert problems == []
    assert set(checks) == {"sip", "database", "media_clock", "event_sender"}


async def test_not_ready_reasons(tmp_path: Path) -> None:
    _, problems = await readiness(tmp_path, last_tick=9.5).check()
    assert problems == ["media clock last ticked 500 ms ago"]
    _, problems = await readiness(tmp_path, running=False).check()
    assert problems == ["media clock not running"]
    _, problems = await readiness(tmp_path, down=["udp"], alive=False).check()
    assert problems == ["SIP not listening on udp", "webhook sender stopped"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
async def test_not_ready_when_the_database_is_read_only(tmp_path: Path) -> None:
    db = tmp_path / "ro.sqlite3"
    db.touch()
    db.chmod(0o444)
    _, problems = await readiness(tmp_path, db=db).check()
    assert len(problems) == 1 and problems[0].startswith("database not writable")


async def test_not_ready_when_the_database_cannot_be_opened(tmp_path: Path) -> None:
    _, problems = await readiness(tmp_path, db=tmp_path / "missing-dir" / "b.sqlite3").check()
    assert len(problems) == 1 and problems[0].startswith("database not writable")
    await asyncio.sleep(0)


# -- logs -------------------------------------------------------------------------------------


def record(msg: str, *args: object, **extra: str) -> logging.LogRecord:
    rec = logging.LogRecord("bridge.calls", logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_json_lines_with_call_ids_remembered_after_the_call() -> None:
    f = CallContextFilter()
    fmt = JsonFormatter()
    first = record("%s answered", "part_1", participant_id="part_1", conference_id="conf_a", call_id="cid-1")
    f.filter(first)
    line = json.loads(fmt.format(first))
    assert line["message"] == "part_1 answered"
    assert (line["conference_id"], line["participant_id"], line["call_id"]) == ("conf_a", "part_1", "cid-1")
    assert {"timestamp", "level", "logger"} <= set(line)
    later = record("%s joined %s as %s", "part_1", "conf_a", "member")   # no extra: found by its id
    f.filter(later)
    assert json.loads(fmt.format(later))["call_id"] == "cid-1"
    f.lookup = lambda pid: ("conf_b", "cid-2") if pid == "part_2" else None
    live = record("%s held", "part_2")
    f.filter(live)
    assert (live.conference_id, live.call_id) == ("conf_b", "cid-2")   # type: ignore[attr-defined]
    plain = json.loads(fmt.format(record("bridge up")))
    assert "call_id" not in plain and "conference_id" not in plain


# -- reload -----------------------------------------------------------------------------------


BASE: dict[str, Any] = {
    "accounts": [{"id": "a1", "tokens": ["t1"]}],
    "rooms": [
        {"name": "keep", "dial_in_code": "1001", "account": "a1"},
        {"name": "pin", "dial_in_code": "1002", "account": "a1", "member_pins": ["1111"]},
        {"name": "gone", "dial_in_code": "1003", "account": "a1"},
    ],
}


def test_reload_reconciles_rooms(tmp_path: Path) -> None:
    config = parse_config({**BASE, "data_dir": str(tmp_path)})
    live = FakeLive()
    store = SimpleNamespace(load_all=lambda: [], put=lambda conf: None)
    service = ConferenceService(store, config, live, lambda: START)  # type: ignore[arg-type]
    service.mark_active("conf_keep")
    live.add("conf_gone", "part_x")
    rooms = [BASE["rooms"][0], {**BASE["rooms"][1], "member_pins": ["2222"]},
             {"name": "new", "dial_in_code": "1004", "account": "a1"}]
    new = parse_config({**BASE, "data_dir": str(tmp_path), "rooms": rooms})
    changes = service.reload_rooms(new)
    assert (changes.added, changes.changed, changes.removed) == (["new"], ["pin"], ["gone"])
    assert [c.id for c in live.changed] == ["conf_pin"]
    assert live.changed[0].member_pins == ("2222",)
    assert live.ended == ["conf_gone"]                       # callers in a removed room: ended
    assert service.resolve_dial("1003") is None and service.resolve_dial("gone") is None
    assert service.resolve_dial("1004") is not None and service.resolve_dial("new") is not None
    keep = service.get("conf_keep")
    assert keep is not None and keep.status == "active"      # untouched rooms keep their state


def test_restart_needed_and_merge() -> None:
    running = parse_config({**BASE, "sip": {"port": 5060}})
    new = parse_config({**BASE, "sip": {"port": 5070}, "log_level": "debug", "rooms": []})
    assert restart_needed(running, new) == ["sip.port"]
    merged = merge(running, new)
    assert merged.sip.port == 5060 and merged.rooms == () and merged.log_level == "debug"
    hooked = parse_config({**BASE, "webhooks": {"accounts": [{"account": "a1"}]}})
    with pytest.raises(ConfigError, match="unknown account"):
        merge(hooked, parse_config({"accounts": [{"id": "other"}]}))   # webhooks still name a1
