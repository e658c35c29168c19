"""Room leases and the node registry written by real bridge processes into a real redis-server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.helpers import PREFIX, client, wait_for
from tests.e2e.calls import dial_all, hang_up_all, participants, talk
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
