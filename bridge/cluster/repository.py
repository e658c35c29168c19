"""Conference definitions in Redis, shared by every node (cluster mode's ``ConferenceRepository``).

``P conferences`` is a hash: conference id -> the same JSON record SQLite keeps. The service
still reads from memory (SIP routing never waits on Redis): ``preload`` reads the hash once at
start, each write is an HSET followed by a PUBLISH of the id on ``P conf-changes``, and every
node re-reads the changed conference and takes it into its memory. Concurrent changes of one
conference on two nodes: the last write wins (as two API calls racing on one node do).

Uploaded media (hold music files) are refused in cluster mode: the files would live on one
node's disk. Hold music by URL (``hold_music_url``, ``hold_audio_url``) works on every node.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from redis.asyncio import Redis

from ..control.model import Conference
from .keys import Keys

log = logging.getLogger("bridge.cluster")


class RedisConferenceStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._loaded: list[Conference] = []
        self._last: asyncio.Task[None] | None = None
        self.on_remote: Callable[[Conference], None] | None = None   # ConferenceService.absorb

    async def preload(self) -> None:
        raw = await self.redis.hgetall(self.keys.conferences)  # type: ignore[misc]
        confs = [Conference.from_record(json.loads(v)) for v in raw.values()]
        self._loaded = sorted(confs, key=lambda c: (c.created_at, c.id))

    async def resync(self) -> None:
        """Re-read every conference (after a lost subscription: changes may have been missed)."""
        await self.preload()
        if self.on_remote is not None:
            for conf in self._loaded:
                self.on_remote(conf)

    def load_all(self) -> list[Conference]:
        return list(self._loaded)

    def put(self, conf: Conference) -> None:
        # Chained: writes reach Redis in the order the service made them.
        self._last = asyncio.get_running_loop().create_task(self._write(self._last, conf))

    async def _write(self, before: asyncio.Task[None] | None, conf: Conference) -> None:
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys.conferences, conf.id, json.dumps(conf.to_record()))
        pipe.publish(self.keys.conf_changes, conf.id)
        await pipe.execute()

    async def drained(self) -> None:
        """Wait until every write so far is in Redis (raises if the last one failed: 503)."""
        if self._last is not None:
            await asyncio.shield(self._last)

    async def changed(self, conf_id: str) -> None:
        """``P conf-changes`` said ``conf_id`` changed: read it and hand it to the service."""
        text = await self.redis.hget(self.keys.conferences, conf_id)  # type: ignore[misc]
        if text is not None and self.on_remote is not None:
            self.on_remote(Conference.from_record(json.loads(text)))
