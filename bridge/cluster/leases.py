"""Room ownership leases: who mixes a conference, and where Kamailio sends its callers.

A node claims a conference when its first leg joins (``ConferenceStarted``), renews the claim
every heartbeat while the room is live, and gives it back when the room empties. The claim is
``SET P conf:<id>:owner <node> NX PX ttl`` done in a script that also renews our own lease and
writes ``P room:<user>:node`` for every dial string, so the three never disagree. A renewal that
finds another owner means our lease expired (Redis away longer than the TTL, a stalled process)
and someone else claimed the room: we log it loudly and stop claiming; we never fight.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from .keys import Keys

log = logging.getLogger("bridge.cluster")

# KEYS[1] owner key, KEYS[2..] room keys; ARGV node id, ttl ms, advertise_sip.
# Returns the owner after the call: ours (claimed or renewed) or another node's.
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
  cur = ARGV[1]
elseif cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if cur == ARGV[1] then
  for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[3], 'PX', ARGV[2]) end
end
return cur
"""

# Compare-and-delete: KEYS[1] owner key, KEYS[2..] room keys; ARGV node id, advertise_sip.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2] then redis.call('DEL', KEYS[i]) end
end
return 1
"""

Outcome = Literal["held", "lost", "refused"]


@dataclass
class LeaseBook:
    """Which leases this node wants and holds (pure: no I/O, no clock).

    ``want`` when a room goes live, ``drop`` when it empties; ``record`` takes the owner a
    claim or renewal returned and says what happened to our claim.
    """

    node_id: str
    wanted: dict[str, tuple[str, ...]] = field(default_factory=dict)   # conf id -> dial users
    held: set[str] = field(default_factory=set)
    # Rooms we are mixing although another node holds the lease (a claim race or a lost lease).
    foreign: dict[str, str] = field(default_factory=dict)

    def want(self, conf_id: str, users: tuple[str, ...]) -> None:
        self.wanted[conf_id] = users
        self.foreign.pop(conf_id, None)

    def drop(self, conf_id: str) -> tuple[str, ...]:
        """Forget the room; returns its dial users (to release) if we held it."""
        users = self.wanted.pop(conf_id, ())
        self.foreign.pop(conf_id, None)
        if conf_id not in self.held:
            return ()
        self.held.discard(conf_id)
        return users

    def to_claim(self) -> list[tuple[str, tuple[str, ...]]]:
        """Leases to (re)claim at this heartbeat: every wanted room not lost to another node."""
        return [(cid, users) for cid, users in self.wanted.items() if cid not in self.foreign]

    def retry_dead(self, alive: set[str]) -> list[str]:
        """Rooms mixed here whose lease a node that is no longer alive holds: claim them again
        (the survivors delete a lost node's leases; otherwise they expire)."""
        dead = [cid for cid, owner in self.foreign.items() if owner not in alive]
        for cid in dead:
            del self.foreign[cid]
        return dead

    def record(self, conf_id: str, owner: str) -> Outcome:
        if owner == self.node_id:
            self.held.add(conf_id)
            return "held"
        if self.foreign.get(conf_id) == owner:
            return "refused"        # said already
        self.foreign[conf_id] = owner
        if conf_id in self.held:
            self.held.discard(conf_id)
            log.error("!!! lease of %s lost to node %s: this node stops claiming it (its callers here "
                      "keep their call, new callers go to %s) !!!", conf_id, owner, owner)
            return "lost"
        log.error("!!! %s went live here but node %s owns it (a claim race): not claiming; its callers "
                  "here are in a split room until they redial !!!", conf_id, owner)
        return "refused"


class Leases:
    """Runs the lease scripts against Redis for a ``LeaseBook``."""

    def __init__(self, redis: object, keys: Keys, book: LeaseBook, sip: str, ttl_s: float) -> None:
        from redis.asyncio import Redis

        assert isinstance(redis, Redis)
        self.redis = redis
        self.keys = keys
        self.book = book
        self.sip = sip
        self.ttl_ms = int(ttl_s * 1000)
        self._claim = redis.register_script(CLAIM)
        self._release = redis.register_script(RELEASE)

    def _key_list(self, conf_id: str, users: tuple[str, ...]) -> list[str]:
        return [self.keys.conf_owner(conf_id), *(self.keys.room_node(u) for u in users)]

    async def claim(self, conf_id: str, users: tuple[str, ...]) -> Outcome:
        owner = await self._claim(keys=self._key_list(conf_id, users),
                                  args=[self.book.node_id, self.ttl_ms, self.sip])
        outcome = self.book.record(conf_id, str(owner))
        if outcome == "held" and conf_id not in self.book.wanted:   # emptied while we were claiming
            self.book.held.discard(conf_id)
            await self.release_for(conf_id, users, self.book.node_id, self.sip)
        elif outcome == "held":
            await self.redis.sadd(self.keys.node_rooms(self.book.node_id), conf_id)  # type: ignore[misc]
        return outcome

    async def renew_all(self) -> None:
        for conf_id, users in self.book.to_claim():
            await self.claim(conf_id, users)

    async def release(self, conf_id: str, users: tuple[str, ...]) -> None:
        await self.release_for(conf_id, users, self.book.node_id, self.sip)
        await self.redis.srem(self.keys.node_rooms(self.book.node_id), conf_id)  # type: ignore[misc]

    async def release_for(self, conf_id: str, users: tuple[str, ...], node_id: str, sip: str) -> None:
        """Compare-and-delete the lease and room keys if ``node_id`` (at ``sip``) still holds them."""
        await self._release(keys=self._key_list(conf_id, users), args=[node_id, sip])

    def owner_of(self, conf_id: str) -> str | None:
        """The node this node knows to own ``conf_id`` (itself, another, or None: not known)."""
        if conf_id in self.book.held:
            return self.book.node_id
        return self.book.foreign.get(conf_id)
