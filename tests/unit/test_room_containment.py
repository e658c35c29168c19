"""One leg whose port raises costs that leg only: the others' audio is unchanged, tick for tick."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bridge.media.containment import FAILED, call_each
from bridge.media.room import LegFailed, Room, SinkFailed
from bridge.rtp.jitter import Frame
from bridge_codecs import make_encoder
from tests.unit.test_room import FakePort, tone


class BrokenPort(FakePort):
    """Raises in ``pop_frame`` and/or ``packetize`` from tick ``after`` on."""

    def __init__(self, fail_in: str, after: int = 0) -> None:
        super().__init__()
        self.fail_in, self.after, self.calls = fail_in, after, 0

    def pop_frame(self) -> Any:
        self.calls += 1
        if self.fail_in == "pop" and self.calls > self.after:
            raise RuntimeError("hostile input")
        return super().pop_frame()

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        if self.fail_in == "packetize" and self.calls > self.after:
            raise OverflowError("bad payload type")
        return super().packetize(payload, ticks, marker)


def run(room: Room, ports: dict[str, FakePort], ticks: int, silent: set[str]) -> tuple[dict[str, list[bytes]], list[Any]]:
    enc = make_encoder("PCMU")
    events: list[Any] = []
    freqs = {"a": 440.0, "b": 700.0, "c": 1100.0}
    for t in range(ticks):
        for name, port in ports.items():
            freq = freqs.get(name)
            if freq is not None and name not in silent:
                port.incoming.append(Frame(enc.encode(tone(freq, 6000, phase=160 * t)), 0))
            elif name not in silent:
                port.incoming.append(Frame(enc.encode(tone(300.0, 6000, phase=160 * t)), 0))
        events += room.tick(t * 0.02).events
    heard = {name: [payload for payload, _, _ in port.sent] for name, port in ports.items()}
    return heard, events


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("fail_in, after", [("pop", 0), ("pop", 5), ("packetize", 0), ("packetize", 5)])
def test_failing_leg_leaves_the_others_unchanged(rate: int, fail_in: str, after: int) -> None:
    healthy = ["a", "b", "c", *[f"l{i}" for i in range(4)]]

    def build(bad: FakePort) -> tuple[Room, dict[str, FakePort]]:
        room = Room("r", rate)
        ports: dict[str, FakePort] = {name: FakePort() for name in healthy}
        ports["x"] = bad
        for name, port in ports.items():
            room.add_leg(name, port, "PCMU", "PCMU", payload_type=0)
        return room, ports

    # The reference: the same room where leg x is well-behaved but says nothing after `after` ticks
    # (a failed leg is taken out of the mix the moment it fails).
    ref_room, ref_ports = build(FakePort())
    bad = BrokenPort(fail_in, after)
    room, ports = build(bad)
    for t in range(after):
        for p in (ref_ports["x"], bad):
            p.incoming.append(Frame(make_encoder("PCMU").encode(tone(300.0, 6000, phase=160 * t)), 0))
    got, events = run(room, ports, 30, {"x"})
    want, _ = run(ref_room, ref_ports, 30, {"x"})
    failures = [e for e in events if isinstance(e, LegFailed)]
    assert [(e.leg_id, e.phase) for e in failures] == [("x", "receive" if fail_in == "pop" else "send")]
    # x spoke for `after` ticks in both rooms; from the failing tick on it is out of the mix in
    # one room and silent in the other: every healthy leg gets the same packets, tick for tick.
    for name in healthy:
        assert len(got[name]) == 30 and got[name] == want[name], f"{name} heard something else"
    assert len(room) == len(ref_room)        # the owner removes the leg (it ends the call)


def test_call_each_reports_every_failure_and_runs_nothing_twice() -> None:
    calls: list[int] = []

    def make(i: int) -> Any:
        def f(x: int) -> int:
            calls.append(i)
            if i in (1, 3):
                raise ValueError(i)
            return x + i
        return f

    out, failures = call_each([make(i) for i in range(5)], 10)
    assert out == [10, FAILED, 12, FAILED, 14] and calls == [0, 1, 2, 3, 4]
    assert [(i, str(exc)) for i, exc in failures] == [(1, "1"), (3, "3")]
    assert call_each([make(0), make(2)], 5) == ([5, 7], ())       # no failures: an empty tuple


def test_failing_sink_is_detached_and_reported() -> None:
    class BadSink:
        def write(self, pcm: np.ndarray, rate: int) -> None:
            raise OSError("disk full")

    room = Room("r", 8000)
    room.add_leg("a", FakePort(), "PCMU", "PCMU", payload_type=0)
    room.add_mix_sink("mix", BadSink())  # type: ignore[arg-type]
    room.add_leg_sink("a", "track", BadSink())  # type: ignore[arg-type]
    events = room.tick(0.0).events + room.tick(0.02).events
    failed = sorted((e.sink_id, e.leg_id) for e in events if isinstance(e, SinkFailed))
    assert failed == [("mix", None), ("track", "a")]
