"""Kamailio in front of bridge nodes: routing by room (hash on the R-URI user, owner from Redis),
Redis down, a dead node. Real Kamailio, redis-server, bridge processes and SIPp over loopback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.calls import room_callers
from tests.cluster.harness import Cluster, rooms
from tests.e2e.peers.ports import PortAllocator

pytestmark = [pytest.mark.e2e]


def _single_node(where: dict[str, dict[str, int]]) -> dict[str, str]:
    """Room -> the one node holding all its callers (asserts there is exactly one)."""
    owner: dict[str, str] = {}
    for room, nodes in where.items():
        assert len(nodes) == 1, f"room {room} is split over {nodes}"
        owner[room] = next(iter(nodes))
    return owner


def test_each_room_lands_on_one_node(cluster_factory: Callable[..., Cluster], ports: PortAllocator,
                                     tmp_path: Path) -> None:
    cluster = cluster_factory(2, room_defs=rooms(6))
    users = [r["name"] for r in cluster.room_defs] * 2
    with room_callers(cluster, ports, tmp_path / "sipp", users, hold_ms=6000) as sipp:
        where = cluster.wait_placement({u: 2 for u in set(users)})
        owner = _single_node(where)
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
        hashed = _single_node(cluster.wait_placement({r["name"]: 1 for r in cluster.room_defs}))
        sipp.wait().assert_ok(len(cluster.room_defs))
    other = {cluster.node_ids[0]: cluster.nodes[1], cluster.node_ids[1]: cluster.nodes[0]}
    for room, nid in hashed.items():
        cluster.pin(room, other[nid])
    with room_callers(cluster, ports, tmp_path / "pinned", list(hashed), hold_ms=4000) as sipp:
        pinned = _single_node(cluster.wait_placement({r: 1 for r in hashed}))
        sipp.wait().assert_ok(len(hashed))
    for room, nid in hashed.items():
        assert pinned[room] != nid, f"{room} ignored its Redis owner: {pinned}"


def test_redis_down_still_routes_by_hash(cluster_factory: Callable[..., Cluster], ports: PortAllocator,
                                         tmp_path: Path) -> None:
    cluster = cluster_factory(2, room_defs=rooms(4), redis=False)  # ndb_redis points at a closed port
    users = [r["name"] for r in cluster.room_defs] * 2
    with room_callers(cluster, ports, tmp_path / "sipp", users, hold_ms=4000) as sipp:
        owner = _single_node(cluster.wait_placement({u: 2 for u in set(users)}))
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
    assert set(_single_node(where).values()) == {cluster.node_ids[1]}
    cluster.proxy.wait_node_state(dead, "I", timeout=5.0)
