"""Dial-out end to end: the bridge calls a real baresip (auto-answer) into a room through a
trunk, and a SIPp trunk that answers busy; statuses follow in the participant listing."""

from __future__ import annotations

import hashlib
import json
import re
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


def _trunk(bridge_factory: Callable[..., BridgeProcess], port: int, **trunk: Any) -> BridgeProcess:
    return bridge_factory(trunks=[{"name": "sipp", "host": "127.0.0.1", "port": port, **trunk}],
                          dial_out={"default_trunk": "sipp", "no_answer_timeout_s": 5})


def test_no_answer_is_cancelled_by_our_timer_and_the_487_acked(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path,
) -> None:
    trunk_ports = ports.sipp()
    bridge = _trunk(bridge_factory, trunk_ports.sip)
    sipp = SippProcess("trunk_no_answer", "", local_port=trunk_ports.sip, media_port=trunk_ports.media,
                       timeout=25, workdir=tmp_path / "sipp")
    try:
        time.sleep(0.5)
        code, body = bridge.api("POST", LISTING, {"phone_number": "+12025550100"})
        assert code == 200, body
        assert wait_status(bridge, body["id"], "rejected", timeout=12)["leave_reason"] == "no_answer"
        result = sipp.wait(10)          # it saw our CANCEL and our ACK of its 487
        assert result.returncode == 0, (result.stdout, result.stderr)
    finally:
        if sipp.running():
            sipp.proc.kill()


@pytest.mark.parametrize("status", [401, 407])
def test_a_digest_challenge_is_answered_with_the_trunk_credentials(
    status: int, bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path,
) -> None:
    trunk_ports = ports.sipp()
    bridge = _trunk(bridge_factory, trunk_ports.sip, username="alice", password="secret")
    workdir = tmp_path / "sipp"
    sipp = SippProcess(f"trunk_digest_{status}", "", local_port=trunk_ports.sip, media_port=trunk_ports.media,
                       timeout=25, workdir=workdir, extra_args=["-trace_msg"])
    try:
        time.sleep(0.5)
        code, body = bridge.api("POST", LISTING, {"phone_number": "+12025550200", "role": "operator"})
        assert code == 200, body
        wait_status(bridge, body["id"], "connected")      # the 200 came after our credentials
        code, _ = bridge.api("DELETE", f"{LISTING}/{body['id']}")
        assert code == 204
        result = sipp.wait(10)          # it got our BYE
        assert result.returncode == 0, (result.stdout, result.stderr)
    finally:
        if sipp.running():
            sipp.proc.kill()
    # Check the digest independently (SIPp verified the 401 case itself).
    trace = next(workdir.glob("*messages.log")).read_text(errors="replace")
    header = "Proxy-Authorization" if status == 407 else "Authorization"
    line = next(x for x in trace.splitlines() if x.startswith(header + ":"))
    fields = dict(re.findall(r'(\w+)="?([^",]+)"?', line.split(":", 1)[1]))
    ha1 = hashlib.md5(f"alice:{fields['realm']}:secret".encode()).hexdigest()
    ha2 = hashlib.md5(f"INVITE:{fields['uri']}".encode()).hexdigest()
    assert fields["response"] == hashlib.md5(f"{ha1}:{fields['nonce']}:{ha2}".encode()).hexdigest()


def test_send_pin_via_sms_posts_the_pin_to_the_gateway(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path,
) -> None:
    from tests.support.webhook_receiver import ThreadedReceiver

    gateway = ThreadedReceiver()
    try:
        bridge = bridge_factory(trunks=[{"name": "void", "host": "127.0.0.1", "port": ports.port()}],
                                dial_out={"default_trunk": "void", "sms_gateway_url": gateway.receiver.url + "/sms"})
        code, conf = bridge.api("POST", "/v2/conferences", {"name": "Board", "pin": "4321"})
        assert code == 201, conf
        path = f"/v2/conferences/{conf['id']}/participants"
        code, body = bridge.api("POST", path, {"phone_number": "+12025550300", "send_pin_via_sms": True})
        assert code == 200, body
        assert gateway.wait_for(1, timeout=10)
        (sms,) = gateway.receiver.accepted
        assert json.loads(sms.body) == {"to": "+12025550300", "text": "Board: your PIN is 4321 (dial-in code "
                                        f"{conf['dial_in_code']})."}
        assert "4321" not in bridge.log_path.read_text()          # the PIN is never logged
        code, plain = bridge.api("POST", "/v2/conferences", {"name": "Open"})
        code, body = bridge.api("POST", f"/v2/conferences/{plain['id']}/participants",
                                {"phone_number": "+12025550301", "send_pin_via_sms": True})
        assert code == 400 and body["error"] == "no_pin"
    finally:
        gateway.close()


def test_the_telnyx_library_dials_a_number_into_a_conference(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path,
) -> None:
    import telnyx

    from tests.support.bridge_proc import DEMO_TOKEN

    callee_ports = ports.baresip()
    bridge = bridge_factory(trunks=[{"name": "lab", "host": "127.0.0.1", "port": callee_ports.sip}])
    client = telnyx.Telnyx(api_key=DEMO_TOKEN, base_url=bridge.base_url + "/telnyx/v2", max_retries=0)
    mic = audio.tone_wav(tmp_path / "callee-700.wav", 700.0, 30.0, 8000, 1)
    with Baresip("15550002", tmp_path, callee_ports, mic_wav=mic, auto_answer=True) as callee, \
            participants(tmp_path, ports, [("caller", "PCMU", 1000.0)]) as (caller,):
        caller.phone.dial(f"sip:room2@127.0.0.1:{bridge.sip_port}")
        caller.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        call = client.calls.dial(connection_id="lab", from_="+15550000", to="15550002", timeout_secs=20,
                                 conference_config={"id": "conf_room2", "start_conference_on_enter": True})
        assert call.data is not None and call.data.call_control_id
        joined = wait_status(bridge, call.data.call_control_id, "connected")
        assert joined["role"] == "presenter"
        time.sleep(2.0)
        code, _ = bridge.api("DELETE", f"{LISTING}/{call.data.call_control_id}")
        assert code == 204
        callee.wait_event("CALL_CLOSED", timeout=10)
        heard, rate = callee.heard(timeout=10)
        caller.phone.hangup()
        heard_by_caller, crate = caller.heard()
    assert audio.has_tone(heard, rate, 1000.0) and audio.has_tone(heard_by_caller, crate, 700.0)
    with pytest.raises(telnyx.UnprocessableEntityError):          # a trunk that does not exist: 422
        client.calls.dial(connection_id="nope", from_="+15550000", to="15550003",
                          conference_config={"id": "conf_room2"})
