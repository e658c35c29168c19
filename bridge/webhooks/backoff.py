"""When a failed delivery is tried again, and when it is given up (dead-lettered).

Attempt ``n`` (1 = the first retry) waits ``min(max_backoff, initial * 2**(n-1))``, shortened
by up to ``jitter`` of itself at random so that many deliveries failing together do not retry
together. A delivery still failing ``horizon`` after its event happened is dead.
With the defaults (2 s, x2, capped at 15 min, 24 h) that is about 100 attempts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 2.0
    max_s: float = 900.0
    jitter: float = 0.5
    horizon_s: float = 24 * 3600.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        exponent = min(max(retry - 1, 0), 60)
        base = min(self.max_s, self.initial_s * (2.0 ** exponent))
        return base * (1.0 - self.jitter * rng.random())

    def next_attempt(self, created_at: float, now: float, retry: int, rng: random.Random) -> float | None:
        """When to try again after a failure at ``now``; None: past the horizon, the delivery is dead.

        The last retry is pulled in to the horizon rather than skipped, so a receiver that comes
        back just before the horizon still gets the event.
        """
        deadline = created_at + self.horizon_s
        if now >= deadline:
            return None
        return min(now + self.delay(retry, rng), deadline)

    def schedule(self, created_at: float, rng: random.Random, first_failure: float | None = None) -> list[float]:
        """Every attempt time of a delivery that never succeeds (for docs and tests)."""
        now = created_at if first_failure is None else first_failure
        times = [now]
        retry = 1
        while True:
            nxt = self.next_attempt(created_at, now, retry, rng)
            if nxt is None:
                return times
            times.append(nxt)
            now = nxt
            retry += 1
