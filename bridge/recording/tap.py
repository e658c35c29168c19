"""The tap: where the media tick hands recording audio to the writer, and nothing more.

The room calls the sinks inside its 20 ms tick, so they only copy the frame into a bounded
deque (appends and pops on a deque are atomic; the writer thread pops). Every item carries
the recording's tick number: the mix sink, written first in each room tick, advances it, so
the writer can rebuild one continuous timeline even when frames are dropped. When the queue
holds more than ``max_ticks`` of audio the frame is dropped and counted (the writer writes
silence in its place): a slow disk costs recording audio, never a tick.

Pause: with ``silence`` the tick goes on and every track gets silence (the mix item carries
None, the legs send nothing); with ``skip`` nothing is taken and the tick stands still.
Marks (join, leave, mute, hold, talk, pause) go in the same queue, stamped with the index of
the next frame, which is the first frame the change can affect (room ops land at the start
of the next tick).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..media.ports import Pcm

# Items: ("mix", tick, pcm | None) | ("leg", tick, track, pcm) | ("mark", tick, kind, track, data)
#        | ("end", tick)
Item = tuple[Any, ...]


class Tap:
    def __init__(self, max_ticks: int = 250) -> None:
        self.items: deque[Item] = deque()
        self.max_ticks = max_ticks
        self.tick = 0                 # frames taken so far (the next frame's index)
        self.legs = 0                 # leg sinks attached (sizes the bound)
        self.paused = False
        self.skip = False             # pause behaviour: skip instead of silence
        self.dropped = 0              # ticks dropped because the queue was full
        self.closed = False
        self._dropping = -1           # the tick being dropped (its leg frames go too)

    # --------------------------------------------------------------- media tick side

    def write_mix(self, pcm: Pcm) -> None:
        if self.closed or (self.paused and self.skip):
            return
        tick = self.tick
        self.tick = tick + 1
        if len(self.items) >= self.max_ticks * (1 + self.legs):
            self.dropped += 1
            self._dropping = tick
            return
        self.items.append(("mix", tick, None if self.paused else pcm.copy()))

    def write_leg(self, track: int, pcm: Pcm) -> None:
        # The mix of this room tick was written first: its tick is self.tick - 1.
        tick = self.tick - 1
        if self.closed or self.paused or tick == self._dropping or tick < 0:
            return
        self.items.append(("leg", tick, track, pcm.copy()))

    # --------------------------------------------------------------- control side

    def mark(self, kind: str, track: int | None = None, **data: Any) -> None:
        self.items.append(("mark", self.tick, kind, track, data))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.items.append(("end", self.tick))

    # --------------------------------------------------------------- writer side

    def take(self, limit: int = 100_000) -> list[Item]:
        out: list[Item] = []
        items = self.items
        while items and len(out) < limit:
            out.append(items.popleft())
        return out


class MixSink:
    """``AudioSink`` for the room's mix."""

    def __init__(self, tap: Tap) -> None:
        self.tap = tap

    def write(self, pcm: Pcm, rate: int) -> None:
        self.tap.write_mix(pcm)


class LegSink:
    """``AudioSink`` for one participant's voice (track number ``track``)."""

    def __init__(self, tap: Tap, track: int) -> None:
        self.tap = tap
        self.track = track

    def write(self, pcm: Pcm, rate: int) -> None:
        self.tap.write_leg(self.track, pcm)
