"""G.722 legs in a 16 kHz room: the native path (libspandsp decoding straight into the mixer's
rows, concealment history handed over only when a loss needs it) against the per-leg
reference path (``bulk=False``: every frame through G722Decoder.decode), tick for tick."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from bridge_codecs import libspandsp, make_decoder, make_encoder

from bridge.media.room import Room
from bridge.rtp.jitter import Frame, Missing
from tests.unit.test_room import FakePort
from tests.unit.test_room_rates import assert_same_tick

pytestmark = pytest.mark.skipif(libspandsp.load() is None, reason="needs the system libspandsp")

# Per leg and tick: F = frame, M = Missing (concealed), E = nothing, S = short frame.
PATTERNS = ["FFFFFFFFFFFFFFFFFFFFFFFF", "FFFFFMFFFFFFFFMMFFFFFFFF", "FFFFFFFFFFFMFFFFEEFFFFFF",
            "FFFFFFFSFFFFFFFFFFFFMFFF", "FFFFFFFFFFFFFFFFFFFFFFFF", "FFFFFFFFMFMFMFFFFFFFFFFF"]


def speech(seed: int, tick: int, loud: bool) -> np.ndarray:
    t = (np.arange(320) + 320 * tick) / 16000
    f = 140 + 31 * seed
    amp = 5000 if loud else 60
    x = amp * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return np.rint(x + amp / 5 * np.sin(2 * np.pi * 5.3 * f * t)).astype(np.int16)


@pytest.mark.parametrize("max_talkers", [0, 3])
def test_native_g722_rows_equal_the_per_leg_path_tick_for_tick(max_talkers: int) -> None:
    worlds = []
    for bulk in (True, False):
        room = Room("r", 16000, max_talkers=max_talkers, bulk=bulk)
        ports = {f"g{i}": FakePort() for i in range(18)}
        for name, port in ports.items():
            room.add_leg(name, port, "G722", "G722", payload_type=9)
        room.add_leg("u", FakePort(), "PCMU", "PCMU", payload_type=0)     # another path alongside
        room.set_on_hold("g4", True)
        worlds.append((room, ports))
    encoders = {name: make_encoder("G722") for name in worlds[0][1]}
    names = list(worlds[0][1])
    native_ticks = 0
    for tick in range(24):
        if tick == 12:
            for room, _ in worlds:
                room.set_on_hold("g4", False)
                room.remove_leg("g2")
        items: dict[str, Any] = {}
        for i, name in enumerate(names):
            kind = PATTERNS[i % len(PATTERNS)][tick]
            payload = encoders[name].encode(speech(i, tick, loud=i % 3 == 0))   # the sender goes on
            items[name] = {"F": Frame(payload, 0), "S": Frame(payload[:100], 0),
                           "M": Missing(None), "E": None}[kind]
        results = []
        for room, ports in worlds:
            for name in names:
                if items[name] is not None and name in room:
                    ports[name].incoming.append(items[name])
            results.append(room.tick(0.02 * (tick + 1)))
        fast, ref = worlds[0][0], worlds[1][0]
        native_ticks += int(fast._stale[[fast._legs[n].slot for n in names if n in fast]].sum())
        assert_same_tick(fast, ref, results, tick)
    assert native_ticks > 200, native_ticks        # most frames took the native path
    assert not worlds[1][0]._stale.any()           # and the reference never does


def test_native_rows_are_what_a_decoder_fed_every_frame_gives() -> None:
    """Independent of the room's reference path: a leg decoded natively for many frames, then
    a loss, then frames again, hears exactly what a G722Decoder fed every packet produces."""
    room = Room("r", 16000, max_talkers=0)
    port = FakePort()
    room.add_leg("a", port, "G722", "G722", payload_type=9)
    enc, dec = make_encoder("G722"), make_decoder("G722")
    for tick in range(30):
        payload = enc.encode(speech(2, tick, loud=True))
        lost = tick in (20, 21)
        port.incoming.append(Missing(None) if lost else Frame(payload, 0))
        room.tick(0.02 * (tick + 1))
        expect = dec.conceal(320) if lost else dec.decode(payload)
        np.testing.assert_array_equal(room.mixer.inputs[room._legs["a"].slot], expect, err_msg=str(tick))
