"""Telnyx ``POST /v2/calls`` legs report ``call.initiated`` (outgoing, bridging),
``call.answered`` and ``call.hangup`` to the request's ``webhook_url``, with its ``client_state``,
signed so the telnyx library verifies them; a busy callee is ``user_busy`` with the SIP 486.
The trunk is the small UAS of the dial-out tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import telnyx
from telnyx.lib.webhook_verification import verify_webhook_signature

from tests.e2e.peers.mini_uas import MiniUas
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.vendors.test_telnyx_api import telnyx_client
from tests.support.webhook_receiver import ThreadedReceiver

pytestmark = pytest.mark.e2e


def calls_seen(receiver: ThreadedReceiver, ccid: str) -> list[dict]:
    out = []
    for r in receiver.receiver.accepted:
        data = json.loads(r.body)["data"]
        if (r.path == "/calls" and data["event_type"].startswith("call.")
                and data["payload"].get("call_control_id") == ccid):
            out.append(data)
    return out


def wait_kinds(receiver: ThreadedReceiver, ccid: str, kinds: list[str], timeout: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = calls_seen(receiver, ccid)
        if [e["event_type"] for e in got] == kinds:
            return got
        time.sleep(0.1)
    raise AssertionError(f"wanted {kinds}, got {[e['event_type'] for e in calls_seen(receiver, ccid)]}")


@pytest.mark.timeout(90)
def test_dialled_legs_send_call_webhooks(
    bridge_factory: Callable[..., BridgeProcess], receiver: ThreadedReceiver, ports: PortAllocator,
) -> None:
    uas_port = ports.port()
    url = receiver.receiver.url
    bridge = bridge_factory(trunks=[{"name": "lab", "host": "127.0.0.1", "port": uas_port}],
                            webhooks={"allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.2,
                                      "max_backoff_s": 1})
    _, keys = bridge.api("GET", "/v2/webhooks/keys")
    client = telnyx_client(bridge)
    with MiniUas(uas_port, behaviour=lambda n: 486 if n == "15550999" else "answer"):
        call = client.calls.dial(connection_id="lab", from_="+15550000", to="15550123",
                                 webhook_url=url + "/calls", client_state="ZGlhbA==",
                                 conference_config={"id": "conf_room2"}).data
        assert call is not None
        ccid = call.call_control_id
        wait_kinds(receiver, ccid, ["call.initiated", "call.answered"])
        code, _ = bridge.api("DELETE", f"/v2/conferences/conf_room2/participants/{ccid}")
        assert code == 204
        got = wait_kinds(receiver, ccid, ["call.initiated", "call.answered", "call.hangup"])
        busy = client.calls.dial(connection_id="lab", from_="+15550000", to="15550999",
                                 webhook_url=url + "/calls", conference_config={"id": "conf_room2"}).data
        assert busy is not None
        busy_got = wait_kinds(receiver, busy.call_control_id, ["call.initiated", "call.hangup"])
        # client_state without anywhere to send it does nothing: refused.
        with pytest.raises(telnyx.UnprocessableEntityError):
            client.calls.dial(connection_id="lab", from_="+15550000", to="15550124", client_state="eA==",
                              conference_config={"id": "conf_room2"})
        with pytest.raises(telnyx.UnprocessableEntityError):     # not an address we may call
            client.calls.dial(connection_id="lab", from_="+15550000", to="15550125",
                              webhook_url="http://169.254.169.254/latest", conference_config={"id": "conf_room2"})
    initiated, answered, hangup = (e["payload"] for e in got)
    assert initiated["direction"] == "outgoing" and initiated["state"] == "bridging"
    assert initiated["from"] == "+15550000" and initiated["to"] == "15550123"
    assert initiated["connection_id"] == "lab" and initiated["client_state"] == "ZGlhbA=="
    assert answered["state"] == "answered"
    assert hangup["hangup_cause"] == "normal_clearing" and hangup["hangup_source"] == "caller"
    busy_hangup = busy_got[1]["payload"]
    assert busy_hangup["hangup_cause"] == "user_busy" and busy_hangup["sip_hangup_cause"] == "486"
    assert busy_hangup["hangup_source"] == "callee"
    for r in receiver.receiver.accepted:
        if r.path == "/calls":
            verify_webhook_signature(r.body.decode(), r.headers, keys["telnyx_public_key"])


@pytest.mark.timeout(60)
def test_audian_dial_outs_report_call_webhooks_to_the_conference(
    bridge_factory: Callable[..., BridgeProcess], receiver: ThreadedReceiver, ports: PortAllocator,
) -> None:
    """A participant added by phone over the Audian API: its progress reaches the conference's
    Telnyx-form webhook URL as call.* events (with the conference's client_state)."""
    uas_port = ports.port()
    bridge = bridge_factory(trunks=[{"name": "lab", "host": "127.0.0.1", "port": uas_port}],
                            dial_out={"default_trunk": "lab"},
                            webhooks={"allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.2,
                                      "max_backoff_s": 1})
    status, made = bridge.api("POST", "/v2/conferences", {"name": "outbound", "client_state": "b3V0",
                                                           "webhook_url": receiver.receiver.url + "/calls"})
    assert status == 201, made
    with MiniUas(uas_port, behaviour=lambda n: 486 if n == "+12025550999" else "answer"):
        code, ok = bridge.api("POST", f"/v2/conferences/{made['id']}/participants", {"phone_number": "+12025550111"})
        assert code == 200, ok
        code, busy = bridge.api("POST", f"/v2/conferences/{made['id']}/participants",
                                {"phone_number": "+12025550999"})
        assert code == 200, busy
        wait_kinds(receiver, ok["id"], ["call.initiated", "call.answered"])
        got = wait_kinds(receiver, busy["id"], ["call.initiated", "call.hangup"])
        code, _ = bridge.api("DELETE", f"/v2/conferences/{made['id']}/participants/{ok['id']}")
        assert code == 204
        done = wait_kinds(receiver, ok["id"], ["call.initiated", "call.answered", "call.hangup"])
    initiated, hangup = (e["payload"] for e in got)
    assert initiated["to"] == "+12025550999" and initiated["direction"] == "outgoing"
    assert initiated["client_state"] == "b3V0" and initiated["connection_id"] == "lab"
    assert hangup["hangup_cause"] == "user_busy" and hangup["sip_hangup_cause"] == "486"
    assert done[2]["payload"]["hangup_cause"] == "normal_clearing"
