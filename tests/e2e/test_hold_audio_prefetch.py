"""A conference's ``hold_audio_url`` is fetched when the conference is created, so the very first
caller, alone in it, hears that audio rather than the built-in tune."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.calls import dial_all, hang_up_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.vendors.test_telnyx_call_control_conference_e2e import audio_server

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]
__all__ = ["audio_server"]      # the fixture, shared


def test_the_first_caller_hears_the_hold_audio_url(
    bridge_factory: Callable[..., BridgeProcess], audio_server: str, ports: PortAllocator, tmp_path: Path,
) -> None:
    bridge = bridge_factory(rooms=[], media_fetch={"allow_networks": ["127.0.0.1/32"]})
    status, made = bridge.api("POST", "/v2/conferences", {"name": "early", "hold_audio_url": audio_server + "/hold.wav"})
    assert status == 201, made
    cache = bridge.workdir / "data" / "media-cache"
    deadline = time.monotonic() + 10
    while not list(cache.glob("*.wav")) and time.monotonic() < deadline:   # fetched before anyone calls
        time.sleep(0.1)
    assert list(cache.glob("*.wav")), bridge.log_tail()
    with participants(tmp_path, ports, [("first", "PCMU", None)]) as people:
        dial_all(bridge, people, made["dial_in_code"])
        talk(7.0)
        hang_up_all(people)
        heard, rate = people[0].heard()
    # After the "you are alone" prompt, the fetched 750 Hz tune (the built-in music avoids 750 Hz).
    assert audio.tone_seconds(heard, rate, 750.0, 3.5, 6.5) > 1.5, "the first caller did not hear hold_audio_url"
