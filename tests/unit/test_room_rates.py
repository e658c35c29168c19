"""G.711 legs in 16 and 48 kHz rooms: the array path (bulk decode, one product resampling all
rows, shared encodes) against the per-leg reference path, tick for tick, on the same input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bridge.media.room import Room
from bridge.rtp.jitter import Frame, Missing
from bridge_codecs import make_encoder
from tests.unit.test_room import FakePort

# Per leg and tick: F = frame, M = Missing (concealed), E = nothing, S = short frame.
PATTERNS = ["FFFFFFFFFFFFFFFF", "FFFMFFFFMMFFFFFF", "FFMMFFFFFMFFEEFF", "FFFFEEFFFMFFFFFF",
            "FSFFFFSFFMFFFFFF", "MFFFFFFFFFFMFFFF"]


def voice(seed: int, tick: int, loud: bool) -> np.ndarray:
    t = (np.arange(160) + 160 * tick) / 8000
    f = 150 + 37 * seed
    amp = 4000 if loud else 40
    return np.rint(amp * np.sin(2 * np.pi * f * t) + amp / 4 * np.sin(2 * np.pi * 3 * f * t)).astype(np.int16)


def build(rate: int, bulk: bool, max_talkers: int) -> tuple[Room, dict[str, FakePort], dict[str, str]]:
    room = Room("r", rate, max_talkers=max_talkers, bulk=bulk)
    ports: dict[str, FakePort] = {}
    codec: dict[str, str] = {}
    for i in range(22):                       # > the mixer's initial capacity of 16
        name = f"leg{i}"
        codec[name] = "PCMA" if i % 4 == 3 else "PCMU"
        ports[name] = FakePort()
        room.add_leg(name, ports[name], codec[name], codec[name], payload_type=0)
    room.add_leg("wide", FakePort(), "G722", "G722", payload_type=9)   # another path alongside
    room.set_on_hold("leg5", True)
    room.set_muted("leg6", True)
    return room, ports, codec


@pytest.mark.parametrize("max_talkers", [0, 3])
@pytest.mark.parametrize("rate", [16000, 48000])
def test_array_path_equals_per_leg_path_tick_for_tick(rate: int, max_talkers: int) -> None:
    rooms = [build(rate, bulk, max_talkers) for bulk in (True, False)]
    encs = {c: make_encoder(c) for c in ("PCMU", "PCMA")}
    names = list(rooms[0][1])
    for tick in range(16):
        if tick == 8:
            for room, _, _ in rooms:
                room.remove_leg("leg2")
                room.set_on_hold("leg5", False)
        items: dict[str, Any] = {}
        for i, n in enumerate(names):
            kind = PATTERNS[i % len(PATTERNS)][tick]
            payload = encs[rooms[0][2][n]].encode(voice(i, tick, loud=i < 8))
            items[n] = {"F": Frame(payload, 0), "S": Frame(payload[:100], 0),
                        "M": Missing(None), "E": None}[kind]
        results = []
        for room, ports, _ in rooms:
            for n in names:
                if items[n] is not None and n in room:
                    ports[n].incoming.append(items[n])
            results.append(room.tick(0.02 * (tick + 1)))
        fast, ref = rooms[0][0], rooms[1][0]
        if tick == 1:
            assert fast._bulk and all(g.stage is not None for g in fast._bulk)
            assert not ref._bulk
        n = fast.mixer.count
        np.testing.assert_array_equal(fast.mixer.present[:n], ref.mixer.present[:n], err_msg=str(tick))
        np.testing.assert_array_equal(fast.mixer.inputs[:n], ref.mixer.inputs[:n], err_msg=str(tick))
        np.testing.assert_array_equal(fast.mixer.contributors, ref.mixer.contributors)
        assert results[0].outgoing == results[1].outgoing, tick
        assert results[0].events == results[1].events, tick
        assert fast.participants_snapshot() == ref.participants_snapshot()
