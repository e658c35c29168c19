"""The shared conference store against a real redis-server: writes merge field by field."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime, timezone

import pytest
from redis.asyncio import Redis

from bridge.cluster.keys import Keys
from bridge.cluster.repository import RedisConferenceStore
from bridge.control.model import Conference
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
KEYS = Keys("t:")


async def stored(redis: Redis) -> dict[str, object]:
    record: dict[str, object] = json.loads(await redis.hget("t:conferences", "conf_1"))  # type: ignore[misc]
    return record


async def test_a_stale_write_keeps_what_another_node_changed(redis_server: RedisServer) -> None:
    clients = [Redis.from_url(redis_server.url, decode_responses=True) for _ in range(5)]
    try:
        a, b, *more = (RedisConferenceStore(c, KEYS, "/nonexistent") for c in clients)
        conf = Conference(id="conf_1", account_id="acct", name="first", dial_in_code="12345678", created_at=T0)
        a.put(conf)
        await a.drained()
        for store in (b, *more):
            await store.preload()
        # A renames it; B, not told yet, marks its stale copy active: both changes stay.
        a.put(dataclasses.replace(conf, name="renamed"))
        await a.drained()
        b.put(dataclasses.replace(conf, status="active"))
        await b.drained()
        record = await stored(clients[0])
        assert (record["name"], record["status"]) == ("renamed", "active")
        # Three more nodes, each changing another field from the same stale copy, all at once.
        more[0].put(dataclasses.replace(conf, max_participants=10))
        more[1].put(dataclasses.replace(conf, member_pins=("1111",)))
        more[2].put(dataclasses.replace(conf, client_state="c3"))
        await asyncio.gather(*(s.drained() for s in more))
        record = await stored(clients[0])
        assert (record["name"], record["status"], record["max_participants"], record["member_pins"],
                record["client_state"]) == ("renamed", "active", 10, ["1111"], "c3")
    finally:
        for c in clients:
            await c.aclose()
