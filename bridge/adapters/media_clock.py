"""The single media clock: calls ``on_tick(now)`` at absolute 20 ms deadlines.

Deadlines are computed from the start time (``start + k * period``), never by
sleeping a fixed 20 ms after the previous tick, so scheduling jitter does not
accumulate as drift. If the loop falls more than a few ticks behind (a stall),
the clock skips the missed deadlines instead of bursting to catch up: bursting
would flood every leg with back-to-back packets and overflow far-end jitter
buffers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("bridge.media")

MAX_LAG_TICKS = 5


class MediaClock:
    def __init__(
        self,
        on_tick: Callable[[float], None],
        period: float = 0.020,
        on_lateness: Callable[[float], None] | None = None,
    ) -> None:
        self.on_tick = on_tick
        self.period = period
        # Seconds each tick started after its deadline (the metrics' lateness histogram).
        self.on_lateness = on_lateness
        self.last_tick: float | None = None  # loop time the last tick started (readiness)
        self.ticks = 0
        self.late_ticks = 0  # ticks that started more than half a period late
        self.skipped_ticks = 0
        self.max_tick_seconds = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="media-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        log.info(
            "media clock: %d ticks, %d late, %d skipped, longest tick %.1f ms",
            self.ticks, self.late_ticks, self.skipped_ticks, self.max_tick_seconds * 1000,
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            now = loop.time()
            if now - deadline > MAX_LAG_TICKS * self.period:
                missed = int((now - deadline) / self.period)
                self.skipped_ticks += missed
                deadline += missed * self.period
                log.warning("media clock stalled: skipped %d ticks", missed)
            if now - deadline > self.period / 2:
                self.late_ticks += 1
            if self.on_lateness is not None:
                self.on_lateness(max(0.0, now - deadline))
            self.last_tick = now
            try:
                self.on_tick(now)
            except Exception:  # one broken tick must not stop every room
                log.exception("media tick failed")
            self.ticks += 1
            self.max_tick_seconds = max(self.max_tick_seconds, loop.time() - now)
            deadline += self.period
            delay = deadline - loop.time()
            await asyncio.sleep(delay if delay > 0 else 0)
