"""Fixtures for cluster tests: ``cluster_factory(nodes, rooms=..., redis=True) -> Cluster``.

Everything a factory started is stopped at teardown, and the logs of Kamailio, Redis and each node
are printed then (pytest shows them for failing tests).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.harness import Cluster, rooms
from tests.e2e.peers.ports import PortAllocator


@pytest.fixture
def need_cluster_tools() -> None:
    for binary in ("kamailio", "kamcmd", "redis-server", "sipp"):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is not installed; run scripts/test.sh (it installs Kamailio, Redis, SIPp)")


@pytest.fixture
def cluster_factory(tmp_path: Path, ports: PortAllocator, need_cluster_tools: None) -> Iterator[Callable[..., Cluster]]:
    started: list[Cluster] = []

    def make(nodes: int, *, room_defs: list[dict[str, Any]] | None = None, redis: bool = True,
             **node_extra: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(started)}", ports,
                          room_defs if room_defs is not None else rooms(10), node_extra=node_extra)
        started.append(cluster)
        return cluster.start(nodes, redis=redis)

    yield make
    for cluster in started:
        try:
            print(cluster.logs())
        finally:
            cluster.stop()
