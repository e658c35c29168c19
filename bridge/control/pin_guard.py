"""Slowing down and locking out PIN guessing, per source address and conference (README "Security").

Pure and clocked by ``now``. The IVR already allows ``MAX_ATTEMPTS`` (3) wrong entries per call,
like Asterisk ConfBridge and FreeSWITCH; a guesser simply redials, so the count here spans calls:
after ``free_failures`` wrong PINs from one address for one conference, each further guess waits
``base_delay_s`` doubling up to ``max_delay_s`` (key presses meanwhile are ignored), and
``lockout_after`` wrong PINs lock that address out of that conference for ``lockout_s``: during a
lockout no entry is even compared, so a correct guess is worthless. A correct PIN clears the count;
so do ``window_s`` without a wrong one. Other addresses and other conferences are unaffected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

_MAX_ENTRIES = 65536     # (address, conference) pairs remembered; the stalest go first


@dataclass(frozen=True)
class PinLimits:
    free_failures: int = 3
    base_delay_s: float = 2.0
    max_delay_s: float = 60.0
    lockout_after: int = 10
    lockout_s: float = 900.0
    window_s: float = 3600.0


@dataclass
class _State:
    failures: int = 0
    last_failure: float = 0.0
    next_try: float = 0.0
    locked_until: float = 0.0


@dataclass(frozen=True)
class PinFailure:
    """What one wrong PIN led to: ``delay`` before the next guess is judged (inf: locked out)."""

    failures: int
    delay: float
    locked: bool


class PinGuard:
    def __init__(self, limits: PinLimits) -> None:
        self.limits = limits
        self._state: dict[tuple[str, str], _State] = {}
        self.counts = {"wrong": 0, "delayed": 0, "lockouts": 0}

    def wait(self, source: str, room: str, now: float) -> float:
        """Seconds before a PIN from ``source`` for ``room`` may be judged: 0 now, inf locked out."""
        st = self._state.get((source, room))
        if st is None:
            return 0.0
        if st.locked_until > now:
            return math.inf
        return max(0.0, st.next_try - now)

    def failed(self, source: str, room: str, now: float) -> PinFailure:
        lim = self.limits
        key = (source, room)
        st = self._state.pop(key, None) or _State()
        self._state[key] = st                          # re-inserted: the dict stays oldest-first
        if now - st.last_failure > lim.window_s:
            st.failures = 0
        st.failures += 1
        st.last_failure = now
        self.counts["wrong"] += 1
        if len(self._state) > _MAX_ENTRIES:
            del self._state[next(iter(self._state))]
        if st.failures >= lim.lockout_after:
            st.locked_until = now + lim.lockout_s
            st.failures = 0
            self.counts["lockouts"] += 1
            return PinFailure(lim.lockout_after, math.inf, True)
        extra = st.failures - lim.free_failures
        delay = 0.0 if extra < 0 else min(lim.max_delay_s, lim.base_delay_s * 2.0 ** extra)
        st.next_try = now + delay
        if delay > 0:
            self.counts["delayed"] += 1
        return PinFailure(st.failures, delay, False)

    def succeeded(self, source: str, room: str) -> None:
        self._state.pop((source, room), None)

    def locked(self, now: float) -> int:
        """(address, conference) pairs locked out now."""
        return sum(1 for st in self._state.values() if st.locked_until > now)


@dataclass(frozen=True)
class SourcePinCheck:
    """A ``PinGuard`` bound to one caller's address: what the IVR is given (ivr.PinCheck)."""

    guard: PinGuard
    source: str
    on_failure: Callable[[str, PinFailure], None] = lambda room, failure: None

    def wait(self, room: str, now: float) -> float:
        return self.guard.wait(self.source, room, now)

    def failed(self, room: str, now: float) -> float:
        failure = self.guard.failed(self.source, room, now)
        self.on_failure(room, failure)
        return failure.delay

    def succeeded(self, room: str) -> None:
        self.guard.succeeded(self.source, room)
