"""Operating the bridge with real baresip callers: metrics, readiness, JSON logs, live reload."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.calls import dial_all, hang_up_all, participants, talk
from tests.e2e.hostile import longest_gap_s
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import DEMO_TOKEN, BridgeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]

ADMIN = "test-admin-token"
OLD_PIN, NEW_PIN = "246813", "975312"


def get(bridge: BridgeProcess, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(bridge.base_url + path, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def scrape(bridge: BridgeProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, parsed by prometheus-client's own parser."""
    status, body = get(bridge, "/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def wait_log(bridge: BridgeProcess, text: str, count: int = 1, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while bridge.log_path.read_text(errors="replace").count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} x{count} not in the log:\n{bridge.log_tail()}"
        time.sleep(0.1)


def test_metrics_during_a_call_and_readiness_when_the_clock_stalls(
        bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUTTI_TEST_HOOKS", "1")
    bridge = bridge_factory(rtp={"io_worker": True})      # its metrics too, whatever the CPU count
    specs = [("alice", "PCMU", 500.0), ("bob", "PCMU", 1000.0)]
    with participants(tmp_path, ports, specs) as people:
        dial_all(bridge, people, "room1")
        talk(1.5)
        first = scrape(bridge)
        talk(2.0)
        second = scrape(bridge)
        assert value(first, "tutti_calls", state="in_room") == 2
        assert value(second, "tutti_participants", state="connected") == 2
        assert value(second, "tutti_rooms_live") == 1
        assert value(second, "tutti_participants_joined_total") == 2
        assert value(second, "tutti_sip_requests_total", direction="in", method="INVITE") == 2
        assert value(second, "tutti_sip_responses_total", direction="out", method="INVITE", code="200") == 2
        received = [value(s, "tutti_rtp_packets_received_total") for s in (first, second)]
        sent = [value(s, "tutti_rtp_packets_sent_total") for s in (first, second)]
        # Two callers at 50 packets/s each: about 200 more in 2 s each way.
        assert received[1] - received[0] > 120, received
        assert sent[1] - sent[0] > 120, sent
        assert value(second, "tutti_rtp_packets_lost_total") == 0
        assert value(second, "tutti_participant_worst", quantity="receive_loss_ratio") == 0
        assert value(second, "tutti_participant_receive_loss_ratio_gcount") == 2
        assert value(second, "tutti_media_tick_seconds_count") > value(first, "tutti_media_tick_seconds_count")
        # The calls' RTP went through the IO worker, and /metrics says so.
        assert value(second, "tutti_rtp_worker_up") == 1
        through = [value(s, "tutti_rtp_worker_datagrams_total", kind="received") for s in (first, second)]
        assert through[1] - through[0] > 120, through
        assert value(second, "tutti_rtp_worker_datagrams_total", kind="sent") > 120

        status, body = get(bridge, "/readyz")
        assert status == 200, body
        req = urllib.request.Request(bridge.base_url + "/test/media-clock/stall?seconds=2", method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
        time.sleep(0.3)
        status, body = get(bridge, "/readyz")
        answer = json.loads(body)
        assert status == 503, answer
        assert answer["status"] == "not_ready"
        assert any("media clock" in reason for reason in answer["reasons"]), answer
        assert answer["checks"]["sip"] == answer["checks"]["database"] == "ok"
        deadline = time.monotonic() + 8
        while get(bridge, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "still not ready after the stall"
            time.sleep(0.2)
        hang_up_all(people)
    after = scrape(bridge)
    assert value(after, "tutti_calls", state="in_room") == 0
    # Ended legs keep their packets in the totals: counters never go down.
    assert value(after, "tutti_rtp_packets_received_total") >= received[1]
    assert value(after, "tutti_participants_left_total", reason="hangup") == 2


def test_json_logs_carry_call_ids_and_never_a_pin(
        bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path) -> None:
    rooms = [{"name": "secure", "account": "acct1", "member_pins": [OLD_PIN]}]
    bridge = bridge_factory(rooms=rooms, log_format="json")
    with participants(tmp_path, ports, [("member", "PCMU", None)]) as people:
        dial_all(bridge, people, "secure")
        time.sleep(1.0)
        people[0].phone.send_dtmf(OLD_PIN + "#")
        wait_log(bridge, "joined conf_secure as member")
        talk(0.5)
        hang_up_all(people)
    wait_log(bridge, "left conf_secure")
    text = bridge.log_path.read_text()
    assert OLD_PIN not in text
    assert DEMO_TOKEN not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"timestamp", "level", "logger", "message"} <= set(rec) for rec in lines)
    assert not [rec for rec in lines if re.search(r"DTMF [0-9]", rec["message"])]
    about_call = [rec for rec in lines if "part_" in rec["message"]]
    assert len(about_call) >= 3     # answered, DTMF, joined, left
    for rec in about_call:
        assert rec.get("participant_id", "").startswith("part_"), rec
        assert rec.get("call_id"), rec
    joined = next(rec for rec in about_call if "joined" in rec["message"])
    assert joined["conference_id"] == "conf_secure"


def admin_reload(bridge: BridgeProcess) -> tuple[int, Any]:
    return bridge.api("POST", "/v2/admin/reload", {}, token=ADMIN)


def test_reload_adds_a_room_and_changes_a_pin_while_a_call_goes_on(
        bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path) -> None:
    rooms: list[dict[str, Any]] = [
        {"name": "live", "account": "acct1"},
        {"name": "locked", "account": "acct1", "member_pins": [OLD_PIN]},
    ]
    bridge = bridge_factory(rooms=rooms, admin={"tokens": [ADMIN]})
    specs = [("alice", "PCMU", 500.0), ("bob", "PCMU", 1000.0), ("carol", "PCMU", None), ("dave", "PCMU", None)]
    with participants(tmp_path, ports, specs, seconds=40.0) as people:
        alice, bob, carol, dave = people
        dial_all(bridge, [alice, bob], "live")
        talk(2.0)
        assert bridge.api("GET", "/v2/conferences/conf_fresh")[0] == 404

        bridge.rooms = [rooms[0], {**rooms[1], "member_pins": [NEW_PIN]}, {"name": "fresh", "account": "acct1"}]
        bridge.write_config()
        assert bridge.proc is not None
        bridge.proc.send_signal(signal.SIGHUP)
        wait_log(bridge, "configuration reloaded (SIGHUP)")
        assert "rooms added ['fresh'], changed ['locked'], removed none" in bridge.log_path.read_text()

        dial_all(bridge, [carol], "fresh")                      # the new room answers
        wait_log(bridge, "joined conf_fresh as member")

        dial_all(bridge, [dave], "locked")                      # the next caller is asked for the PIN
        time.sleep(1.0)
        dave.phone.send_dtmf(OLD_PIN + "#")
        time.sleep(2.0)
        assert "joined conf_locked" not in bridge.log_path.read_text()   # the old PIN is refused
        dave.phone.send_dtmf(NEW_PIN + "#")
        wait_log(bridge, "joined conf_locked as member")

        good = bridge.workdir / "config.yaml"
        kept = good.read_text()
        good.write_text(kept.replace("name: fresh", "name: fresh\n  rate: 1234"))
        code, body = admin_reload(bridge)
        assert code == 400, body
        assert body["error"] == "invalid_config"
        assert "rooms.2.rate" in body["message"], body
        assert bridge.api("GET", "/v2/conferences/conf_fresh")[0] == 200   # nothing changed
        good.write_text(kept)
        code, body = admin_reload(bridge)
        assert code == 200, body
        assert body["rooms"] == {"added": [], "changed": [], "removed": []}
        assert bridge.api("POST", "/v2/admin/reload", {}, token=DEMO_TOKEN)[0] == 401   # account tokens are not admin

        talk(1.5)
        hang_up_all(people)
    samples, rate = alice.heard()
    # From after the join beeps to the end: the reload, the new callers and the refused file
    # all happened in this span; alice heard bob's tone without a gap.
    span = audio.segment(samples, rate, 1.5, len(samples) / rate - 0.5)
    assert len(span) > 6 * rate       # the reload came 2 s in
    gap = longest_gap_s(span, rate)
    assert gap <= 0.1, f"alice's audio had a {gap * 1000:.0f} ms gap across the reload"
    assert audio.has_tone(span, rate, 1000.0, min_rel_db=-15, min_seconds=len(span) / rate - 1.0)


def test_start_removes_what_a_crash_left_mid_upload(bridge_factory: Callable[..., BridgeProcess],
                                                    tmp_path: Path) -> None:
    """An upload killed between write and rename left ``media/.<id>.upload.ogg``: the next start removes it."""
    workdir = tmp_path / "crashed"
    leftover = workdir / "data" / "media" / ".media_0123.upload.ogg"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"OggS" + bytes(1000))
    bridge = bridge_factory(workdir=workdir)
    assert not leftover.exists()
    assert "removed 1 temporary file(s)" in bridge.log_path.read_text(errors="replace")
