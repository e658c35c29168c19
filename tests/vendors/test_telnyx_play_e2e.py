"""Telnyx ``play``/``stop`` with the official library: an ``audio_url`` fetched from a loopback
server plays into the whole conference (the callers hear it by FFT) until ``stop``; a
``loop`` count plays it that many times and ends by itself; ``conference.playback.started`` and
``ended`` reach the conference's webhook URL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.calls import dial_all, hang_up_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.vendors.test_telnyx_api import telnyx_client
from tests.vendors.test_telnyx_call_control_conference_e2e import audio_server
from tests.support.webhook_receiver import ThreadedReceiver

pytestmark = pytest.mark.e2e
__all__ = ["audio_server"]      # the fixture, shared


def playback_events(receiver: ThreadedReceiver) -> list[dict]:
    out = []
    for r in receiver.receiver.accepted:
        data = json.loads(r.body)["data"]
        if data["event_type"].startswith("conference.playback."):
            out.append(data)
    return out


@pytest.mark.usefixtures("need_baresip")
@pytest.mark.timeout(120)
def test_play_into_the_conference_then_stop(
    bridge_factory: Callable[..., BridgeProcess], receiver: ThreadedReceiver, audio_server: str,
    ports: PortAllocator, tmp_path: Path,
) -> None:
    bridge = bridge_factory(rooms=[], webhooks={"allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.2,
                                                "max_backoff_s": 1},
                            media_fetch={"allow_networks": ["127.0.0.1/32"]})
    status, made = bridge.api("POST", "/v2/conferences", {"name": "play", "webhook_url": receiver.receiver.url + "/t"})
    assert status == 201, made
    cid = made["id"]
    client = telnyx_client(bridge)
    tune = audio_server + "/hold.wav"          # 3 s of 750 Hz
    with participants(tmp_path, ports, [("a", "PCMU", 500.0), ("b", "PCMU", None)]) as people:
        a, b = people
        dial_all(bridge, people, made["dial_in_code"])
        t0 = time.monotonic()
        talk(1.0)
        client.conferences.actions.play(cid, audio_url=tune, loop="infinity")
        t_play = time.monotonic() - t0
        talk(4.0)                               # past the file's length: it loops
        client.conferences.actions.stop(cid)
        t_stop = time.monotonic() - t0
        talk(1.5)
        client.conferences.actions.play(cid, audio_url=tune, loop=1)    # once, then it ends by itself
        t_once = time.monotonic() - t0
        talk(4.5)
        t_after = time.monotonic() - t0
        talk(1.0)
        hang_up_all(people)
        a_heard, a_rate = a.heard()
        b_heard, b_rate = b.heard()
    for heard, rate in ((a_heard, a_rate), (b_heard, b_rate)):
        assert audio.tone_seconds(heard, rate, 750.0, t_play - 1.0, t_play - 0.1) == 0.0
        assert audio.tone_seconds(heard, rate, 750.0, t_play + 0.5, t_stop - 0.2) > 3.0, "play (looping) not heard"
        assert audio.tone_seconds(heard, rate, 750.0, t_stop + 0.4, t_once - 0.1) == 0.0, "stop did not stop"
        assert audio.tone_seconds(heard, rate, 750.0, t_once + 0.5, t_once + 2.5) > 1.5, "loop=1 not heard"
        assert audio.tone_seconds(heard, rate, 750.0, t_after - 0.8, t_after) == 0.0, "loop=1 did not end"
    assert audio.tone_seconds(b_heard, b_rate, 500.0, t_play + 0.5, t_stop - 0.2) > 3.0, "play drowned the talker"
    deadline = time.monotonic() + 10
    while len(playback_events(receiver)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    kinds = [e["event_type"] for e in playback_events(receiver)]
    assert kinds == ["conference.playback.started", "conference.playback.ended"] * 2, kinds
    assert all(e["payload"]["media_url"] == tune for e in playback_events(receiver))
