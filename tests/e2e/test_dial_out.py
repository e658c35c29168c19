"""Dial-out end to end: the bridge calls a real baresip (auto-answer) into a room through a
trunk, and a SIPp trunk that answers busy; statuses follow in the participant listing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.calls import participants
from tests.e2e.peers import audio
from tests.e2e.peers.baresip import Baresip
from tests.e2e.peers.ports import PortAllocator
from tests.e2e.peers.sipp import SippProcess, reject_uas_scenario
from tests.support.bridge_proc import BridgeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]
LISTING = "/v2/conferences/conf_room2/participants"


def wait_status(bridge: BridgeProcess, pid: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        code, body = bridge.api("GET", LISTING)
        assert code == 200, body
        person = next((p for p in body["participants"] if p["id"] == pid), None)
        if person is not None:
            if not seen or seen[-1] != person["status"]:
                seen.append(person["status"])
            if person["status"] == status:
                return dict(person, seen=seen)
        time.sleep(0.1)
    raise AssertionError(f"{pid} never {status} (saw {seen})\n{bridge.log_tail()}")


def test_a_dialled_baresip_answers_joins_and_both_sides_hear_each_other(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path,
) -> None:
    callee_ports = ports.baresip()
    bridge = bridge_factory(trunks=[{"name": "lab", "host": "127.0.0.1", "port": callee_ports.sip,
                                     "from_user": "bridge", "from_display": "Tutti"}],
                            dial_out={"default_trunk": "lab"})
    mic = audio.tone_wav(tmp_path / "callee-600.wav", 600.0, 30.0, 8000, 1)
    with Baresip("15550001", tmp_path, callee_ports, mic_wav=mic, auto_answer=True) as callee, \
            participants(tmp_path, ports, [("caller", "PCMU", 1000.0)]) as (caller,):
        caller.phone.dial(f"sip:room2@127.0.0.1:{bridge.sip_port}")
        caller.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        code, body = bridge.api("POST", LISTING, {"phone_number": "15550001", "name": "Callee",
                                                  "role": "presenter"})
        assert code == 200 and body["status"] == "dialing" and body["joined_at"] is None, body
        connected = wait_status(bridge, body["id"], "connected")
        assert connected["joined_at"] is not None and connected["role"] == "presenter"
        time.sleep(2.5)
        caller.phone.hangup()
        code, _ = bridge.api("DELETE", f"{LISTING}/{body['id']}")     # our BYE on the dialled call
        assert code == 204
        callee.wait_event("CALL_CLOSED", timeout=10)
        heard_by_callee, rate = callee.heard(timeout=10)
        heard_by_caller, crate = caller.heard()
    assert audio.has_tone(heard_by_callee, rate, 1000.0), "the callee never heard the room"
    assert audio.has_tone(heard_by_caller, crate, 600.0), "the room never heard the callee"
    left = wait_status(bridge, body["id"], "disconnected")
    assert left["leave_reason"] == "kicked"


def test_a_busy_trunk_rejects_and_no_trunk_is_a_409(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path,
) -> None:
    trunk_ports = ports.sipp()
    scenario = tmp_path / "busy.xml"
    scenario.write_text(reject_uas_scenario(486, "Busy Here"))
    bridge = bridge_factory(trunks=[{"name": "busy", "host": "127.0.0.1", "port": trunk_ports.sip}],
                            dial_out={"default_trunk": "busy"})
    sipp = SippProcess(scenario, "", local_port=trunk_ports.sip, media_port=trunk_ports.media, timeout=20,
                       workdir=tmp_path / "sipp")
    try:
        time.sleep(0.5)
        code, body = bridge.api("POST", LISTING, {"phone_number": "+12025551234"})
        assert code == 200, body
        rejected = wait_status(bridge, body["id"], "rejected")
        assert rejected["leave_reason"] == "busy"
        result = sipp.wait(15)
        assert result.returncode == 0, result
    finally:
        if sipp.running():
            sipp.proc.kill()
    plain = bridge_factory()
    code, body = plain.api("POST", LISTING, {"phone_number": "+12025551234"})
    assert code == 409 and body["error"] == "dial_out_not_configured"
