"""Cluster mode's composition: the Redis client, the shared conference store, this node's
cluster part and the ``LiveRooms`` wrapper, attached to the app's service and bus."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..config import Config, ConfigError
from ..control.events import EventBus
from ..control.model import OPEN_STATUSES, Conference, LiveRooms, Media
from ..control.service import ConferenceService
from .keys import Keys
from .mirror import redirect_contact
from .node import ClusterNode
from .repository import RedisConferenceStore
from .rooms import ClusterCallControl, ClusterRooms

log = logging.getLogger("bridge.cluster")
ONCE_MS = 600_000


class Cluster:
    def __init__(self, store: RedisConferenceStore, node: ClusterNode, rooms: ClusterRooms) -> None:
        self.store, self.node, self.rooms = store, node, rooms
        self.service: ConferenceService | None = None
        self._prefetch: Callable[[Conference], None] | None = None

    @classmethod
    async def connect(cls, cfg: Config, bus: EventBus, local: LiveRooms,
                      resolve: Callable[[str], Conference | None]) -> Cluster:
        assert cfg.cluster.redis_url is not None
        redis = Redis.from_url(cfg.cluster.redis_url, decode_responses=True)
        try:
            await redis.ping()
        except (RedisError, OSError) as err:
            await redis.aclose()
            raise ConfigError(f"cluster.redis_url: cannot reach Redis at {cfg.cluster.redis_url}: {err}") from None
        media_dir = os.path.abspath(os.path.join(cfg.data_dir, "media"))   # as ConferenceService.media_dir
        store = RedisConferenceStore(redis, Keys(cfg.cluster.key_prefix), media_dir)
        await store.preload()
        node = ClusterNode(cfg.cluster, redis, local, resolve, bus)
        return cls(store, node, ClusterRooms(local, node))

    async def start(self, service: ConferenceService, bus: EventBus,
                    prefetch: Callable[[Conference], None] | None = None) -> None:
        """``prefetch``: start fetching a conference's hold music URL (as its creating node did)."""
        self.service = service
        self._prefetch = prefetch
        self.store.on_remote = self._absorb
        self.node.on_conf_change = self.store.changed
        self.node.on_resync = self.store.resync
        self.node.on_media_change = self.store.media_changed
        self.store.on_media = self._media_changed
        bus.subscribe("cluster", self.node.on_event)
        await self.node.start()

    def _absorb(self, conf: Conference) -> None:
        """Another node (or this one) stored ``conf``: take it; a live part here applies it."""
        assert self.service is not None
        if not self.service.absorb(conf) or conf.status not in OPEN_STATUSES:
            return
        if self._prefetch is not None:
            self._prefetch(conf)
        if self.node.live_here(conf.id):
            self.rooms.local.conference_changed(conf)

    def _media_changed(self, media_id: str, media: Media | None) -> None:
        assert self.service is not None
        old = self.service.absorb_media(media_id, media)
        if media is None and old is not None:     # deleted through another node: our copy goes too
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.store.media_dir, old.filename))

    def call_control(self, local: Any) -> Any:
        """The Telnyx routes' call side, refusing room commands for rooms mixed elsewhere."""
        return ClusterCallControl(local, self.rooms)

    async def end_expired(self, conf_id: str) -> None:
        """Every node's sweep finds an expired conference; one of them ends it (its owner's room,
        over a command if need be), so ``conference.ended`` is announced once in the cluster."""
        node = self.node
        try:
            first = await node.redis.set(node.keys.once("expire", conf_id), node.me.node_id, nx=True, px=ONCE_MS)
        except (RedisError, OSError) as err:     # ended twice rather than never (at least once)
            log.warning("cluster: expiry of %s not coordinated (%s); ending it from here", conf_id, err)
            first = True
        if first:
            self.rooms.end_conference(conf_id, "time_exceeded")

    def redirect(self, conf_id: str, user: str) -> str | None:
        """The 302 Contact for a caller of a room another live node mixes (None: mix it here)."""
        room = self.node.remote_room(conf_id)
        return None if room is None else redirect_contact(user, room.sip)

    async def close(self) -> None:
        await self.node.close()
