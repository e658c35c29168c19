"""Real baresip callers in a conference: the whole event sequence arrives in both vendor forms,
signed as each vendor's own SDK verifies. The room emptying ends the Telnyx conference; the
DELETE after it terminates the FreeClimb one (and sends no second ``conference.ended``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from freeclimb.utils.request_verifier import RequestVerifier
from telnyx.lib.webhook_verification import verify_webhook_signature

from tests.e2e.calls import dial_all, hang_up_all, participants, talk
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.support.webhook_receiver import ThreadedReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.close()


@pytest.mark.usefixtures("need_baresip")
@pytest.mark.timeout(120)
def test_scripted_conference_sends_every_event_in_both_forms(
    bridge_factory: Callable[..., BridgeProcess], receiver: ThreadedReceiver, ports: PortAllocator, tmp_path: Path,
) -> None:
    url = receiver.receiver.url
    bridge = bridge_factory(webhooks={
        "allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.2, "max_backoff_s": 1,
        "accounts": [{"account": "acct1", "url": url + "/telnyx"}],
    })
    status, conf = bridge.api("POST", "/v2/conferences", {
        "name": "scripted", "statusCallbackUrl": url + "/freeclimb", "client_state": "c2NyaXB0ZWQ=",
    })
    assert status == 201, conf
    status, keys = bridge.api("GET", "/v2/webhooks/keys")
    assert status == 200
    with participants(tmp_path, ports, [("a", "PCMU", None), ("b", "PCMU", None)]) as people:
        dial_all(bridge, people, conf["dial_in_code"])
        talk(1.0)
        hang_up_all(people)
    status, _ = bridge.api("DELETE", f"/v2/conferences/{conf['id']}")
    assert status == 200
    want_telnyx = ["conference.created", "conference.participant.joined", "conference.participant.joined",
                   "conference.participant.left", "conference.participant.left", "conference.ended"]
    want_fc = ["empty", "populated", "inProgress", "empty", "terminated"]
    receiver.wait_for(len(want_telnyx) + len(want_fc), timeout=20)
    time.sleep(0.5)
    got = list(receiver.receiver.accepted)
    telnyx = [r for r in got if r.path == "/telnyx"]
    freeclimb = [r for r in got if r.path == "/freeclimb"]
    for r in telnyx:
        verify_webhook_signature(r.body.decode(), r.headers, keys["telnyx_public_key"])
        assert json.loads(r.body)["data"]["payload"]["client_state"] == "c2NyaXB0ZWQ="
    for r in freeclimb:
        RequestVerifier.verify_request_signature(
            r.body.decode(), r.headers["FreeClimb-Signature"], keys["freeclimb_signing_secret"], 300)
    assert [json.loads(r.body)["data"]["event_type"] for r in telnyx] == want_telnyx
    assert [json.loads(r.body)["status"] for r in freeclimb] == want_fc
