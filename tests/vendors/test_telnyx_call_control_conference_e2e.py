"""Issue 12, Must show 1, with the official ``telnyx`` library (base URL changed only) and baresip:
two calls to a call-control number are parked (``call.initiated``), answered, one creates a
conference and the other joins; they hear each other; ``mute`` silences one (a repeated
``command_id`` is ignored); a third joins as a ``whisper`` supervisor heard only by one, then
``update`` makes it ``monitor`` (heard by none); ``hold`` with an ``audio_url`` fetched from a loopback HTTP server
plays that audio to the held caller (``conference.participant.playback.started``/``ended``) and
cuts them off; an audio_url that cannot be fetched or points inward is a 422; a bad body is a 422
in Telnyx's shape; ``end`` hangs both up (``conference.ended``, ``call.hangup``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import telnyx
from telnyx.lib.webhook_verification import verify_webhook_signature

from tests.e2e.calls import participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.vendors.test_telnyx_api import telnyx_client
from tests.vendors.test_telnyx_call_control_e2e import events, wait_events
from tests.support.webhook_receiver import ThreadedReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def audio_server(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    audio.write_wav(root / "hold.wav", 0.3 * np.sin(2 * np.pi * 750.0 * np.arange(8000 * 3) / 8000), 8000)
    (root / "notes.wav").write_text("this is not audio\n" * 50)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


@pytest.mark.usefixtures("need_baresip")
@pytest.mark.timeout(150)
def test_call_control_conference_mute_hold_with_audio_url_and_end(
    bridge_factory: Callable[..., BridgeProcess], receiver: ThreadedReceiver, audio_server: str,
    ports: PortAllocator, tmp_path: Path,
) -> None:
    url = receiver.receiver.url
    bridge = bridge_factory(
        rooms=[],
        webhooks={"allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.2, "max_backoff_s": 1},
        media_fetch={"allow_networks": ["127.0.0.1/32"], "timeout_s": 5},
        call_control=[{"name": "desk", "account": "acct1", "webhook_url": url + "/cc", "sip_users": ["4000"]}],
    )
    _, keys = bridge.api("GET", "/v2/webhooks/keys")
    client = telnyx_client(bridge)
    uri = f"sip:4000@127.0.0.1:{bridge.sip_port}"
    specs = [("alice", "PCMU", 500.0), ("bob", "PCMU", 1000.0), ("carol", "PCMU", 1500.0)]
    with participants(tmp_path, ports, specs) as (alice, bob, carol):
        alice.phone.dial(uri)
        a_id = str(wait_events(receiver, "call.initiated", 1)[0]["payload"]["call_control_id"])  # type: ignore[index]
        bob.phone.dial(uri)
        b_id = str(wait_events(receiver, "call.initiated", 2)[1]["payload"]["call_control_id"])  # type: ignore[index]
        client.calls.actions.answer(a_id)
        client.calls.actions.answer(b_id)
        alice.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        bob.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        wait_events(receiver, "call.answered", 2)
        conf = client.conferences.create(call_control_id=a_id, name="desk", beep_enabled="never").data
        assert conf is not None
        cid = conf.id
        client.conferences.actions.join(cid, call_control_id=b_id)
        t0 = time.monotonic()
        talk(2.5)
        client.conferences.actions.mute(cid, call_control_ids=[a_id], extra_body={"command_id": "m1"})
        t_mute = time.monotonic() - t0
        talk(2.0)
        client.conferences.actions.unmute(cid, call_control_ids=[a_id])
        client.conferences.actions.mute(cid, call_control_ids=[a_id], extra_body={"command_id": "m1"})  # repeat
        t_unmute = time.monotonic() - t0
        talk(2.0)
        # carol, a supervisor, joins whispering to alice: only alice hears her; then monitor: nobody.
        carol.phone.dial(uri)
        c_id = str(wait_events(receiver, "call.initiated", 3)[2]["payload"]["call_control_id"])  # type: ignore[index]
        client.calls.actions.answer(c_id)
        carol.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        client.conferences.actions.join(cid, call_control_id=c_id, supervisor_role="whisper",
                                        whisper_call_control_ids=[a_id])
        t_whisper = time.monotonic() - t0
        listed = {p.call_control_id: p for p in client.conferences.list_participants(cid).data}
        assert listed[c_id].whisper_call_control_ids == [a_id]
        talk(2.5)
        client.conferences.actions.update(cid, call_control_id=c_id, supervisor_role="monitor")
        t_monitor = time.monotonic() - t0
        talk(1.5)
        client.conferences.actions.hold(cid, call_control_ids=[b_id], audio_url=audio_server + "/hold.wav")
        t_hold = time.monotonic() - t0
        talk(3.0)
        client.conferences.actions.unhold(cid, call_control_ids=[b_id])
        t_unhold = time.monotonic() - t0
        # What cannot be fetched, is not audio, or points inward: 422 before anything changes.
        for bad in (audio_server + "/missing.wav", audio_server + "/notes.wav",
                    "http://169.254.169.254/latest/meta-data/hold.wav"):
            with pytest.raises(telnyx.UnprocessableEntityError) as err:
                client.conferences.actions.hold(cid, call_control_ids=[b_id], audio_url=bad)
            (error,) = err.value.body["errors"]  # type: ignore[index]
            assert error["source"] == {"pointer": "/audio_url"} and error["code"] and error["title"], error
        # A bad body: Telnyx's error shape.
        with pytest.raises(telnyx.UnprocessableEntityError) as err:
            client.conferences.actions.mute(cid, extra_body={"call_control_ids": "not-a-list"})
        (error,) = err.value.body["errors"]  # type: ignore[index]
        assert set(error) >= {"code", "title", "detail", "source"}
        talk(1.5)
        client.conferences.actions.end_conference(cid)
        alice.phone.wait_event("CALL_CLOSED", timeout=10)
        bob.phone.wait_event("CALL_CLOSED", timeout=10)
        carol.phone.wait_event("CALL_CLOSED", timeout=10)
        a_heard, a_rate = alice.heard()
        b_heard, b_rate = bob.heard()
        c_heard, c_rate = carol.heard()
    # They hear each other; mute silences alice for bob; the repeated command_id did not mute again.
    assert audio.tone_seconds(b_heard, b_rate, 500.0, 0.5, t_mute - 0.3) > 1.0, "bob does not hear alice"
    assert audio.tone_seconds(a_heard, a_rate, 1000.0, 0.5, t_mute - 0.3) > 1.0, "alice does not hear bob"
    assert audio.tone_seconds(b_heard, b_rate, 500.0, t_mute + 0.4, t_unmute - 0.3) == 0.0, "muted alice still heard"
    assert audio.tone_seconds(b_heard, b_rate, 500.0, t_unmute + 0.5, t_hold - 0.2) > 0.8, "repeated command_id muted again"
    # Whisper: alice hears carol, bob does not; carol hears both; monitor: nobody hears carol.
    assert audio.tone_seconds(a_heard, a_rate, 1500.0, t_whisper + 0.5, t_monitor - 0.2) > 1.2, "alice misses the whisper"
    assert audio.tone_seconds(b_heard, b_rate, 1500.0, t_whisper, t_monitor) == 0.0, "bob hears the whisper"
    assert audio.tone_seconds(b_heard, b_rate, 500.0, t_whisper + 0.5, t_monitor - 0.2) > 1.2, "whisper cut alice off"
    assert audio.tone_seconds(a_heard, a_rate, 1500.0, t_monitor + 0.4, t_hold) == 0.0, "monitor still heard"
    assert audio.tone_seconds(c_heard, c_rate, 500.0, 0.5, 2.0) > 0.8 and audio.tone_seconds(c_heard, c_rate, 1000.0, 0.5, 2.0) > 0.8
    # Hold: bob hears the fetched tune, alice no longer hears bob; unhold brings him back.
    assert audio.tone_seconds(b_heard, b_rate, 750.0, t_hold + 0.7, t_unhold - 0.2) > 1.5, "no hold audio from audio_url"
    assert audio.tone_seconds(a_heard, a_rate, 1000.0, t_hold + 0.5, t_unhold - 0.2) == 0.0, "held bob still heard"
    assert audio.tone_seconds(a_heard, a_rate, 1000.0, t_unhold + 0.5, t_unhold + 1.5) > 0.5, "unhold did not bring bob back"
    assert audio.tone_seconds(b_heard, b_rate, 750.0, t_unhold + 0.5, t_unhold + 1.5) == 0.0, "hold audio after unhold"
    # Webhooks.
    started = wait_events(receiver, "conference.participant.playback.started", 1)
    ended = wait_events(receiver, "conference.participant.playback.ended", 1)
    for e in (started[0], ended[0]):
        assert e["payload"]["call_control_id"] == b_id  # type: ignore[index]
        assert e["payload"]["media_url"] == audio_server + "/hold.wav"  # type: ignore[index]
    wait_events(receiver, "conference.ended", 1)
    hangups = wait_events(receiver, "call.hangup", 3)
    assert {h["payload"]["call_control_id"] for h in hangups} == {a_id, b_id, c_id}  # type: ignore[index]
    assert all(h["payload"]["hangup_cause"] == "normal_clearing" for h in hangups)  # type: ignore[index]
    kinds = [e["event_type"] for e in events(receiver)]
    assert kinds.count("conference.participant.joined") == 3 and kinds.count("conference.participant.left") == 3
    for r in receiver.receiver.accepted:
        verify_webhook_signature(r.body.decode(), r.headers, keys["telnyx_public_key"])
    assert all(json.loads(r.body)["data"]["record_type"] == "event" for r in receiver.receiver.accepted)
