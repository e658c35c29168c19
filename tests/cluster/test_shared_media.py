"""Uploaded hold music in cluster mode: uploaded through node A, played to a lone caller on node B
(B keeps its own copy of the file, written from Redis); deleted through B, gone from A's disk."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.cluster.helpers import PREFIX, client, wait_for
from tests.e2e.calls import heard_alone_after_prompt
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import DEMO_TOKEN, BridgeProcess
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]


def test_music_uploaded_on_a_plays_on_b(node_factory: Callable[..., BridgeProcess], redis_server: RedisServer,
                                        ports: PortAllocator, tmp_path: Path) -> None:
    node_a = node_factory("node-a")
    node_b = node_factory("node-b")
    music = audio.write_wav(tmp_path / "music.wav",
                            0.3 * np.sin(2 * np.pi * 750.0 * np.arange(16000 * 2) / 16000), 16000)
    req = urllib.request.Request(node_a.base_url + "/v2/media?media_name=lobby-tune", data=music.read_bytes(),
                                 method="POST", headers={"X-Auth-Token": DEMO_TOKEN, "Content-Type": "audio/wav"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
    assert client(redis_server).hlen(f"{PREFIX}media") == 1
    copy = wait_for(lambda: list((node_b.workdir / "data" / "media").glob("media_*")), 3)
    assert copy and copy[0].read_bytes() == music.read_bytes(), "node B has no copy of the upload"
    assert wait_for(lambda: node_b.api("GET", "/v2/media")[1]["total"] == 1, 3)
    status, conf = node_a.api("POST", "/v2/conferences", {"name": "tuneful", "hold_music_id": "lobby-tune"})
    assert status == 201, conf
    assert wait_for(lambda: node_b.api("GET", f"/v2/conferences/{conf['id']}")[0] == 200, 3)
    # As on separate hosts: B must play its own copy, not the path A stored in the definition.
    originals = list((node_a.workdir / "data" / "media").glob("media_*"))
    assert len(originals) == 1
    originals[0].rename(tmp_path / "away.wav")
    after_prompt, rate = heard_alone_after_prompt(node_b, tmp_path, ports, conf["dial_in_code"])
    assert audio.has_tone(after_prompt, rate, 750.0, min_rel_db=-6, min_seconds=1.5), "music from A not heard on B"
    # Deleted through B (once no open conference plays it): A's copy goes too.
    (tmp_path / "away.wav").rename(originals[0])
    assert node_b.api("DELETE", f"/v2/conferences/{conf['id']}")[0] == 200
    media_id = copy[0].stem
    status, body = node_b.api("DELETE", f"/v2/media/{media_id}")
    assert status == 204, body
    assert wait_for(lambda: not list((node_a.workdir / "data" / "media").glob("media_*")), 3)
    assert node_a.api("GET", "/v2/media")[1]["total"] == 0
