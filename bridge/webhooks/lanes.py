"""Which deliveries may be sent now: in order per lane, bounded per destination, retried, dead-lettered.

A *lane* is one conference's deliveries to one URL. Only the head of a lane is ever in flight,
so a receiver sees a conference's events in the order they happened; the next one goes when
the head is delivered or dead. Lanes are independent: a dead receiver only holds back its own
lanes. Requests in flight are bounded per destination (``scheme://host:port``) and in total, so
a receiver that never answers occupies at most its own slots, never another destination's.

``LaneScheduler`` is pure: the dispatcher feeds it persisted deliveries (``add``), asks what
to start (``take_due``), reports results (``finish``) and persists the updated rows it gets back.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .backoff import RetryPolicy
from .model import Delivery, Outcome
from .urls import destination_key


@dataclass
class _Lane:
    queue: deque[Delivery] = field(default_factory=deque)
    busy: bool = False


@dataclass
class Counters:
    delivered: int = 0
    retried: int = 0     # failed attempts that were scheduled again
    dead: int = 0

    def snapshot(self) -> dict[str, int]:
        return {"delivered": self.delivered, "retried": self.retried, "dead": self.dead}


class LaneScheduler:
    def __init__(
        self,
        policy: RetryPolicy,
        *,
        per_destination: int = 4,
        total: int = 64,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.per_destination = per_destination
        self.total = total
        self._rng = rng if rng is not None else random.Random()
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._in_flight: dict[str, int] = {}
        self._running = 0
        self._pending = 0
        self.counters = Counters()

    # -- feeding ------------------------------------------------------------------------------

    def add(self, deliveries: Iterable[Delivery]) -> None:
        """Persisted pending deliveries, in ``position`` order within each lane."""
        for d in deliveries:
            if d.state != "pending":
                continue
            lane = self._lanes.setdefault(d.lane, _Lane())
            if lane.queue and lane.queue[-1].position > d.position:
                items = sorted([*lane.queue, d], key=lambda x: x.position)
                lane.queue = deque(items)
            else:
                lane.queue.append(d)
            self._pending += 1

    @property
    def pending(self) -> int:
        """Deliveries not yet delivered or dead (in flight included)."""
        return self._pending

    @property
    def running(self) -> int:
        return self._running

    def retrying(self) -> int:
        """Pending deliveries that have failed at least once."""
        return sum(1 for lane in self._lanes.values() for d in lane.queue if d.attempts > 0)

    # -- choosing -----------------------------------------------------------------------------

    def take_due(self, now: float) -> list[Delivery]:
        """Heads of idle lanes that are due, within the concurrency bounds; marks them in flight.

        Oldest first, so a backlog drains in the order it built up.
        """
        candidates: list[tuple[float, int, tuple[str, str]]] = []
        for key, lane in self._lanes.items():
            if lane.busy or not lane.queue:
                continue
            head = lane.queue[0]
            if head.next_attempt_at <= now:
                candidates.append((head.next_attempt_at, head.position, key))
        candidates.sort()
        started: list[Delivery] = []
        for _, _, key in candidates:
            if self._running >= self.total:
                break
            lane = self._lanes[key]
            head = lane.queue[0]
            dest = destination_key(head.url)
            if self._in_flight.get(dest, 0) >= self.per_destination:
                continue
            self._in_flight[dest] = self._in_flight.get(dest, 0) + 1
            self._running += 1
            lane.busy = True
            started.append(head)
        return started

    def next_due(self) -> float | None:
        """The earliest time an idle lane's head becomes due (None: nothing waits on time)."""
        times = [lane.queue[0].next_attempt_at for lane in self._lanes.values() if lane.queue and not lane.busy]
        return min(times) if times else None

    # -- results ------------------------------------------------------------------------------

    def finish(self, delivery: Delivery, outcome: Outcome, now: float) -> Delivery:
        """Record an attempt's outcome; returns the row to persist (delivered, rescheduled or dead)."""
        lane = self._lanes.get(delivery.lane)
        dest = destination_key(delivery.url)
        self._in_flight[dest] = max(0, self._in_flight.get(dest, 0) - 1)
        if self._in_flight[dest] == 0:
            del self._in_flight[dest]
        self._running = max(0, self._running - 1)
        attempts = delivery.attempts + 1
        if outcome.ok:
            updated = delivery.replace(
                state="delivered", attempts=attempts, last_status=outcome.status, last_attempt_at=now,
                delivered_at=now, delivered_to=outcome.delivered_to,
            )
            self.counters.delivered += 1
        else:
            nxt = self.policy.next_attempt(delivery.created_at, now, attempts, self._rng)
            if nxt is None:
                updated = delivery.replace(state="dead", attempts=attempts, last_status=outcome.status,
                                           last_attempt_at=now)
                self.counters.dead += 1
            else:
                updated = delivery.replace(attempts=attempts, last_status=outcome.status, last_attempt_at=now,
                                           next_attempt_at=nxt)
                self.counters.retried += 1
        if lane is not None:
            lane.busy = False
            if lane.queue and lane.queue[0].id == delivery.id:
                if updated.state == "pending":
                    lane.queue[0] = updated
                else:
                    lane.queue.popleft()
                    self._pending -= 1
            if not lane.queue:
                del self._lanes[delivery.lane]
        return updated

    def dead_letter(self, delivery: Delivery, status: str, now: float) -> Delivery:
        """A delivery refused before any attempt (outbox full): dead at once, counted."""
        self.counters.dead += 1
        return delivery.replace(state="dead", last_status=status, last_attempt_at=now)

    def retry_now(self, now: float) -> int:
        """Every waiting lane head becomes due now (operator asked; tests use it too)."""
        count = 0
        for lane in self._lanes.values():
            if lane.queue and not lane.busy and lane.queue[0].next_attempt_at > now:
                lane.queue[0] = lane.queue[0].replace(next_attempt_at=now)
                count += 1
        return count

    def contains(self, delivery_id: str) -> bool:
        return any(d.id == delivery_id for lane in self._lanes.values() for d in lane.queue)

