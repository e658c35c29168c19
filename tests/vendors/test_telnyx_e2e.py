"""Telnyx, end to end: the official ``telnyx`` library (base URL changed only) manages a
conference that baresip callers dialled into: ``mute`` silences the speaker for the other caller,
``unmute`` with no ids brings everyone back, a repeated ``command_id`` is ignored, ``end`` hangs
everyone up, and the Telnyx-form webhooks carry the conference's ``client_state``."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from telnyx.lib.webhook_verification import verify_webhook_signature

from tests.e2e.calls import dial_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import DEMO_TOKEN, BridgeProcess
from tests.vendors.test_telnyx_api import telnyx_client
from tests.support.webhook_receiver import ThreadedReceiver

pytestmark = pytest.mark.e2e
STATE = "dGVsbnl4LWUyZQ=="


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
    tune = audio.write_wav(tmp_path / "hold.wav", 0.3 * np.sin(2 * np.pi * 750.0 * np.arange(16000 * 3) / 16000),
                           16000)
    req = urllib.request.Request(bridge.base_url + "/v2/media?media_name=hold-tune", data=tune.read_bytes(),
                                 method="POST", headers={"X-Auth-Token": DEMO_TOKEN, "Content-Type": "audio/wav"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
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
        # hold with audio: the speaker hears the uploaded tune and nobody hears the speaker
        client.conferences.actions.hold(cid, call_control_ids=[ids["speaker"]], media_name="hold-tune")
        t_hold = time.monotonic() - t0
        held = client.conferences.retrieve_participant(ids["speaker"], id=cid).data
        assert held is not None and held.on_hold is True
        talk(2.5)
        client.conferences.actions.unhold(cid, call_control_ids=[ids["speaker"]])
        t_unhold = time.monotonic() - t0
        talk(2.0)
        client.conferences.actions.end_conference(cid)
        speaker.phone.wait_event("CALL_CLOSED", timeout=10)
        listener.phone.wait_event("CALL_CLOSED", timeout=10)
        samples, rate = listener.heard()
        spk_samples, spk_rate = speaker.heard()
    assert audio.tone_seconds(samples, rate, 500.0, 0.5, t_mute - 0.3) > 0.8
    assert audio.tone_seconds(samples, rate, 500.0, t_mute + 0.3, t_unmute - 0.2) == 0.0, "muted speaker still heard"
    assert audio.tone_seconds(samples, rate, 500.0, t_unmute + 0.4, t_repeat) > 0.5, "unmute (everyone) did not work"
    assert audio.tone_seconds(samples, rate, 500.0, t_repeat + 0.3, t_hold - 0.2) > 0.5, "repeated command_id muted again"
    assert audio.tone_seconds(samples, rate, 500.0, t_hold + 0.3, t_unhold - 0.2) == 0.0, "held speaker still heard"
    assert audio.tone_seconds(spk_samples, spk_rate, 750.0, t_hold + 0.5, t_unhold - 0.2) > 1.0, "no hold audio"
    assert audio.tone_seconds(spk_samples, spk_rate, 750.0, t_unhold + 0.5, t_unhold + 1.8) == 0.0, "hold audio after unhold"
    assert audio.tone_seconds(samples, rate, 500.0, t_unhold + 0.5, t_unhold + 1.8) > 0.5, "unhold did not bring it back"
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
