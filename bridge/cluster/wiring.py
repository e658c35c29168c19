"""Cluster mode's composition: the Redis client, the shared conference store, this node's
cluster part and the ``LiveRooms`` wrapper, attached to the app's service and bus."""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..config import Config, ConfigError
from ..control.events import EventBus
from ..control.model import OPEN_STATUSES, Conference, LiveRooms
from ..control.service import ConferenceService
from .keys import Keys
from .mirror import redirect_contact
from .node import ClusterNode
from .repository import RedisConferenceStore
from .rooms import ClusterRooms

log = logging.getLogger("bridge.cluster")


class Cluster:
    def __init__(self, store: RedisConferenceStore, node: ClusterNode, rooms: ClusterRooms) -> None:
        self.store, self.node, self.rooms = store, node, rooms
        self.service: ConferenceService | None = None

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
        store = RedisConferenceStore(redis, Keys(cfg.cluster.key_prefix))
        await store.preload()
        node = ClusterNode(cfg.cluster, redis, local, resolve, bus)
        return cls(store, node, ClusterRooms(local, node))

    async def start(self, service: ConferenceService, bus: EventBus) -> None:
        self.service = service
        self.store.on_remote = self._absorb
        self.node.on_conf_change = self.store.changed
        self.node.on_resync = self.store.resync
        bus.subscribe("cluster", self.node.on_event)
        await self.node.start()

    def _absorb(self, conf: Conference) -> None:
        """Another node (or this one) stored ``conf``: take it; a live part here applies it."""
        assert self.service is not None
        if self.service.absorb(conf) and self.node.live_here(conf.id) and conf.status in OPEN_STATUSES:
            self.rooms.local.conference_changed(conf)

    def redirect(self, conf_id: str, user: str) -> str | None:
        """The 302 Contact for a caller of a room another live node mixes (None: mix it here)."""
        room = self.node.remote_room(conf_id)
        return None if room is None else redirect_contact(user, room.sip)

    async def close(self) -> None:
        await self.node.close()
