"""Settings changed over the API while callers are in reach the live room (real baresip callers)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.calls import dial_all, hang_up_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]


def status_of(bridge: BridgeProcess, conf_id: str) -> str:
    code, body = bridge.api("GET", f"/v2/conferences/{conf_id}")
    assert code == 200, body
    return str(body["status"])


def test_cap_and_mute_on_entry_changed_mid_meeting(bridge: BridgeProcess, ports: PortAllocator,
                                                   tmp_path: Path) -> None:
    code, conf = bridge.api("POST", "/v2/conferences", {"name": "live", "max_participants": 10})
    assert code == 201, conf
    cid = conf["id"]
    specs = [("alice", "PCMU", 500.0), ("late", "PCMU", 1000.0), ("muted", "PCMU", 1500.0)]
    with participants(tmp_path, ports, specs) as people:
        alice, late, muted = people
        dial_all(bridge, [alice], cid)
        assert status_of(bridge, cid) == "active"
        code, body = bridge.api("PATCH", f"/v2/conferences/{cid}", {"max_participants": 1, "mute_on_entry": True})
        assert code == 200, body
        late.phone.dial(f"sip:{cid}@127.0.0.1:{bridge.sip_port}")
        closed = late.phone.wait_event("CALL_CLOSED", timeout=10)
        assert "486" in str(closed), closed                       # the lowered cap holds at once
        code, body = bridge.api("PATCH", f"/v2/conferences/{cid}", {"max_participants": 10})
        assert code == 200, body
        dial_all(bridge, [muted], cid)                           # joins muted (mute_on_entry)
        t_join = time.monotonic()
        talk(3.0)
        hang_up_all([alice, muted])
        joined_after = time.monotonic() - t_join
    samples, rate = alice.heard()
    after = audio.segment(samples, rate, len(samples) / rate - joined_after + 0.5, len(samples) / rate - 0.3)
    level = audio.tone_level_db(after, rate, 1500.0)
    assert level < -30, f"the caller who joined after mute_on_entry was heard at {level:.1f} dB"
    deadline = time.monotonic() + 5
    while status_of(bridge, cid) != "empty" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status_of(bridge, cid) == "empty"                     # status follows reality


def test_api_start_releases_callers_waiting_for_the_host(bridge: BridgeProcess, ports: PortAllocator,
                                                         tmp_path: Path) -> None:
    code, conf = bridge.api("POST", "/v2/conferences", {"name": "wait", "start_conference_on_create": False})
    assert code == 201, conf
    cid = conf["id"]
    # Tones well above the hold music's notes (294-587 Hz): at 500 Hz the music's own spectral
    # leakage (about -25 dB) would read as "heard the other caller".
    specs = [("m1", "PCMU", 1500.0), ("m2", "PCMU", 1000.0)]
    with participants(tmp_path, ports, specs) as people:
        dial_all(bridge, people, cid)
        talk(7.0)                            # waiting: the 3.3 s "please wait" prompt, then hold music
        code, body = bridge.api("PATCH", f"/v2/conferences/{cid}", {"start_conference_on_create": True})
        assert code == 200, body
        started = time.monotonic()
        talk(3.0)
        hang_up_all(people)
        since_start = time.monotonic() - started
    for p, other in ((people[0], people[1]), (people[1], people[0])):
        samples, rate = p.heard()
        end = len(samples) / rate
        # Hold music only (its notes avoid the test tones; the prompt's speech does not).
        before = audio.segment(samples, rate, end - since_start - 2.5, end - since_start - 0.5)
        after = audio.segment(samples, rate, end - since_start + 0.5, end - 0.3)
        assert audio.tone_level_db(before, rate, other.freq) < -30, f"{p.name} heard {other.name} while waiting"
        assert audio.has_tone(after, rate, other.freq, min_rel_db=-15, min_seconds=1.0), \
            f"{p.name} did not hear {other.name} after the API start"
