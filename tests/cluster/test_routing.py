"""Kamailio in front of bridge nodes: routing by room (hash on the R-URI user, owner from Redis),
Redis down, a dead node. Real Kamailio, redis-server, bridge processes and SIPp over loopback."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.calls import ROOM_CALL, room_callers
from tests.cluster.harness import Cluster, rooms, single_node
from tests.cluster.procs import sip_options
from tests.e2e.peers.ports import PortAllocator
from tests.e2e.peers.sipp import SippProcess

pytestmark = [pytest.mark.e2e]


def test_each_room_lands_on_one_node(cluster_factory: Callable[..., Cluster], ports: PortAllocator,
                                     tmp_path: Path) -> None:
    cluster = cluster_factory(2, room_defs=rooms(6))
    users = [r["name"] for r in cluster.room_defs] * 2
    with room_callers(cluster, ports, tmp_path / "sipp", users, hold_ms=6000) as sipp:
        where = cluster.wait_placement({u: 2 for u in set(users)})
        owner = single_node(where)
        assert sorted(owner) == sorted(set(users)), where
        assert len(set(owner.values())) == 2, f"hashing used one node only: {owner}"
        result = sipp.wait()
    result.assert_ok(len(users))


def test_owner_in_redis_overrides_hash(cluster_factory: Callable[..., Cluster], ports: PortAllocator,
                                       tmp_path: Path) -> None:
    cluster = cluster_factory(2, room_defs=rooms(4))
    # Where hashing sends each room, then pin every room to the other node.
    with room_callers(cluster, ports, tmp_path / "probe", [r["name"] for r in cluster.room_defs],
                      hold_ms=1500) as sipp:
        hashed = single_node(cluster.wait_placement({r["name"]: 1 for r in cluster.room_defs}))
        sipp.wait().assert_ok(len(cluster.room_defs))
    other = {cluster.node_ids[0]: cluster.nodes[1], cluster.node_ids[1]: cluster.nodes[0]}
    for room, nid in hashed.items():
        cluster.pin(room, other[nid])
    with room_callers(cluster, ports, tmp_path / "pinned", list(hashed), hold_ms=4000) as sipp:
        pinned = single_node(cluster.wait_placement({r: 1 for r in hashed}))
        sipp.wait().assert_ok(len(hashed))
    for room, nid in hashed.items():
        assert pinned[room] != nid, f"{room} ignored its Redis owner: {pinned}"


def test_redis_down_still_routes_by_hash(cluster_factory: Callable[..., Cluster], ports: PortAllocator,
                                         tmp_path: Path) -> None:
    cluster = cluster_factory(2, room_defs=rooms(4), redis=False)  # ndb_redis points at a closed port
    users = [r["name"] for r in cluster.room_defs] * 2
    with room_callers(cluster, ports, tmp_path / "sipp", users, hold_ms=4000) as sipp:
        owner = single_node(cluster.wait_placement({u: 2 for u in set(users)}))
        result = sipp.wait()
    result.assert_ok(len(users))
    assert sorted(owner) == sorted(set(users))


def test_dead_node_fails_over_and_is_marked_down(cluster_factory: Callable[..., Cluster], ports: PortAllocator,
                                                 tmp_path: Path) -> None:
    cluster = cluster_factory(2, room_defs=rooms(4))
    assert cluster.proxy is not None
    cluster.kill_node(0)
    dead = cluster.node_uri(cluster.nodes[0])
    # Calls placed at once: the ones hashed to the dead node wait out fr_timer, then go on.
    users = [r["name"] for r in cluster.room_defs]
    with room_callers(cluster, ports, tmp_path / "sipp", users, hold_ms=3000) as sipp:
        where = cluster.wait_placement({u: 1 for u in users})
        result = sipp.wait()
    result.assert_ok(len(users))
    assert set(single_node(where).values()) == {cluster.node_ids[1]}
    cluster.proxy.wait_node_state(dead, "I", timeout=5.0)


def test_proxy_answers_its_own_options_and_refuses_register(cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(1, room_defs=rooms(1))
    assert cluster.proxy is not None
    assert sip_options(cluster.proxy.port) == 200             # keepalive to the proxy itself
    assert sip_options(cluster.proxy.port, method="REGISTER") == 405
    assert sip_options(cluster.proxy.port, user="r00") == 200  # relayed to the node, which answers


def test_probing_marks_a_dead_node_down(cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(2, room_defs=rooms(1))
    assert cluster.proxy is not None
    uri = cluster.node_uri(cluster.nodes[0])
    cluster.proxy.wait_node_state(uri, "AP")
    cluster.kill_node(0)
    took = cluster.proxy.wait_node_state(uri, "I", timeout=10.0)
    print(f"OPTIONS probing marked the killed node down after {took:.1f} s")
    assert took < 5.0


def test_node_redirect_to_the_owner_is_followed(cluster_factory: Callable[..., Cluster], ports: PortAllocator,
                                                tmp_path: Path) -> None:
    """A node that gets a call for a room another node mixes answers 302 (cluster mode); the proxy
    follows it. The proxy reads another key prefix here, so it cannot see the owner and hashes."""
    cluster = cluster_factory(2, room_defs=rooms(4), proxy_key_prefix="blind:")
    if not cluster.leases:
        pytest.skip("needs the bridge's cluster mode (302 to the owner)")
    assert cluster.proxy is not None
    # Where the hash sends r00, then make the other node its owner by calling it directly.
    with room_callers(cluster, ports, tmp_path / "probe", ["r00"], hold_ms=1000) as sipp:
        hashed = single_node(cluster.wait_placement({"r00": 1}))["r00"]
        sipp.wait().assert_ok(1)
    time.sleep(1.0)   # the lease is released when the room empties
    other = 1 - cluster.node_ids.index(hashed)
    owner = cluster.nodes[other]
    direct = ports.sipp()
    with SippProcess(ROOM_CALL, f"127.0.0.1:{owner.sip_port}", local_port=direct.sip, media_port=direct.media,
                     calls=1, extra_args=["-inf", str(_inf(tmp_path / "direct", ["r00"])), "-d", "8000"],
                     timeout=30, workdir=tmp_path / "direct") as first:
        assert single_node(cluster.wait_placement({"r00": 1}))["r00"] == cluster.node_ids[other]
        with room_callers(cluster, ports, tmp_path / "via-proxy", ["r00"], hold_ms=2000) as sipp:
            where = cluster.wait_placement({"r00": 2})
            sipp.wait().assert_ok(1)
        first.wait().assert_ok(1)
    assert where == {"r00": {cluster.node_ids[other]: 2}}, where
    assert "redirected to" in cluster.proxy.log_path.read_text(errors="replace")


def _inf(workdir: Path, users: list[str]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "rooms.csv"
    path.write_text("SEQUENTIAL\n" + "".join(f"{u};\n" for u in users))
    return path


def test_dial_in_code_reaches_the_node_that_has_the_room(cluster_factory: Callable[..., Cluster],
                                                         ports: PortAllocator, tmp_path: Path) -> None:
    """A room's name and its dial-in code hash differently; once the room is live, the owner key of
    every dial string (written by the node in cluster mode) sends both to the same node."""
    cluster = cluster_factory(3, room_defs=rooms(6))
    if not cluster.leases:
        pytest.skip("needs the bridge's cluster mode (owner keys for every dial string)")
    codes = {r["name"]: r["dial_in_code"] for r in cluster.room_defs}
    names = list(codes)
    with room_callers(cluster, ports, tmp_path / "by-name", names, hold_ms=8000) as first:
        owner = single_node(cluster.wait_placement({n: 1 for n in names}))
        time.sleep(1.0)   # a heartbeat: the owner keys are written
        with room_callers(cluster, ports, tmp_path / "by-code", [codes[n] for n in names], hold_ms=2000) as second:
            where = cluster.wait_placement({n: 2 for n in names})
            second.wait().assert_ok(len(names))
        first.wait().assert_ok(len(names))
    assert single_node(where) == owner
