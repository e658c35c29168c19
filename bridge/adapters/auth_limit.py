"""Bad API tokens, rate-limited per client address (README "Security"): after ``max_failures``
401s within ``window_s`` an address gets 429 with Retry-After for ``block_s``, whatever it sends,
so a token cannot be guessed at the speed of the network. Clocked by ``now`` for the tests."""

from __future__ import annotations

import math
from collections import deque

_MAX_ADDRESSES = 65536


class BadTokenLimiter:
    def __init__(self, max_failures: int, window_s: float, block_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.block_s = block_s
        self._failures: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}
        self.limited = 0           # requests answered 429

    def retry_after(self, address: str, now: float) -> int:
        """Seconds the address must wait (0: it may try)."""
        until = self._blocked.get(address)
        if until is None:
            return 0
        if until <= now:
            del self._blocked[address]
            return 0
        self.limited += 1
        return max(1, math.ceil(until - now))

    def failed(self, address: str, now: float) -> None:
        if len(self._failures) >= _MAX_ADDRESSES and address not in self._failures:
            self._failures.clear()     # a spray from many addresses: start counting afresh
        times = self._failures.setdefault(address, deque())
        times.append(now)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) >= self.max_failures:
            self._blocked[address] = now + self.block_s
            del self._failures[address]
