"""Conference lifecycle against a running bridge: restarts, deletion, schedules, dead legs."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.e2e.calls import dial_all, heard_alone_after_prompt, participants
from tests.e2e.peers.ports import PortAllocator
from tests.e2e.peers.sipp import SippProcess
from tests.support.bridge_proc import BridgeProcess

pytestmark = pytest.mark.e2e


def test_conference_survives_restart(bridge_factory: Callable[..., BridgeProcess], tmp_path: Path) -> None:
    first = bridge_factory(workdir=tmp_path / "b")
    status, created = first.api("POST", "/v2/conferences", {
        "name": "Client Quarterly Review", "max_participants": 25, "require_pin": True, "pin": "5678",
        "record": True, "mute_on_entry": True,
    })
    assert status == 201, created
    assert first.terminate() == 0
    second = bridge_factory(workdir=tmp_path / "b")  # same data directory, new process
    status, again = second.api("GET", f"/v2/conferences/{created['id']}")
    assert status == 200, again
    for key in ("id", "name", "max_participants", "require_pin", "record", "mute_on_entry", "dial_in_code",
                "created_at", "expires_at"):
        assert again[key] == created[key], key


@pytest.mark.usefixtures("need_baresip")
def test_delete_ends_calls_with_closing_prompt(bridge: BridgeProcess, ports: PortAllocator,
                                               tmp_path: Path) -> None:
    status, conf = bridge.api("POST", "/v2/conferences", {"name": "short-lived"})
    assert status == 201, conf
    with participants(tmp_path, ports, [("a", "PCMU", None), ("b", "PCMU", None)]) as people:
        dial_all(bridge, people, conf["dial_in_code"])
        status, _ = bridge.api("DELETE", f"/v2/conferences/{conf['id']}")
        assert status in (200, 204)
        t0 = time.monotonic()
        for p in people:
            p.phone.wait_event("CALL_CLOSED", timeout=12)
        # The closing prompt ("This conference has ended. Goodbye.") plays before the BYE.
        assert time.monotonic() - t0 > 1.0
    status, body = bridge.api("GET", f"/v2/conferences/{conf['id']}")
    assert body["status"] == "ended"


@pytest.mark.usefixtures("need_baresip")
def test_scheduled_conference_not_started_yet(bridge: BridgeProcess, ports: PortAllocator,
                                              tmp_path: Path) -> None:
    later = (datetime.now(timezone.utc) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, conf = bridge.api("POST", "/v2/conferences", {"name": "later", "scheduled_for": later})
    assert status == 201, conf
    with participants(tmp_path, ports, [("early", "PCMU", None)]) as people:
        dial_all(bridge, people, conf["dial_in_code"])
        people[0].phone.wait_event("CALL_CLOSED", timeout=12)
    assert "refused: not_started" in bridge.log_path.read_text()


@pytest.mark.usefixtures("need_sipp")
def test_rtp_inactivity_timeout_hangs_up(bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator,
                                         tmp_path: Path) -> None:
    bridge = bridge_factory(rtp={"inactivity_timeout_s": 2})
    p = ports.sipp()
    # expect_bye sends no RTP at all: the bridge must give up on the leg and send BYE.
    silent = SippProcess("expect_bye", f"127.0.0.1:{bridge.sip_port}", local_port=p.sip, media_port=p.media,
                         service="room1", timeout=15, workdir=tmp_path / "sipp")
    silent.wait(20).assert_ok()
    assert "no RTP for" in bridge.log_path.read_text()


@pytest.mark.usefixtures("need_baresip")
def test_uploaded_hold_music_plays_to_a_lone_caller(bridge: BridgeProcess, ports: PortAllocator,
                                                    tmp_path: Path) -> None:
    import urllib.request

    import numpy as np

    from tests.e2e.peers import audio

    music = audio.write_wav(tmp_path / "music.wav", 0.3 * np.sin(2 * np.pi * 750.0 * np.arange(16000 * 2) / 16000),
                            16000)
    req = urllib.request.Request(bridge.base_url + "/v2/media?media_name=lobby-tune", data=music.read_bytes(),
                                 method="POST", headers={"X-Auth-Token": "test-token-acct1",
                                                         "Content-Type": "audio/wav"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
    status, conf = bridge.api("POST", "/v2/conferences", {"name": "tuneful", "hold_music_id": "lobby-tune"})
    assert status == 201, conf
    after_prompt, rate = heard_alone_after_prompt(bridge, tmp_path, ports, conf["dial_in_code"])
    assert audio.has_tone(after_prompt, rate, 750.0, min_rel_db=-6, min_seconds=1.5), "uploaded music not heard"
