"""A node dies (kill -9) with a caller in a room: a survivor announces the caller's departure
(reason ``node_lost``) once, and the caller who redials lands on the survivor,
which claims the room (the survivor frees the dead node's lease at once, long before it would
expire); a conference made on the dead node is still defined."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.helpers import PREFIX, client, wait_for
from tests.e2e.calls import dial_all, hang_up_all, participants
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]


def test_survivor_announces_node_lost_and_takes_the_room(node_factory: Callable[..., BridgeProcess],
                                                          redis_server: RedisServer, ports: PortAllocator,
                                                          tmp_path: Path) -> None:
    # Leases of 30 s: the room comes back long before they could expire (the survivor frees them).
    node_a = node_factory("node-a", lease_ttl_s=30)
    node_b = node_factory("node-b", lease_ttl_s=30)
    r = client(redis_server)
    status, made = node_b.api("PUT", "/v2/accounts/acct1/conferences", {"data": {"name": "survives"}})
    assert status == 201, made
    conf_id = made["data"]["id"]
    with participants(tmp_path, ports, [("alice", "PCMU", None)]) as people:
        dial_all(node_b, people, "room1")
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner")) == "node-b"
        pid = wait_for(lambda: r.hkeys(f"{PREFIX}node:node-b:participants:conf_room1"))[0]
        assert node_b.proc is not None
        node_b.proc.kill()           # kill -9: no BYE, no release
        node_b.proc.wait()
        # Registry key expires (1.5 s), a survivor reaps: one node_lost departure, state cleaned.
        assert wait_for(lambda: r.get(f"{PREFIX}reap:node-b"), 6) == "node-a"
        assert wait_for(lambda: not r.exists(f"{PREFIX}node:node-b:participants:conf_room1"), 3)
        # The reaper forgets the node's rooms first and its registry entry last: wait for that too.
        assert wait_for(lambda: not r.sismember(f"{PREFIX}nodes", "node-b"), 3)
        departure = f"participant.left participant_id={pid} reason=node_lost"
        assert wait_for(lambda: departure in node_a.log_path.read_text(errors="replace"), 3), node_a.log_tail()
        # The survivor deleted the lost node's lease and room keys; alice redials through A, which claims it.
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner") is None, 2)
        assert r.get(f"{PREFIX}room:1001:node") is None and r.get(f"{PREFIX}room:room1:node") is None
        people[0].phone.hangup()
        dial_all(node_a, people, "room1")
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner")) == "node-a"
        assert r.get(f"{PREFIX}room:room1:node") == f"sip:127.0.0.1:{node_a.sip_port}"
        hang_up_all(people)
    status, body = node_a.api("GET", f"/v2/accounts/acct1/conferences/{conf_id}")
    assert status == 200 and body["data"]["name"] == "survives"
    assert json.loads(r.hget(f"{PREFIX}conferences", conf_id))["name"] == "survives"


def test_restarted_node_announces_what_its_crash_left(node_factory: Callable[..., BridgeProcess],
                                                       redis_server: RedisServer, ports: PortAllocator,
                                                       tmp_path: Path) -> None:
    """A lone node killed with a caller in and started again (no survivor noticed): at start it
    announces its previous run's participants as left (node_lost) and frees its old lease."""
    node = node_factory("node-a", lease_ttl_s=30)
    r = client(redis_server)
    with participants(tmp_path, ports, [("alice", "PCMU", None)]) as people:
        dial_all(node, people, "room1")
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner")) == "node-a"
        pid = wait_for(lambda: r.hkeys(f"{PREFIX}node:node-a:participants:conf_room1"))[0]
        assert node.proc is not None
        node.proc.kill()
        node.proc.wait()
        node.start()
        departure = f"participant.left participant_id={pid} reason=node_lost"
        assert wait_for(lambda: departure in node.log_path.read_text(errors="replace"), 3), node.log_tail()
        # The departure is logged before the old state is deleted: wait for the deletes as well.
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner") is None, 3)
        assert wait_for(lambda: not r.exists(f"{PREFIX}node:node-a:participants:conf_room1"), 3)
