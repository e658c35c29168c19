"""One bridge node's part of the cluster: leases, registry, heartbeats, room snapshots,
commands for the rooms it mixes, and the clean-up after a lost node.

Event-loop friendly: the bus subscriber (``on_event``) only records what changed and wakes the
worker task; every Redis round trip happens in that task or in the pub/sub listener, never in
the media tick or in an HTTP handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from ..adapters.waiting import wait_set
from ..config_cascade import sip_hostport
from ..control import events as ev
from ..control.model import Conference, LiveRooms
from .keys import Keys, dial_users, text
from .leases import LeaseBook, Leases
from .mirror import RemoteRoom, parse_snapshot, snapshot_message, view_from_json, view_to_json
from .registry import NodeInfo, Registry, lost_nodes
from .settings import ClusterConfig

log = logging.getLogger("bridge.cluster")

REAP_LOCK_MS = 60_000
# Participant events that change what the listing shows (talking/levels are not mirrored).
_MIRRORED = (ev.ParticipantJoined, ev.ParticipantLeft, ev.ParticipantDialing, ev.ParticipantRejected,
             ev.ParticipantMuteChanged, ev.ParticipantDeafChanged, ev.ParticipantHoldChanged)


class ClusterNode:
    def __init__(self, cfg: ClusterConfig, redis: Redis, local: LiveRooms,
                 resolve: Callable[[str], Conference | None], bus: ev.EventBus) -> None:
        assert cfg.node_id and cfg.advertise_sip and cfg.advertise_http
        self.cfg = cfg
        self.redis = redis
        self.keys = Keys(cfg.key_prefix)
        self.me = NodeInfo(cfg.node_id, cfg.advertise_sip, cfg.advertise_http, time.time())
        self.local = local
        self.resolve = resolve
        self.bus = bus
        self.book = LeaseBook(cfg.node_id)
        self.leases = Leases(redis, self.keys, self.book, cfg.advertise_sip, cfg.lease_ttl_s)
        self.registry = Registry(redis, self.keys, self.me, cfg.heartbeat_s)
        self.remote: dict[str, RemoteRoom] = {}
        self.alive: dict[str, NodeInfo] = {}
        self.sips: dict[str, str] = {self.me.node_id: self.me.sip}   # every node's advertise_sip seen
        self._last_cmd: asyncio.Task[None] | None = None
        self.on_conf_change: Callable[[str], Awaitable[None]] | None = None   # the repository's
        self.on_resync: Callable[[], Awaitable[None]] | None = None   # after missed messages
        self.on_media_change: Callable[[str], Awaitable[None]] | None = None
        self._claims: set[str] = set()        # went live here, not claimed yet
        self._releases: list[tuple[str, tuple[str, ...]]] = []
        self._dirty: set[str] = set()         # rooms whose snapshot must be published
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self.reaped: list[str] = []           # lost nodes this node announced (tests, logs)
        # Rooms here that are a part of another node's room (README "One room across nodes"):
        # the owner holds the lease, so a part is never claimed, mirrored or released here.
        self.is_part: Callable[[str], bool] = lambda conf_id: False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.registry.beat()
        await self._reap(self.me.node_id, announce_only_if_left=True)   # leftovers of our own crash
        await self._load_remote()
        pubsub = await self._subscribe()
        self._tasks = [asyncio.create_task(self._listen(pubsub)), asyncio.create_task(self._work())]
        log.info("cluster: node %s up (SIP %s, HTTP %s), %d other node(s) alive",
                 self.me.node_id, self.me.sip, self.me.http, len(self.alive) - 1)

    async def close(self) -> None:
        # A flag as well as cancel(): redis-py may swallow a cancellation that lands inside one
        # of its requests, and the worker would then wait for its next heartbeat for ever.
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=2 * self.cfg.heartbeat_s + 1)
            if pending:
                log.warning("cluster: %d background task(s) did not stop; leaving without them", len(pending))
        try:
            await self._flush()
            for conf_id in list(self.book.wanted):
                await self._release(conf_id, self.book.drop(conf_id))
            await self.registry.leave()
        except Exception:
            log.exception("cluster: clean leave failed (the leases expire on their own)")
        await self.redis.aclose()

    # -- what the rest of the bridge asks ----------------------------------------------------

    def live_here(self, conf_id: str) -> bool:
        return conf_id in self.book.wanted

    def part_nodes(self) -> list[str]:
        """host:port of every other live node: where a room past ``cascade.part_size`` may spread."""
        return sorted(sip_hostport(info.sip) for nid, info in self.alive.items() if nid != self.me.node_id)

    def remote_room(self, conf_id: str) -> RemoteRoom | None:
        """The room's live part on another (live) node, unless it is live here too."""
        room = self.remote.get(conf_id)
        if room is None or conf_id in self.book.wanted or room.node_id not in self.alive:
            return None
        return room

    def send(self, node_id: str, command: dict[str, object]) -> None:
        """Fire a command at the node that mixes a room (it applies it at its next tick)."""
        before = self._last_cmd

        async def publish() -> None:
            if before is not None:       # in the order they were given (a mute, then an unmute)
                await asyncio.gather(before, return_exceptions=True)
            try:
                if not await self.redis.publish(self.keys.node_cmd(node_id), json.dumps(command)):
                    log.warning("cluster: node %s did not receive %s (gone?); the command is lost", node_id, command)
            except (RedisError, OSError) as err:
                log.warning("cluster: command not sent (%s: %s)", type(err).__name__, err)
        task = self._last_cmd = asyncio.get_running_loop().create_task(publish())
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    # -- the bus subscriber (sync, called after each tick) ---------------------------------

    def on_event(self, event: ev.DomainEvent) -> None:
        cid = event.conference_id
        if isinstance(event, ev.ParticipantJoined) and cid not in self.book.wanted and not self.is_part(cid):
            conf = self.resolve(cid)
            self.book.want(cid, dial_users(conf) if conf is not None else (cid,))
            self._claims.add(cid)
        if isinstance(event, ev.ConferenceEnded) and cid in self.book.wanted:
            self._claims.discard(cid)
            self._dirty.discard(cid)
            self._releases.append((cid, self.book.drop(cid)))
        elif isinstance(event, _MIRRORED) and cid in self.book.wanted:
            self._dirty.add(cid)
        else:
            return
        self._wake.set()

    # -- the worker --------------------------------------------------------------------------

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.cfg.heartbeat_s
        while not self._stopping:
            await wait_set(self._wake, max(0.0, next_beat - loop.time()))
            self._wake.clear()
            try:
                await self._flush()
                if loop.time() >= next_beat:
                    next_beat = loop.time() + self.cfg.heartbeat_s
                    await self._heartbeat()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as err:   # Redis away: the media goes on, retry next heartbeat
                log.warning("cluster: Redis request failed (%s: %s); retrying at the next heartbeat",
                            type(err).__name__, err)
            except Exception:
                log.exception("cluster: heartbeat failed")

    async def _flush(self) -> None:
        while self._releases:
            conf_id, users = self._releases[0]
            await self._release(conf_id, users)     # raises while Redis is away: retried next time
            self._releases.pop(0)
        for conf_id in sorted(self._claims):     # each one forgotten only once done (Redis may be away)
            wanted = self.book.wanted.get(conf_id)
            if wanted is not None and await self.leases.claim(conf_id, wanted) == "held":
                self._dirty.add(conf_id)
            self._claims.discard(conf_id)
        for conf_id in sorted(self._dirty):
            self._dirty.discard(conf_id)     # before the snapshot: a change during the await marks it again
            if conf_id in self.book.held:
                try:
                    await self._publish_room(conf_id)
                except Exception:
                    self._dirty.add(conf_id)
                    raise

    async def _release(self, conf_id: str, users: tuple[str, ...]) -> None:
        if users:
            await self.leases.release(conf_id, users)
        await self.redis.delete(self.keys.participants(self.me.node_id, conf_id))
        await self.redis.publish(self.keys.room_changes, snapshot_message(conf_id, self.me.node_id, self.me.sip, None))

    async def _publish_room(self, conf_id: str) -> None:
        views = self.local.participants(conf_id)
        key = self.keys.participants(self.me.node_id, conf_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        if views:
            pipe.hset(key, mapping={v.participant_id: view_to_json(v) for v in views})
        pipe.publish(self.keys.room_changes,
                     snapshot_message(conf_id, self.me.node_id, self.me.sip, views, self.me.http))
        await pipe.execute()

    async def _heartbeat(self) -> None:
        await self.registry.beat()
        await self.leases.renew_all()
        before = self.alive
        members, self.alive = await self.registry.nodes()
        for node_id in sorted(set(self.alive) - set(before) - {self.me.node_id}):
            # From now on this node may send callers there (cascade) and route to its rooms.
            log.info("cluster: node %s seen alive (SIP %s)", node_id, self.alive[node_id].sip)
        self.sips.update({n: info.sip for n, info in self.alive.items()})
        for lost in lost_nodes(members, self.alive, self.me.node_id):
            self.remote = {c: r for c, r in self.remote.items() if r.node_id != lost}
            await self._reap(lost)
        for conf_id in self.book.retry_dead(set(self.alive)):
            if (users := self.book.wanted.get(conf_id)) is not None:
                await self.leases.claim(conf_id, users)

    # -- a lost node -------------------------------------------------------------------------

    async def _reap(self, lost: str, announce_only_if_left: bool = False) -> None:
        """Announce the departures of a lost node's participants (reason ``node_lost``), once
        in the whole cluster (SET NX on the reap key), and forget its state."""
        rooms = sorted(text(r) for r in await self.redis.smembers(self.keys.node_rooms(lost)))  # type: ignore[misc]
        if announce_only_if_left and not rooms:
            return
        if not await self.redis.set(self.keys.reap(lost), self.me.node_id, nx=True, px=REAP_LOCK_MS):
            return
        for conf_id in rooms:
            raw = await self.redis.hgetall(self.keys.participants(lost, conf_id))  # type: ignore[misc]
            views = [view_from_json(text(v)) for v in raw.values()]
            gone = [v for v in views if v.status in ("connected", "held", "dialing", "pending")]
            for view in gone:
                self.bus.publish(ev.ParticipantLeft(conf_id, participant_id=view.participant_id, reason="node_lost"))
            if conf_id not in self.book.wanted and conf_id not in self.remote:
                self.bus.publish(ev.ConferenceEnded(conf_id, reason="all_left"))
            await self.redis.delete(self.keys.participants(lost, conf_id))
            # Its leases go now rather than at expiry: callers who redial get a live node sooner.
            conf = self.resolve(conf_id)
            await self.leases.release_for(conf_id, dial_users(conf) if conf is not None else (conf_id,),
                                          lost, self.sips.get(lost, ""))
            log.warning("cluster: node %s lost; %d participant(s) of %s announced as left (node_lost)",
                        lost, len(gone), conf_id)
        await self.redis.delete(self.keys.node_rooms(lost))
        if lost != self.me.node_id:
            await self.redis.srem(self.keys.nodes, lost)  # type: ignore[misc]
        else:
            await self.redis.delete(self.keys.reap(lost))   # we are back: a later loss must be reaped again
        self.reaped.append(lost)

    # -- what other nodes say ----------------------------------------------------------------

    async def _load_remote(self) -> None:
        _, self.alive = await self.registry.nodes()
        self.sips.update({n: info.sip for n, info in self.alive.items()})
        for node_id, info in self.alive.items():
            if node_id == self.me.node_id:
                continue
            for member in await self.redis.smembers(self.keys.node_rooms(node_id)):  # type: ignore[misc]
                conf_id = text(member)
                raw = await self.redis.hgetall(self.keys.participants(node_id, conf_id))  # type: ignore[misc]
                views = tuple(view_from_json(text(v)) for v in raw.values())
                self.remote[conf_id] = RemoteRoom(conf_id, node_id, info.sip, views, info.http)

    async def _subscribe(self) -> PubSub:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.keys.room_changes, self.keys.node_cmd(self.me.node_id), self.keys.conf_changes,
                               self.keys.media_changes)
        return pubsub

    async def _listen(self, pubsub: PubSub | None) -> None:
        """Messages of the other nodes; after a lost connection, subscribe again and re-read what
        may have been missed meanwhile (pub/sub does not queue for absent subscribers)."""
        while True:
            try:
                if pubsub is None:
                    pubsub = await self._subscribe()
                    await self._load_remote()
                    if self.on_resync is not None:
                        await self.on_resync()
                    log.info("cluster: subscribed again after a lost Redis connection")
                async for message in pubsub.listen():
                    try:
                        await self._on_message(str(message["channel"]), str(message["data"]))
                    except (ValueError, KeyError, TypeError):
                        log.exception("cluster: bad message on %s", message.get("channel"))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as err:
                log.warning("cluster: pub/sub connection lost (%s: %s)", type(err).__name__, err)
            except Exception:
                log.exception("cluster: pub/sub listener failed")
            if pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            pubsub = None
            await asyncio.sleep(self.cfg.heartbeat_s)

    async def _on_message(self, channel: str, data: str) -> None:
        if channel == self.keys.room_changes:
            parsed = parse_snapshot(data)
            if isinstance(parsed, RemoteRoom):
                if parsed.node_id != self.me.node_id:
                    self.remote[parsed.conf_id] = parsed
                    self.sips[parsed.node_id] = parsed.sip
                    if parsed.node_id not in self.alive:
                        log.info("cluster: node %s seen alive (SIP %s)", parsed.node_id, parsed.sip)
                        self.alive[parsed.node_id] = NodeInfo(parsed.node_id, parsed.sip, parsed.http, 0.0)
            else:
                conf_id, node_id = parsed
                if (room := self.remote.get(conf_id)) is not None and room.node_id == node_id:
                    del self.remote[conf_id]
        elif channel == self.keys.conf_changes:
            if self.on_conf_change is not None:
                await self.on_conf_change(data)
        elif channel == self.keys.media_changes:
            if self.on_media_change is not None:
                await self.on_media_change(data)
        else:
            self._apply_command(json.loads(data))

    def _apply_command(self, cmd: dict[str, object]) -> None:
        """A command another node's API received for a room this node mixes."""
        conf_id, pid = str(cmd["conf"]), str(cmd.get("pid", ""))
        op = cmd["op"]
        if op == "act":
            done = self.local.act(conf_id, pid, cmd["action"])  # type: ignore[arg-type]
        elif op == "hold":
            music = cmd.get("music")
            done = self.local.hold(conf_id, pid, bool(cmd["on_hold"]), str(music) if music else None)
        elif op == "end":
            self.local.end_conference(conf_id, cmd.get("reason", "ended_via_api"))  # type: ignore[arg-type]
            done = True
        else:
            log.warning("cluster: unknown command %r", op)
            return
        log.info("cluster: %s %s %s for node %s: %s", op, conf_id, pid, cmd.get("from"), "done" if done else "no such participant")
