"""The writer's side of the tap: tapped items in, continuous aligned tracks and the sidecar out.

Frame ``k`` of every track is the same 20 ms of the conference: the mix frame ``k``, each
participant's voice in that tick, silence where a frame was dropped, while a participant was
muted or held (the room already gives silence), and, when the pause behaviour is silence,
while paused. A participant's track starts at the frame of their join (``TrackOutput.open``
gets that frame index; the files are padded with silence from frame 0 when finished) and
ends at the frame of their leave. Pure: the adapter's worker thread drives it.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ..media.ports import Pcm
from .tap import Item

TrackKey = int | str    # "mix", "rest" (dual: everyone but the creator) or a participant's track


class TrackOutput(Protocol):
    def open(self, track: TrackKey, start_frame: int) -> None: ...

    def write(self, track: TrackKey, pcm: Pcm) -> None: ...


def _spans(marks: list[tuple[float, bool]], end: float) -> list[list[float]]:
    out: list[list[float]] = []
    start: float | None = None
    for at, on in marks:
        if on and start is None:
            start = at
        elif not on and start is not None:
            out.append([start, at])
            start = None
    if start is not None:
        out.append([start, end])
    return out


class Timeline:
    def __init__(self, rate: int, out: TrackOutput, dual: bool = False, frame_ms: int = 20) -> None:
        self.rate = rate
        self.frame_ms = frame_ms
        self.samples = rate * frame_ms // 1000
        self.out = out
        self.dual = dual
        self.emitted = 0                    # frames written to every track
        self.ended = False
        self._zeros = np.zeros(self.samples, np.int16)
        self._cur: int | None = None
        self._cur_mix: Pcm | None = None
        self._cur_legs: dict[int, Pcm] = {}
        self._active: set[int] = set()
        self._creator: int | None = None
        self.people: dict[int, dict[str, Any]] = {}
        self._flags: dict[tuple[int, str], list[tuple[float, bool]]] = {}
        self._pauses: list[tuple[float, bool]] = []
        self._paused_wall: list[float] = []   # each pause's wall-clock length (skip: not in the tracks)
        out.open("mix", 0)
        if dual:
            out.open("rest", 0)

    def seconds(self, frame: int) -> float:
        return round(frame * self.frame_ms / 1000, 3)

    def feed(self, items: list[Item]) -> None:
        for item in items:
            kind = item[0]
            if kind == "mix":
                self._advance_to(item[1])
                self._cur, self._cur_mix, self._cur_legs = item[1], item[2], {}
            elif kind == "leg":
                if item[1] == self._cur:
                    self._cur_legs[item[2]] = item[3]
            elif kind == "mark":
                self._advance_to(item[1])
                self._mark(item[1], item[2], item[3], item[4])
            elif kind == "end":
                self._advance_to(item[1])
                self.ended = True

    # ------------------------------------------------------------------ frames

    def _advance_to(self, frame: int) -> None:
        """Write every frame before ``frame``: the one being assembled, silence for dropped ones."""
        if self._cur is not None and self._cur >= self.emitted:
            while self.emitted < self._cur:
                self._emit(None, {})
            self._emit(self._cur_mix, self._cur_legs)
        self._cur, self._cur_mix, self._cur_legs = None, None, {}
        while self.emitted < frame:
            self._emit(None, {})

    def _emit(self, mix: Pcm | None, legs: dict[int, Pcm]) -> None:
        zeros, out = self._zeros, self.out
        out.write("mix", zeros if mix is None else mix)
        for track in self._active:
            out.write(track, legs.get(track, zeros))
        if self.dual:
            others = [pcm for track, pcm in legs.items() if track != self._creator and track in self._active]
            if others:
                total = np.stack(others).astype(np.int32).sum(axis=0)
                rest = total.clip(-32768, 32767).astype(np.int16)
            else:
                rest = zeros
            out.write("rest", rest)
        self.emitted += 1

    # ------------------------------------------------------------------ marks

    def _mark(self, frame: int, kind: str, track: int | None, data: dict[str, Any]) -> None:
        at = self.seconds(frame)
        if kind == "join" and track is not None:
            self._active.add(track)
            self.people[track] = {"track": track, **data, "joined_at_s": at, "left_at_s": None}
            if self._creator is None:
                self._creator = track
            self.out.open(track, frame)
            for flag in ("muted", "on_hold"):
                if data.get(flag):
                    self._flags.setdefault((track, flag), []).append((at, True))
        elif kind == "leave" and track is not None and track in self._active:
            self._active.discard(track)
            self.people[track]["left_at_s"] = at
        elif kind in ("muted", "on_hold", "talking") and track is not None:
            self._flags.setdefault((track, kind), []).append((at, bool(data.get("on"))))
        elif kind in ("pause", "resume"):
            self._pauses.append((at, kind == "pause"))
            if kind == "resume":
                self._paused_wall.append(float(data.get("wall_s", 0.0)))

    def sidecar(self) -> dict[str, Any]:
        """Who was who and when, in seconds from the recording's time zero (frame 0)."""
        end = self.seconds(self.emitted)
        people = []
        for track in sorted(self.people):
            person = dict(self.people[track])
            left = person["left_at_s"] if person["left_at_s"] is not None else end
            person["muted"] = _spans(self._flags.get((track, "muted"), []), left)
            person["on_hold"] = _spans(self._flags.get((track, "on_hold"), []), left)
            person["talk_spans"] = _spans(self._flags.get((track, "talking"), []), left)
            people.append(person)
        return {
            "rate": self.rate,
            "frame_ms": self.frame_ms,
            "duration_s": end,
            "creator_track": self._creator,
            "tracks": [{"track": 0, "kind": "mix"}] + [{"track": p["track"], "kind": "participant",
                                                        "participant_id": p.get("participant_id")}
                                                       for p in people],
            "participants": people,
            "pauses": [{"start_s": s, "end_s": e, "wall_s": (self._paused_wall[i] if i < len(self._paused_wall)
                                                              else None)}
                       for i, (s, e) in enumerate(_spans(self._pauses, end))],
        }
