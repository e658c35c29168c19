"""A whole cluster on loopback for tests: redis-server, Kamailio in front, K bridge nodes.

``Cluster.start(k)`` brings everything up on free ports from the session's allocator; ``stop()``
tears it all down (also after a failed test). Nodes get their own ports, data directory and
config (the test rooms plus, when this bridge has cluster mode, a ``cluster:`` block pointing at
the test Redis). ``add_node`` and ``kill_node`` change the cluster during a test.
"""

from __future__ import annotations

import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as redis_py

from bridge.cluster.kamailio_config import Node, ProxySettings, RedisTarget
from tests.cluster.procs import KamailioProxy
from tests.e2e.peers.ports import HOST, PortAllocator
from tests.support.bridge_proc import BridgeProcess, stop_all
from tests.support.redis_server import RedisServer

KEY_PREFIX = "tutti:"
RTP_PORTS_PER_NODE = 240   # 120 legs (RTP+RTCP pairs) per node


def bridge_has_cluster_mode() -> bool:
    """True once the bridge's config knows the ``cluster:`` block (issue 21 part A)."""
    from bridge.config import Config

    return "cluster" in Config.model_fields


def single_node(where: dict[str, dict[str, int]]) -> dict[str, str]:
    """Room -> the one node holding all its callers (asserts there is exactly one)."""
    owner: dict[str, str] = {}
    for room, nodes in where.items():
        assert len(nodes) == 1, f"room {room} is split over {nodes}"
        owner[room] = next(iter(nodes))
    return owner


def rooms(count: int, prefix: str = "r") -> list[dict[str, Any]]:
    """``count`` config rooms ``r00``.. (8 kHz: the load callers speak PCMU), each with a dial-in code."""
    return [{"name": f"{prefix}{i:02d}", "dial_in_code": f"7{i:03d}", "account": "acct1", "rate": 8000,
             "max_participants": 20} for i in range(count)]


@dataclass
class Cluster:
    workdir: Path
    ports: PortAllocator
    room_defs: list[dict[str, Any]]
    redis: RedisServer | None = None
    proxy: KamailioProxy | None = None
    nodes: list[BridgeProcess] = field(default_factory=list)
    node_ids: list[str] = field(default_factory=list)
    leases: bool = False         # the nodes write their own room keys (cluster mode)
    node_extra: dict[str, Any] = field(default_factory=dict)
    proxy_key_prefix: str = KEY_PREFIX   # another prefix blinds the proxy to the nodes' leases
    heartbeat_s: float = 0.5             # short: a dead node leaves the registry after 3 heartbeats

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, node_count: int, *, redis: bool = True) -> Cluster:
        self.leases = redis and bridge_has_cluster_mode()
        self.redis = RedisServer(self.ports.port(), self.workdir / "redis")
        if redis:
            self.redis.start()
        for _ in range(node_count):
            self._start_node()
        settings = ProxySettings(run_dir=self.workdir / "kamailio", listen_host=HOST,
                                 listen_port=self.ports.port(), redis=RedisTarget(HOST, self.redis.port, 0),
                                 key_prefix=self.proxy_key_prefix)
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        self.proxy = KamailioProxy(settings, self.dispatcher_nodes()).start()
        return self

    def _start_node(self) -> BridgeProcess:
        index = len(self.nodes)
        node_id = f"node{index + 1}"
        workdir = self.workdir / node_id
        workdir.mkdir(parents=True, exist_ok=True)
        sip_port, http_port = self.ports.port(), self.ports.port()
        lo = self.ports.block(RTP_PORTS_PER_NODE)
        extra: dict[str, Any] = {
            # The proxy is on this host: exempt it from the per-source INVITE limits.
            "security": {"trusted_proxies": [HOST]},
            "log_level": "info",
        }
        if self.leases:
            assert self.redis is not None
            extra["cluster"] = {
                "enabled": True, "node_id": node_id, "redis_url": self.redis.url, "key_prefix": KEY_PREFIX,
                "advertise_sip": f"sip:{HOST}:{sip_port}", "advertise_http": f"http://{HOST}:{http_port}",
                "lease_ttl_s": max(3.0, 2 * self.heartbeat_s), "heartbeat_s": self.heartbeat_s,
            }
        extra.update(self.node_extra)
        node = BridgeProcess(workdir=workdir, sip_port=sip_port, http_port=http_port,
                             rtp_range=(lo, lo + RTP_PORTS_PER_NODE - 1), rooms=self.room_defs, extra=extra)
        self.nodes.append(node)
        self.node_ids.append(node_id)
        return node.start()

    def dispatcher_nodes(self) -> list[Node]:
        return [Node(nid, self.node_uri(n)) for nid, n in zip(self.node_ids, self.nodes)]

    def add_node(self) -> BridgeProcess:
        """Start one more node and append it to the dispatcher list (``kamcmd dispatcher.reload``)."""
        node = self._start_node()
        assert self.proxy is not None
        self.proxy.set_nodes(self.dispatcher_nodes())
        self.proxy.wait_node_state(self.node_uri(node), "AP")
        return node

    def kill_node(self, index: int) -> None:
        """``kill -9`` one node (no BYE, no lease cleanup: what a crash looks like)."""
        proc = self.nodes[index].proc
        assert proc is not None
        proc.kill()
        proc.wait(10)

    def stop(self) -> None:
        stop_all(self.nodes)
        if self.proxy is not None:
            self.proxy.stop()
        if self.redis is not None:
            self.redis.stop()

    def logs(self) -> str:
        parts = []
        if self.proxy is not None:
            parts.append("--- kamailio ---\n" + self.proxy.log_tail(60))
        for nid, node in zip(self.node_ids, self.nodes):
            parts.append(f"--- {nid} ---\n" + node.log_tail(30))
        if self.redis is not None and self.redis.proc is not None:
            log = self.redis.workdir / "redis.log"
            parts.append("--- redis ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-10:]))
        return "\n".join(parts)

    # --- addressing --------------------------------------------------------------------------
    @staticmethod
    def node_uri(node: BridgeProcess) -> str:
        return f"sip:{HOST}:{node.sip_port}"

    @property
    def target(self) -> str:
        """host:port callers dial (Kamailio)."""
        assert self.proxy is not None
        return f"{HOST}:{self.proxy.port}"

    def room_key(self, user: str) -> str:
        return f"{KEY_PREFIX}room:{user}:node"

    def redis_client(self) -> redis_py.Redis:
        assert self.redis is not None
        return redis_py.Redis.from_url(self.redis.url, decode_responses=True)

    def get_key(self, key: str) -> str | None:
        with self.redis_client() as client:
            value = client.get(key)
        return None if value is None else str(value)

    def pin(self, user: str, node: BridgeProcess, ttl_s: int = 60) -> None:
        """Write a room's owner key as a node would (for tests that run without cluster mode)."""
        with self.redis_client() as client:
            client.set(self.room_key(user), self.node_uri(node), ex=ttl_s)

    # --- where the rooms are -----------------------------------------------------------------
    _JOINED = re.compile(r"(part_\w+) joined conf_(\S+) as ")
    _LEFT = re.compile(r"(part_\w+) (?:\(browser\) )?left ")

    def connected(self, node: BridgeProcess) -> dict[str, int]:
        """Room name -> callers in it on ``node`` itself, from the node's own log (joins minus
        departures). Not its REST API: in cluster mode any node lists every node's participants."""
        try:
            text = node.log_path.read_text(errors="replace")
        except OSError:
            return {}
        left = set(self._LEFT.findall(text))
        counts: dict[str, int] = {}
        for pid, room in self._JOINED.findall(text):
            if pid not in left:
                counts[room] = counts.get(room, 0) + 1
        return counts

    def placement(self) -> dict[str, dict[str, int]]:
        """Room -> {node id: callers} over every live node."""
        where: dict[str, dict[str, int]] = {}
        for nid, node in zip(self.node_ids, self.nodes):
            if node.proc is None or node.proc.poll() is not None:
                continue
            for room, n in self.connected(node).items():
                where.setdefault(room, {})[nid] = n
        return where

    def wait_placement(self, expected_callers: dict[str, int], timeout: float = 20.0) -> dict[str, dict[str, int]]:
        """Poll until every room has at least its expected number of callers somewhere."""
        deadline = time.monotonic() + timeout
        where: dict[str, dict[str, int]] = {}
        while time.monotonic() < deadline:
            where = self.placement()
            if all(sum(where.get(r, {}).values()) >= n for r, n in expected_callers.items()):
                return where
            time.sleep(0.5)
        return where

    def rooms_live_metric(self, node: BridgeProcess) -> float:
        with urllib.request.urlopen(node.base_url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        match = re.search(r"^tutti_rooms_live (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0
