"""Telnyx, end to end: the official ``telnyx`` library (base URL changed only) manages a
conference that baresip callers dialled into: ``mute`` silences the speaker for the other caller,
``unmute`` with no ids brings everyone back, a repeated ``command_id`` is ignored, ``end`` hangs
everyone up, and the Telnyx-form webhooks carry the conference's ``client_state``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from telnyx.lib.webhook_verification import verify_webhook_signature

from tests.e2e.calls import dial_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.vendors.test_telnyx_api import telnyx_client
from tests.webhooks.test_conference_events_e2e import ThreadedReceiver

pytestmark = pytest.mark.e2e
STATE = "dGVsbnl4LWUyZQ=="


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.close()


def presence(samples: audio.Samples, rate: int, freq: float, start: float, end: float) -> float:
    return audio.tone_presence(audio.segment(samples, rate, start, end), rate, freq, min_rel_db=-15)


@pytest.mark.usefixtures("need_baresip")
@pytest.mark.timeout(120)
def test_telnyx_sdk_mutes_and_ends_a_live_conference(
    bridge_factory: Callable[..., BridgeProcess], receiver: ThreadedReceiver, ports: PortAllocator, tmp_path: Path,
) -> None:
    url = receiver.receiver.url
    bridge = bridge_factory(rooms=[], webhooks={
        "allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.2, "max_backoff_s": 1,
    })
    status, made = bridge.api("POST", "/v2/conferences", {
        "name": "telnyx-e2e", "webhook_url": url + "/telnyx", "client_state": STATE})
    assert status == 201, made
    cid = made["id"]
    status, keys = bridge.api("GET", "/v2/webhooks/keys")
    client = telnyx_client(bridge)
    with participants(tmp_path, ports, [("speaker", "PCMU", 500.0), ("listener", "PCMU", None)]) as people:
        speaker, listener = people
        dial_all(bridge, people, made["dial_in_code"])
        t0 = time.monotonic()
        listed = client.conferences.list_participants(cid).data
        assert sorted(p.status for p in listed) == ["joined", "joined"]
        assert client.conferences.retrieve(cid).data.status == "in_progress"  # type: ignore[union-attr]
        _, flat = bridge.api("GET", f"/v2/conferences/{cid}/participants")
        ids = {p["phone_number"]: p["id"] for p in flat["participants"]}
        talk(2.0)
        client.conferences.actions.mute(cid, call_control_ids=[ids["speaker"]], extra_body={"command_id": "m1"})
        t_mute = time.monotonic() - t0
        one = client.conferences.retrieve_participant(ids["speaker"], id=cid).data
        assert one is not None and one.muted is True
        talk(2.0)
        client.conferences.actions.unmute(cid)   # no ids: everyone
        t_unmute = time.monotonic() - t0
        talk(1.5)
        # The same command_id again within 60 s: ignored, the speaker stays audible.
        client.conferences.actions.mute(cid, call_control_ids=[ids["speaker"]], extra_body={"command_id": "m1"})
        t_repeat = time.monotonic() - t0
        talk(1.5)
        client.conferences.actions.end_conference(cid)
        speaker.phone.wait_event("CALL_CLOSED", timeout=10)
        listener.phone.wait_event("CALL_CLOSED", timeout=10)
        samples, rate = listener.heard()
    assert presence(samples, rate, 500.0, 0.5, t_mute - 0.3) > 0.8
    assert presence(samples, rate, 500.0, t_mute + 0.3, t_unmute - 0.2) == 0.0, "muted speaker still heard"
    assert presence(samples, rate, 500.0, t_unmute + 0.4, t_repeat) > 0.5, "unmute (everyone) did not work"
    assert presence(samples, rate, 500.0, t_repeat + 0.3, t_repeat + 1.3) > 0.5, "repeated command_id muted again"
    left = client.conferences.list_participants(cid).data
    assert [p.status for p in left] == ["left", "left"]
    assert client.conferences.retrieve(cid).data.status == "completed"  # type: ignore[union-attr]
    want = ["conference.created", "conference.participant.joined", "conference.participant.joined",
            "conference.participant.left", "conference.participant.left", "conference.ended"]
    receiver.wait_for(len(want), timeout=20)
    time.sleep(0.5)
    got = [r for r in receiver.receiver.accepted if r.path == "/telnyx"]
    for r in got:
        verify_webhook_signature(r.body.decode(), r.headers, keys["telnyx_public_key"])
        assert json.loads(r.body)["data"]["payload"]["client_state"] == STATE
    types = [json.loads(r.body)["data"]["event_type"] for r in got]
    # (floor and prompt playback events come too; their order with the others may vary)
    assert sorted(t for t in types if t in set(want)) == sorted(want)
    assert "conference.floor.changed" in types   # the speaker took the floor
