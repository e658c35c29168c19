"""Fixtures for cluster tests.

- ``redis_server`` and ``node_factory``: bridges in cluster mode sharing one redis-server (no proxy).
- ``cluster_factory(nodes, room_defs=..., redis=True) -> Cluster``: redis-server, Kamailio in front and
  K bridge nodes (tests/cluster/harness.py). Everything it started is stopped at teardown, and the
  logs of Kamailio, Redis and each node are printed then (pytest shows them for failing tests).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.harness import Cluster, rooms
from tests.cluster.helpers import PREFIX
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path, ports: PortAllocator) -> Iterator[RedisServer]:
    """``redis-server --save "" --appendonly no`` on a free loopback port, stopped afterwards."""
    server = RedisServer(ports.port(), tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def node_factory(tmp_path: Path, ports: PortAllocator, redis_server: RedisServer,
                 bridge_factory: Callable[..., BridgeProcess]) -> Callable[..., BridgeProcess]:
    """Bridges in cluster mode sharing ``redis_server`` (heartbeat 0.5 s, leases of 3 s)."""

    def make(node_id: str, rooms: list[dict[str, Any]] | None = None, lease_ttl_s: float = 3,
             **extra: Any) -> BridgeProcess:
        sip, http = ports.port(), ports.port()
        cluster = {"enabled": True, "node_id": node_id, "redis_url": redis_server.url, "key_prefix": PREFIX,
                   "advertise_sip": f"sip:127.0.0.1:{sip}", "advertise_http": f"http://127.0.0.1:{http}",
                   "lease_ttl_s": lease_ttl_s, "heartbeat_s": 0.5}
        return bridge_factory(rooms, tmp_path / node_id, sip_port=sip, http_port=http, cluster=cluster, **extra)

    return make


@pytest.fixture
def need_cluster_tools() -> None:
    for binary in ("kamailio", "kamcmd", "redis-server", "sipp"):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is not installed; run scripts/test.sh (it installs Kamailio, Redis, SIPp)")


@pytest.fixture
def cluster_factory(tmp_path: Path, ports: PortAllocator, need_cluster_tools: None) -> Iterator[Callable[..., Cluster]]:
    started: list[Cluster] = []

    def make(nodes: int, *, room_defs: list[dict[str, Any]] | None = None, redis: bool = True,
             proxy_key_prefix: str = PREFIX, heartbeat_s: float = 0.5, **node_extra: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(started)}", ports,
                          room_defs if room_defs is not None else rooms(10), node_extra=node_extra,
                          proxy_key_prefix=proxy_key_prefix, heartbeat_s=heartbeat_s)
        started.append(cluster)
        return cluster.start(nodes, redis=redis)

    yield make
    for cluster in started:
        try:
            print(cluster.logs())
        finally:
            cluster.stop()
