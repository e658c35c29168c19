"""Telnyx call control, end to end with the official ``telnyx`` library (base URL changed only):
baresip calls to an application's SIP user are parked (``call.initiated`` at the app's webhook
URL), answered over the API, one becomes a conference and the other joins it, they hear each
other (tones by FFT), hang-ups are reported (``call.hangup``), and a parked call nobody answers
times out (``hangup_cause: timeout``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from telnyx.lib.webhook_verification import verify_webhook_signature

from tests.e2e.calls import participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.vendors.test_telnyx_api import telnyx_client
from tests.support.webhook_receiver import ThreadedReceiver

pytestmark = pytest.mark.e2e


def events(receiver: ThreadedReceiver, path: str = "/cc") -> list[dict[str, object]]:
    return [json.loads(r.body)["data"] for r in receiver.receiver.accepted if r.path == path]


def wait_events(receiver: ThreadedReceiver, event_type: str, count: int, timeout: float = 15.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [e for e in events(receiver) if e["event_type"] == event_type]
        if len(got) >= count:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{count} x {event_type} not received: {[e['event_type'] for e in events(receiver)]}")


@pytest.mark.usefixtures("need_baresip")
@pytest.mark.timeout(150)
def test_parked_calls_answered_bridged_and_hung_up(
    bridge_factory: Callable[..., BridgeProcess], receiver: ThreadedReceiver, ports: PortAllocator, tmp_path: Path,
) -> None:
    url = receiver.receiver.url
    bridge = bridge_factory(
        rooms=[],
        webhooks={"allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.2, "max_backoff_s": 1},
        call_control=[
            {"name": "support-app", "account": "acct1", "webhook_url": url + "/cc", "sip_users": ["4000"]},
            {"name": "slow-app", "account": "acct1", "webhook_url": url + "/cc", "sip_users": ["4001"],
             "answer_timeout_s": 2},
        ],
    )
    status, keys = bridge.api("GET", "/v2/webhooks/keys")
    client = telnyx_client(bridge)
    uri = f"sip:{{}}@127.0.0.1:{bridge.sip_port}"
    specs = [("alice", "PCMU", 500.0), ("bob", "PCMU", 1000.0), ("carol", "PCMU", None)]
    with participants(tmp_path, ports, specs) as people:
        alice, bob, carol = people
        alice.phone.dial(uri.format("4000"))
        a_id = str(wait_events(receiver, "call.initiated", 1)[0]["payload"]["call_control_id"])  # type: ignore[index]
        bob.phone.dial(uri.format("4000"))
        b_id = str(wait_events(receiver, "call.initiated", 2)[1]["payload"]["call_control_id"])  # type: ignore[index]
        initiated = wait_events(receiver, "call.initiated", 2)[0]["payload"]
        assert initiated["state"] == "parked" and initiated["direction"] == "incoming"  # type: ignore[index]
        assert initiated["to"] == "4000" and initiated["connection_id"] == "support-app"  # type: ignore[index]
        # The unanswered third call times out.
        carol.phone.dial(uri.format("4001"))
        client.calls.actions.answer(a_id, client_state="YWxpY2U=")
        client.calls.actions.answer(b_id)
        alice.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        bob.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        answered = wait_events(receiver, "call.answered", 2)
        assert {e["payload"]["call_control_id"] for e in answered} == {a_id, b_id}  # type: ignore[index]
        conf = client.conferences.create(call_control_id=a_id, name="support", beep_enabled="never").data
        assert conf is not None and conf.record_type == "conference" and conf.name == "support"
        joined = client.conferences.actions.join(conf.id, call_control_id=b_id)
        assert joined.data is not None and joined.data.result == "ok"
        t0 = time.monotonic()
        talk(3.0)
        listed = client.conferences.list_participants(conf.id).data
        assert sorted(p.call_control_id for p in listed) == sorted([a_id, b_id])
        assert all(p.status == "joined" for p in listed)
        client.calls.actions.hangup(a_id)
        alice.phone.wait_event("CALL_CLOSED", timeout=10)
        t_end = time.monotonic() - t0
        bob.phone.hangup()
        bob.phone.wait_event("CALL_CLOSED", timeout=10)
        carol.phone.wait_event("CALL_CLOSED", timeout=10)
        heard_a, rate_a = alice.heard()
        heard_b, rate_b = bob.heard()
    # They hear each other once bridged (each recording starts at its own answer).
    assert audio.has_tone(heard_b, rate_b, 500.0, min_rel_db=-15, min_seconds=1.5), "bob does not hear alice"
    assert audio.has_tone(heard_a, rate_a, 1000.0, min_rel_db=-15, min_seconds=1.5), "alice does not hear bob"
    assert t_end > 2.5
    hangups = wait_events(receiver, "call.hangup", 3)
    by_id = {e["payload"]["call_control_id"]: e["payload"] for e in hangups}  # type: ignore[index]
    assert by_id[a_id]["hangup_cause"] == "normal_clearing" and by_id[a_id]["hangup_source"] == "callee"
    assert by_id[a_id]["client_state"] == "YWxpY2U="
    assert by_id[b_id]["hangup_cause"] == "normal_clearing" and by_id[b_id]["hangup_source"] == "caller"
    (carol_hangup,) = [p for cid, p in by_id.items() if cid not in (a_id, b_id)]
    assert carol_hangup["hangup_cause"] == "timeout" and carol_hangup["to"] == "4001"
    wait_events(receiver, "conference.participant.joined", 2)
    kinds = [e["event_type"] for e in events(receiver)]
    assert kinds.index("conference.created") < kinds.index("conference.participant.joined")
    for r in receiver.receiver.accepted:
        verify_webhook_signature(r.body.decode(), r.headers, keys["telnyx_public_key"])
