"""Telnyx ``command_id`` de-duplication: a command whose id was already executed within the last
60 seconds (same account and conference) is answered as before and not executed again.

Pure: the caller passes the time. Memory is bounded: expired ids are dropped as new ones arrive,
and past ``limit`` ids the oldest go first.
"""

from __future__ import annotations

from collections import OrderedDict

WINDOW_S = 60.0


class CommandLog:
    def __init__(self, window_s: float = WINDOW_S, limit: int = 100_000) -> None:
        self.window_s = window_s
        self.limit = limit
        self._seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._results: dict[tuple[str, str, str], str] = {}

    def _purge(self, now: float) -> None:
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if now - at < self.window_s and len(self._seen) <= self.limit:
                break
            del self._seen[key]
            self._results.pop(key, None)

    def seen(self, account: str, scope: str, command_id: str | None, now: float) -> bool:
        """True when this command already ran within the window (so it must be ignored)."""
        if command_id is None:
            return False
        self._purge(now)
        return (account, scope, command_id) in self._seen

    def result(self, account: str, scope: str, command_id: str) -> str | None:
        """What ``record`` kept for an executed command (e.g. the conference a create made)."""
        return self._results.get((account, scope, command_id))

    def record(self, account: str, scope: str, command_id: str | None, now: float, result: str | None = None) -> None:
        """Remember a command that was executed (a refused command may be sent again)."""
        if command_id is None:
            return
        self._seen[(account, scope, command_id)] = now
        if result is not None:
            self._results[(account, scope, command_id)] = result
        self._seen.move_to_end((account, scope, command_id))
        self._purge(now)
