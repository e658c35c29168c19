"""Conference definitions in Redis, shared by every node (cluster mode's ``ConferenceRepository``).

``P conferences`` is a hash: conference id -> the same JSON record SQLite keeps. The service
still reads from memory (SIP routing never waits on Redis): ``preload`` reads the hash once at
start, each write is an HSET followed by a PUBLISH of the id on ``P conf-changes``, and every
node re-reads the changed conference and takes it into its memory. A write carries only the
fields this node changed (compared with the version it last read or wrote) and merges them into
the stored record (WATCH/MULTI), so an owner marking a conference active does not undo a setting
another node changed a moment before; the same field changed on two nodes at once: the last wins.

Uploaded media (hold music files): the metadata in the hash ``P media``, the bytes (base64) in
``P media:<id>:bytes``; each node keeps a copy of every file in its own ``<data_dir>/media``
(written at start and when ``P media-changes`` names a new one, removed when it names a deleted one),
so the media side still plays local files.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from ..control.model import Conference, Media
from .keys import Keys, text

log = logging.getLogger("bridge.cluster")
MERGE_ATTEMPTS = 50


class RedisConferenceStore:
    def __init__(self, redis: Redis, keys: Keys, media_dir: str) -> None:
        self.redis = redis
        self.keys = keys
        self.media_dir = media_dir          # this node's copies of the uploaded files
        self._loaded: list[Conference] = []
        self._base: dict[str, dict[str, object]] = {}   # each record as last read from or written to Redis
        self._media: dict[str, Media] = {}    # as this node last knew them
        self._last: asyncio.Task[None] | None = None
        self.on_remote: Callable[[Conference], None] | None = None   # ConferenceService.absorb
        self.on_media: Callable[[str, Media | None], None] | None = None   # id, None: deleted

    async def preload(self) -> None:
        raw = await self.redis.hgetall(self.keys.conferences)  # type: ignore[misc]
        self._base = {text(k): json.loads(v) for k, v in raw.items()}
        confs = [Conference.from_record(dict(rec)) for rec in self._base.values()]
        self._loaded = sorted(confs, key=lambda c: (c.created_at, c.id))
        raw = await self.redis.hgetall(self.keys.media)  # type: ignore[misc]
        listed = sorted((Media.from_record(json.loads(v)) for v in raw.values()), key=lambda m: (m.created_at, m.id))
        self._media = {m.id: m for m in listed}
        for media in listed:
            await self._copy_here(media)

    async def resync(self) -> None:
        """Re-read every conference (after a lost subscription: changes may have been missed)."""
        before = set(self._media)
        await self.preload()
        if self.on_media is not None:
            for media_id in before - set(self._media):
                self.on_media(media_id, None)
            for media_id, media in self._media.items():
                self.on_media(media_id, media)
        if self.on_remote is not None:
            for conf in self._loaded:
                self.on_remote(conf)

    def load_all(self) -> list[Conference]:
        return list(self._loaded)

    def put(self, conf: Conference) -> None:
        record = conf.to_record()
        base = self._base.get(conf.id)
        changes = record if base is None else {k: v for k, v in record.items() if base.get(k) != v}
        if not changes:
            return
        self._base[conf.id] = {**(base or {}), **changes}

        async def write() -> None:
            self._base[conf.id] = await self._merge(conf.id, changes)
        self._chain(write)

    async def _merge(self, conf_id: str, changes: dict[str, object]) -> dict[str, object]:
        """Apply ``changes`` to the stored record atomically (retried if another write came between)."""
        key = self.keys.conferences
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MERGE_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    current = await pipe.hget(key, conf_id)  # type: ignore[misc]
                    merged = {**json.loads(current), **changes} if current is not None else dict(changes)
                    pipe.multi()
                    pipe.hset(key, conf_id, json.dumps(merged))
                    pipe.publish(self.keys.conf_changes, conf_id)
                    await pipe.execute()
                    return merged
                except WatchError:
                    continue
        raise RedisError(f"conference {conf_id}: {MERGE_ATTEMPTS} concurrent writes in a row; not saved")

    def _chain(self, write: Callable[[], Awaitable[None]]) -> None:
        """Writes reach Redis in the order the service made them."""
        before = self._last

        async def run() -> None:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            await write()
        self._last = asyncio.get_running_loop().create_task(run())

    # -- media (``MediaRepository``) ---------------------------------------------------------

    def load_media(self) -> list[Media]:
        return list(self._media.values())

    def put_media(self, media: Media) -> None:
        self._media[media.id] = media
        async def write() -> None:
            data = await asyncio.to_thread(_read, os.path.join(self.media_dir, media.filename))
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(self.keys.media_bytes(media.id), base64.b64encode(data).decode())
            pipe.hset(self.keys.media, media.id, json.dumps(media.to_record()))
            pipe.publish(self.keys.media_changes, media.id)
            await pipe.execute()
        self._chain(write)

    def delete_media(self, media_id: str) -> None:
        self._media.pop(media_id, None)
        async def write() -> None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.hdel(self.keys.media, media_id)
            pipe.delete(self.keys.media_bytes(media_id))
            pipe.publish(self.keys.media_changes, media_id)
            await pipe.execute()
        self._chain(write)

    async def media_changed(self, media_id: str) -> None:
        """``P media-changes`` named ``media_id``: copy a new file here, or forget a deleted one."""
        raw = await self.redis.hget(self.keys.media, media_id)  # type: ignore[misc]
        media = None if raw is None else Media.from_record(json.loads(raw))
        if media is not None and not await self._copy_here(media):
            return
        if media is None:
            self._media.pop(media_id, None)
        else:
            self._media[media_id] = media
        if self.on_media is not None:
            self.on_media(media_id, media)

    async def _copy_here(self, media: Media) -> bool:
        """Write the file into this node's media directory unless it is there; False if its bytes
        are gone (deleted meanwhile)."""
        path = os.path.join(self.media_dir, media.filename)
        if os.path.exists(path):
            return True
        encoded = await self.redis.get(self.keys.media_bytes(media.id))
        if encoded is None:
            log.warning("cluster: media %s has no bytes in Redis; not copied", media.id)
            return False
        await asyncio.to_thread(_write, self.media_dir, media.filename, base64.b64decode(encoded))
        return True

    async def drained(self) -> None:
        """Wait until every write so far is in Redis (raises if the last one failed: 503)."""
        if self._last is not None:
            await asyncio.shield(self._last)

    async def changed(self, conf_id: str) -> None:
        """``P conf-changes`` said ``conf_id`` changed: read it and hand it to the service."""
        raw = await self.redis.hget(self.keys.conferences, conf_id)  # type: ignore[misc]
        if raw is None:
            return
        record = json.loads(raw)
        self._base[conf_id] = record
        if self.on_remote is not None:
            self.on_remote(Conference.from_record(dict(record)))


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write(directory: str, filename: str, data: bytes) -> None:
    """Write through a temporary name: a half-written file is never played."""
    os.makedirs(directory, exist_ok=True)
    temp = os.path.join(directory, f".{filename}.copy")
    with open(temp, "wb") as f:
        f.write(data)
    os.replace(temp, os.path.join(directory, filename))
