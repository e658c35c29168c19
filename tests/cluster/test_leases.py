"""Room leases and the node registry written by real bridge processes into a real redis-server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.helpers import PREFIX, client, wait_for
from tests.e2e.calls import dial_all, hang_up_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]


def test_room_lease_written_renewed_and_released(node_factory: Callable[..., BridgeProcess],
                                                 redis_server: RedisServer, ports: PortAllocator,
                                                 tmp_path: Path) -> None:
    node = node_factory("node-a")
    r = client(redis_server)
    entry = json.loads(wait_for(lambda: r.get(f"{PREFIX}node:node-a")))
    assert entry["sip"] == f"sip:127.0.0.1:{node.sip_port}" and entry["http"] == node.base_url
    assert 0 < r.pttl(f"{PREFIX}node:node-a") <= 1500         # 3 x heartbeat
    users = ("conf_room1", "room1", "1001")
    with participants(tmp_path, ports, [("alice", "PCMU", None)]) as people:
        dial_all(node, people, "room1")
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner")) == "node-a"
        for user in users:
            assert wait_for(lambda u=user: r.get(f"{PREFIX}room:{u}:node")) == f"sip:127.0.0.1:{node.sip_port}"
        talk(4.0)   # longer than the 3 s lease: only renewals keep it
        assert r.get(f"{PREFIX}conf:conf_room1:owner") == "node-a"
        assert all(0 < r.pttl(f"{PREFIX}room:{u}:node") <= 3000 for u in users)
        listing = r.hgetall(f"{PREFIX}node:node-a:participants:conf_room1")
        assert [json.loads(v)["caller_id_number"] for v in listing.values()] == ["alice"]
        hang_up_all(people)
    assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner") is None, timeout=2.5)   # before expiry
    assert all(r.get(f"{PREFIX}room:{u}:node") is None for u in users)
    node.stop()
    assert r.get(f"{PREFIX}node:node-a") is None and not r.sismember(f"{PREFIX}nodes", "node-a")


def test_lost_lease_is_not_fought_over(node_factory: Callable[..., BridgeProcess], redis_server: RedisServer,
                                       ports: PortAllocator, tmp_path: Path) -> None:
    """Another node holds the lease when ours is renewed (ours expired meanwhile): say so loudly,
    stop claiming, leave the other node's keys alone."""
    node = node_factory("node-a")
    r = client(redis_server)
    with participants(tmp_path, ports, [("alice", "PCMU", None)]) as people:
        dial_all(node, people, "room1")
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner")) == "node-a"
        r.set(f"{PREFIX}conf:conf_room1:owner", "node-x", px=20000)     # node-x took it over
        r.set(f"{PREFIX}room:room1:node", "sip:127.0.0.1:1", px=20000)
        assert wait_for(lambda: "lease of conf_room1 lost to node node-x" in node.log_path.read_text(), 3)
        talk(1.5)   # three more heartbeats: still node-x's
        assert r.get(f"{PREFIX}conf:conf_room1:owner") == "node-x"
        assert r.get(f"{PREFIX}room:room1:node") == "sip:127.0.0.1:1"
        hang_up_all(people)
    talk(1.0)   # the room emptied: compare-and-delete leaves node-x's keys
    assert r.get(f"{PREFIX}conf:conf_room1:owner") == "node-x"


def test_unreachable_redis_stops_the_start_with_a_message(tmp_path: Path, ports: PortAllocator) -> None:
    closed = ports.port()       # nothing listens there
    proc = BridgeProcess(workdir=tmp_path, sip_port=ports.port(), http_port=ports.port(),
                         rtp_range=(lambda lo: (lo, lo + 9))(ports.block(10)), rooms=[],
                         extra={"cluster": {"enabled": True, "node_id": "n", "redis_url": f"redis://127.0.0.1:{closed}/0",
                                            "advertise_sip": "sip:127.0.0.1:5060",
                                            "advertise_http": "http://127.0.0.1:8080"}})
    config = proc.write_config()
    done = subprocess.run([sys.executable, "-m", "bridge", "--config", str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert f"cannot reach Redis at redis://127.0.0.1:{closed}/0" in done.stderr, done.stderr[-2000:]


def test_redis_restart_keeps_calls_and_restores_keys(node_factory: Callable[..., BridgeProcess],
                                                     redis_server: RedisServer, ports: PortAllocator,
                                                     tmp_path: Path) -> None:
    """Redis goes away and comes back empty: the call goes on meanwhile, and the node writes its
    registry entry and its lease again and subscribes again."""
    node = node_factory("node-a")
    r = client(redis_server)
    with participants(tmp_path, ports, [("alice", "PCMU", 700.0), ("bob", "PCMU", None)]) as people:
        dial_all(node, people, "room1")
        t0 = time.monotonic()
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner")) == "node-a"
        redis_server.stop()
        t_down = time.monotonic() - t0
        talk(2.5)
        t_up = time.monotonic() - t0
        redis_server.start()
        r = client(redis_server)
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner"), 5) == "node-a"
        assert r.get(f"{PREFIX}room:1001:node") == f"sip:127.0.0.1:{node.sip_port}"
        assert r.get(f"{PREFIX}node:node-a") is not None
        assert wait_for(lambda: "subscribed again" in node.log_path.read_text(), 5)
        hang_up_all(people)
        samples, rate = people[1].heard()
    assert "Redis request failed" in node.log_path.read_text()
    # Bob heard Alice while Redis was down (the media never waits on Redis).
    heard = audio.tone_seconds(samples, rate, 700.0, t_down + 0.2, t_up - 0.2)
    assert heard > 1.5, f"alice heard {heard:.1f}s of the {t_up - t_down:.1f}s Redis was down"


def test_sigterm_with_calls_in_stops_the_node_promptly(node_factory: Callable[..., BridgeProcess],
                                                      redis_server: RedisServer, ports: PortAllocator,
                                                      tmp_path: Path) -> None:
    """A cluster node told to stop while callers are in (and gone without a BYE) exits in seconds,
    its lease released. It used to hang for good: the shutdown's own events woke the cluster worker
    as it was cancelled, redis-py swallowed the cancellation, and the worker waited for ever."""
    node = node_factory("node-a")
    r = client(redis_server)
    with participants(tmp_path, ports, [("alice", "PCMU", 500.0), ("bob", "PCMU", None)]) as people:
        dial_all(node, people, "room1")
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner")) == "node-a"
        for p in people:
            p.phone.crash()                  # the callers vanish; the node's BYEs go unanswered
    started = time.monotonic()
    assert node.terminate(timeout=20) == 0, node.log_tail()
    assert time.monotonic() - started < 8.0, "the node took too long to stop"
    assert r.get(f"{PREFIX}conf:conf_room1:owner") is None
