"""The node registry: ``P node:<id>`` = JSON {sip, http, started_at}, expiring after three
heartbeats, and the set ``P nodes`` of every node that registered. A member of the set whose
key has expired is a lost node; the survivors notice it at their next heartbeat."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from .keys import Keys, text


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    sip: str
    http: str
    started_at: float

    def to_json(self) -> str:
        return json.dumps({"sip": self.sip, "http": self.http, "started_at": self.started_at})

    @classmethod
    def from_json(cls, node_id: str, text: str) -> NodeInfo:
        data = json.loads(text)
        return cls(node_id, str(data["sip"]), str(data["http"]), float(data["started_at"]))


def registry_ttl_ms(heartbeat_s: float) -> int:
    return int(3 * heartbeat_s * 1000)


def lost_nodes(members: Iterable[str], alive: Iterable[str], me: str) -> list[str]:
    """Registered nodes whose registry key has expired (never ourselves: if our own key expired
    we were stalled, and the next beat writes it again)."""
    live = set(alive)
    return sorted(m for m in members if m not in live and m != me)


class Registry:
    def __init__(self, redis: object, keys: Keys, me: NodeInfo, heartbeat_s: float) -> None:
        from redis.asyncio import Redis

        assert isinstance(redis, Redis)
        self.redis = redis
        self.keys = keys
        self.me = me
        self.ttl_ms = registry_ttl_ms(heartbeat_s)

    async def beat(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.node(self.me.node_id), self.me.to_json(), px=self.ttl_ms)
        pipe.sadd(self.keys.nodes, self.me.node_id)
        await pipe.execute()

    async def nodes(self) -> tuple[list[str], dict[str, NodeInfo]]:
        """(every registered id, the live ones with their entry)."""
        members = sorted(text(m) for m in await self.redis.smembers(self.keys.nodes))  # type: ignore[misc]
        if not members:
            return [], {}
        values = await self.redis.mget([self.keys.node(m) for m in members])
        alive = {m: NodeInfo.from_json(m, text(v)) for m, v in zip(members, values) if v is not None}
        return members, alive

    async def leave(self) -> None:
        """A clean stop: out of the registry at once (our rooms were emptied and released)."""
        await self.redis.delete(self.keys.node(self.me.node_id))
        await self.redis.srem(self.keys.nodes, self.me.node_id)  # type: ignore[misc]
