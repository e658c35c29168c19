"""FreeClimb, end to end: the official ``freeclimb`` library (host changed only) creates a
conference, baresip callers dial its conference id, ``talk``/``listen`` updates are heard
(mute, deaf), and the signed status callbacks arrive as empty, populated, inProgress, empty,
terminated."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from freeclimb.models.update_conference_participant_request import UpdateConferenceParticipantRequest
from freeclimb.models.update_conference_request import UpdateConferenceRequest
from freeclimb.models.update_conference_request_status import UpdateConferenceRequestStatus
from freeclimb.utils.request_verifier import RequestVerifier

from tests.e2e.calls import dial_all, hang_up_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.vendors.test_freeclimb_api import create, freeclimb_api
from tests.support.webhook_receiver import ThreadedReceiver

pytestmark = pytest.mark.e2e


@pytest.mark.usefixtures("need_baresip")
@pytest.mark.timeout(120)
def test_freeclimb_sdk_conference_with_callers(
    bridge_factory: Callable[..., BridgeProcess], receiver: ThreadedReceiver, ports: PortAllocator, tmp_path: Path,
) -> None:
    url = receiver.receiver.url
    bridge = bridge_factory(rooms=[], webhooks={
        "allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.2, "max_backoff_s": 1,
    })
    api = freeclimb_api(bridge)
    conf = create(api, alias="e2e", status_callback_url=url + "/fc")
    cid = conf.conference_id
    assert cid is not None
    status, keys = bridge.api("GET", "/v2/webhooks/keys")
    assert status == 200
    with participants(tmp_path, ports, [("speaker", "PCMU", 500.0), ("listener", "PCMU", None)]) as people:
        speaker, listener = people
        dial_all(bridge, people, cid)   # SIP callers dial the conference id (or its dial-in code)
        t0 = time.monotonic()
        listing = api.list_participants(cid)
        assert listing.total == 2
        assert api.get_a_conference(cid).status.value == "inProgress"  # type: ignore[union-attr]
        _, flat = bridge.api("GET", f"/v2/conferences/{cid}/participants")
        ids = {p["phone_number"]: p["id"] for p in flat["participants"]}
        got = api.get_a_participant(cid, ids["speaker"])
        assert got.talk is True and got.listen is True and got.start_conf_on_enter is True
        talk(2.0)
        muted = api.update_a_participant(cid, ids["speaker"], UpdateConferenceParticipantRequest(talk=False))
        assert muted.talk is False
        t_mute = time.monotonic() - t0
        assert api.get_a_participant(cid, ids["speaker"]).talk is False
        talk(2.0)
        api.update_a_participant(cid, ids["speaker"], UpdateConferenceParticipantRequest(talk=True))
        t_unmute = time.monotonic() - t0
        talk(2.0)
        deaf = api.update_a_participant(cid, ids["listener"], UpdateConferenceParticipantRequest(listen=False))
        assert deaf.listen is False
        t_deaf = time.monotonic() - t0
        talk(2.0)
        api.remove_a_participant(cid, ids["listener"])      # the listener gets a BYE
        listener.phone.wait_event("CALL_CLOSED", timeout=10)
        assert [p.call_id for p in api.list_participants(cid).participants or []] == [ids["speaker"]]
        hang_up_all([speaker])
        samples, rate = listener.heard()
    assert audio.tone_seconds(samples, rate, 500.0, 0.5, t_mute - 0.3) > 0.8
    assert audio.tone_seconds(samples, rate, 500.0, t_mute + 0.3, t_unmute - 0.2) == 0.0, "talk=false: still heard"
    assert audio.tone_seconds(samples, rate, 500.0, t_unmute + 0.4, t_deaf - 0.2) > 0.5, "talk=true did not bring it back"
    assert audio.tone_seconds(samples, rate, 500.0, t_deaf + 0.3, t_deaf + 1.7) == 0.0, "listen=false: still hears"
    time.sleep(0.5)
    assert api.get_a_conference(cid).status.value == "empty"  # type: ignore[union-attr]
    api.update_a_conference(cid, UpdateConferenceRequest(status=UpdateConferenceRequestStatus.TERMINATED))
    want = ["empty", "populated", "inProgress", "empty", "terminated"]
    receiver.wait_for(len(want), timeout=20)
    time.sleep(0.5)
    got_cb = [r for r in receiver.receiver.accepted if r.path == "/fc"]
    for r in got_cb:
        RequestVerifier.verify_request_signature(
            r.body.decode(), r.headers["FreeClimb-Signature"], keys["freeclimb_signing_secret"], 300)
        body = json.loads(r.body)
        assert body["conferenceId"] == cid and body["accountId"] == "acct1"
    assert [json.loads(r.body)["status"] for r in got_cb] == want


@pytest.mark.usefixtures("need_baresip")
@pytest.mark.timeout(120)
def test_freeclimb_record_true_records_and_the_callback_carries_the_recording(
    bridge_factory: Callable[..., BridgeProcess], receiver: ThreadedReceiver, ports: PortAllocator, tmp_path: Path,
) -> None:
    url = receiver.receiver.url
    bridge = bridge_factory(rooms=[], webhooks={
        "allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.2, "max_backoff_s": 1,
    })
    api = freeclimb_api(bridge)
    conf = create(api, alias="rec", status_callback_url=url + "/fc", record=True)
    assert conf.record is True and conf.conference_id is not None
    with participants(tmp_path, ports, [("a", "PCMU", 500.0), ("b", "PCMU", 1000.0)]) as people:
        dial_all(bridge, people, conf.conference_id)
        talk(2.0)
        hang_up_all(people)

    def recording_callback() -> dict[str, object] | None:
        for r in receiver.receiver.accepted:
            body = json.loads(r.body)
            if body.get("requestType") == "conferenceRecordingStatus":
                return body
        return None

    deadline = time.monotonic() + 30
    while (body := recording_callback()) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert body is not None, [json.loads(r.body) for r in receiver.receiver.accepted]
    assert body["conferenceId"] == conf.conference_id and str(body["recordingUrl"]).startswith("http")
    assert isinstance(body["recordingDurationSec"], int) and body["recordingDurationSec"] >= 2
    assert body["recordingId"]
