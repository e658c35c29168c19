"""Hold from a softphone, TCP signalling, and REST control of a live call."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.calls import dial_all, hang_up_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]


def test_hold_and_resume_from_baresip(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    specs = [("alice", "PCMU", 500.0), ("bob", "PCMU", 1000.0)]
    with participants(tmp_path, ports, specs) as people:
        alice, bob = people
        dial_all(bridge, people, "room1")
        t0 = time.monotonic()
        talk(2.0)
        alice.phone.hold()
        t_hold = time.monotonic() - t0
        talk(2.5)
        alice.phone.resume()
        t_resume = time.monotonic() - t0
        talk(2.0)
        hang_up_all(people)
        samples, rate = bob.heard()
        # Bob's recording starts roughly when the call did; allow half a second of slack.
        before = audio.tone_seconds(samples, rate, 500.0, 0.5, t_hold - 0.3)
        held = audio.tone_seconds(samples, rate, 500.0, t_hold + 0.5, t_resume - 0.3)
        after = audio.tone_seconds(samples, rate, 500.0, t_resume + 0.6, t_resume + 1.6)
        assert before > 0.8, f"alice not heard before hold ({before:.1f}s)"
        assert held == 0.0, f"alice heard while on hold ({held:.1f}s)"
        assert after > 0.5, f"alice not heard after resume ({after:.1f}s)"


def test_tcp_signalling(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    specs = [("tcp1", "PCMU", 500.0), ("tcp2", "PCMA", 1000.0)]
    with participants(tmp_path, ports, specs) as people:
        dial_all(bridge, people, "room1", transport="tcp")
        talk(2.0)
        hang_up_all(people)
        for listener, speaker in ((people[0], people[1]), (people[1], people[0])):
            samples, rate = listener.heard()
            assert audio.has_tone(samples, rate, speaker.freq, min_rel_db=-15, min_seconds=1.0)


def test_rest_mute_unmute_kick_live_call(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    specs = [("speaker", "PCMU", 500.0), ("listener", "PCMU", None)]
    base = "/v2/accounts/acct1/conferences/conf_room1/participants"
    with participants(tmp_path, ports, specs) as people:
        speaker, listener = people
        dial_all(bridge, people, "room1")
        status, body = bridge.api("GET", base)
        assert status == 200, body
        by_name = {p["caller_id_number"]: p for p in body["data"]}
        assert set(by_name) == {"speaker", "listener"}
        assert all(not p["muted"] for p in body["data"])
        pid = by_name["speaker"]["participant_id"]
        t0 = time.monotonic()
        talk(2.0)
        # Floor: the talker shows as talking with a level; the silent listener does not.
        status, flat = bridge.api("GET", "/v2/conferences/conf_room1/participants")
        floor = {p["phone_number"]: p for p in flat["participants"]}
        assert floor["speaker"]["talking"] is True and floor["speaker"]["level_dbov"] > -30, floor
        assert floor["listener"]["talking"] is False, floor
        status, body = bridge.api("POST", f"{base}/{pid}", {"data": {"action": "mute"}})
        assert status == 200, body
        t_mute = time.monotonic() - t0
        status, body = bridge.api("GET", base)
        assert {p["participant_id"]: p["muted"] for p in body["data"]}[pid] is True
        talk(2.0)
        status, body = bridge.api("POST", f"{base}/{pid}", {"data": {"action": "unmute"}})
        assert status == 200, body
        t_unmute = time.monotonic() - t0
        talk(2.0)
        status, _ = bridge.api("DELETE", f"{base}/{pid}")
        assert status in (200, 204)
        speaker.phone.wait_event("CALL_CLOSED", timeout=5)  # the kick reached it as a BYE
        listener.phone.hangup()
        listener.phone.wait_event("CALL_CLOSED", timeout=5)
        samples, rate = listener.heard()
        assert audio.tone_seconds(samples, rate, 500.0, 0.5, t_mute - 0.3) > 0.8
        assert audio.tone_seconds(samples, rate, 500.0, t_mute + 0.3, t_unmute - 0.2) == 0.0, "muted caller still heard"
        assert audio.tone_seconds(samples, rate, 500.0, t_unmute + 0.4, t_unmute + 1.5) > 0.5, "unmute did not bring it back"
        status, body = bridge.api("GET", base)
        assert [p["caller_id_number"] for p in body["data"]] == ["listener"] or body["data"] == []
