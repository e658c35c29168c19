"""Room tick fast paths: bulk G.711 groups with losses mixed in, common-stream runs around
talkers and first packets, and which leg primes a stream that is new this tick."""

from __future__ import annotations


import numpy as np

from bridge.media.ports import PcmSource
from bridge.media.room import Room
from bridge.rtp.jitter import Frame, Missing
from tests.unit.test_room import FakePort
from bridge_codecs import Resampler, make_decoder, make_encoder


def speech(seed: int, tick: int) -> np.ndarray:
    """A different voiced-ish frame per leg and tick (pitch repetition needs a period)."""
    t = (np.arange(160) + 160 * tick) / 8000
    f = 150 + 37 * seed
    return np.rint(3000 * np.sin(2 * np.pi * f * t) + 800 * np.sin(2 * np.pi * 3 * f * t)).astype(np.int16)


# What each leg receives per tick: F = frame, M = Missing, E = nothing, S = short frame.
PATTERNS = [
    "FFFFFFFFFFFF",
    "FFFMFFFFMMFF",
    "FFMMFFFFFMFF",
    "FFFFEEFFFMFF",
    "FSFFFFSFFMFF",
    "MFFFFFFFFFFM",
]


def test_bulk_group_decodes_every_leg_like_its_own_decoder() -> None:
    """Legs of one bulk group, interleaved with another codec, a held leg and a reused slot,
    each get exactly what a decoder fed only their stream would produce, frame or concealment."""
    room = Room("r", 8000)
    ports: dict[str, FakePort] = {}
    codec: dict[str, str] = {}

    def add(name: str, c: str) -> None:
        ports[name] = FakePort()
        codec[name] = c
        room.add_leg(name, ports[name], c, c, payload_type=0)

    for i in range(20):                       # > the mixer's initial capacity of 16
        add(f"u{i}", "PCMU")
        if i % 3 == 0:
            add(f"a{i}", "PCMA")
    add("held", "PCMU")
    room.set_on_hold("held", True)
    room.remove_leg("u4")
    room.tick(0.0)
    add("late", "PCMU")                       # takes u4's slot: the group is not in slot order

    names = [n for n in ports if n != "u4"]
    patterns = {n: PATTERNS[i % len(PATTERNS)] for i, n in enumerate(names)}
    refs = {n: make_decoder(codec[n]) for n in names}
    encs = {c: make_encoder(c) for c in ("PCMU", "PCMA")}
    for tick in range(12):
        expected: dict[str, np.ndarray | None] = {}
        for i, n in enumerate(names):
            kind = patterns[n][tick]
            payload = encs[codec[n]].encode(speech(i, tick))
            if kind == "F":
                ports[n].incoming.append(Frame(payload, 0))
                expected[n] = refs[n].decode(payload)
            elif kind == "S":
                ports[n].incoming.append(Frame(payload[:100], 0))
                pcm = np.zeros(160, np.int16)
                pcm[:100] = refs[n].decode(payload[:100])
                expected[n] = pcm
            elif kind == "M":
                ports[n].incoming.append(Missing(None))
                expected[n] = refs[n].conceal(160)
            else:
                expected[n] = None
        room.tick(0.02 * (tick + 1))
        legs = room._legs
        for n in names:
            slot = legs[n].slot
            if n == "held":
                assert not room.mixer.present[slot]
                continue
            exp = expected[n]
            assert bool(room.mixer.present[slot]) == (exp is not None), (tick, n)
            if exp is not None:
                np.testing.assert_array_equal(room.mixer.inputs[slot], exp, err_msg=f"{tick} {n}")
        assert all(len(p.sent) == tick + 1 + (n != "late") for n, p in ports.items() if n != "u4")


def test_common_stream_runs_skip_talkers_and_mark_only_first_packets() -> None:
    room = Room("r", 8000)
    ports = {f"l{i}": FakePort() for i in range(12)}
    for n, p in ports.items():
        room.add_leg(n, p, "PCMU", "PCMU", payload_type=0)
    enc = make_encoder("PCMU")
    talkers = ("l3", "l8")

    def tick(t: int) -> None:
        for j, n in enumerate(talkers):
            ports[n].incoming.append(Frame(enc.encode(speech(j, t)), 0))
        room.tick(0.02 * t)

    tick(0)
    assert all(p.sent[0][2] for p in ports.values())
    late = FakePort()
    room.add_leg("late", late, "PCMU", "PCMU", payload_type=0)
    room.set_codec("l5", "PCMA", "PCMA", 8)
    room.set_codec("l6", "PCMU", "PCMU", 0)    # same codec again: still a new first packet
    tick(1)
    marked = {n for n, p in ports.items() if p.sent[-1][2]}
    assert marked == {"l5", "l6"} and late.sent == [(late.sent[0][0], 160, True)]
    common = ports["l0"].sent[-1][0]
    for n, p in ports.items():
        assert len(p.sent) == 2
        if n in talkers or n == "l5":
            assert p.sent[-1][0] is not common
        else:
            assert p.sent[-1][0] is common
    tick(2)
    assert not any(p.sent[-1][2] for p in [*ports.values(), late])
    assert ports["l3"].sent[-1][0] != ports["l8"].sent[-1][0]           # each its mix-minus


def test_a_prompt_ending_primes_the_new_common_stream_in_room_order() -> None:
    """The common stream is new when nobody heard it last tick; the first leg in room order to
    reach it primes its resampler with what that leg heard: here the prompt that just ended."""
    def run(prompt_frames: int) -> tuple[Room, FakePort, FakePort, int]:
        room = Room("r", 16000)
        b, a = FakePort(), FakePort()
        room.add_leg("b", b, "PCMU", "PCMU", payload_type=0)     # b first in room order
        room.add_leg("a", a, "PCMU", "PCMU", payload_type=0)
        t = np.arange(320 * max(prompt_frames, 1)) / 16000
        prompt = np.rint(6000 * np.sin(2 * np.pi * 700 * t)).astype(np.int16)
        room.set_leg_source("b", PcmSource(prompt, 16000, loop=not prompt_frames))
        enc = make_encoder("PCMU")
        was = False
        for i in range(40):
            if i < 3:
                a.incoming.append(Frame(enc.encode(speech(0, i)), 0))
            room.tick(0.02 * i)
            now = room.mixer.is_contributor(room._legs["a"].slot)
            if was and not now:
                return room, a, b, i
            was = now
        return room, a, b, -1

    _, _, _, stop = run(0)                    # endless prompt: when does a stop contributing?
    assert stop > 0
    room, a, b, stopped = run(stop)           # the prompt ends on that very tick
    assert stopped == stop
    assert a.sent[-1][0] is b.sent[-1][0]     # both on the new common stream
    t = np.arange(320 * stop) / 16000
    last_prompt = np.rint(6000 * np.sin(2 * np.pi * 700 * t)).astype(np.int16)[-320:]
    primed = Resampler(16000, 8000)
    primed.process(last_prompt)
    expected = make_encoder("PCMU").encode(primed.process(np.zeros(320, np.int16)))
    assert b.sent[-1][0] == expected
    assert expected != make_encoder("PCMU").encode(np.zeros(160, np.int16))   # priming audible


def test_control_changes_regroup_legs_only_when_their_path_changes() -> None:
    """Mute toggles leave the tick plan alone; a decoder-only codec change (same encoder, so
    the same common stream) still moves the leg to the right bulk table."""
    room = Room("r", 8000)
    ports = {n: FakePort() for n in ("a", "b", "c")}
    for n, p in ports.items():
        room.add_leg(n, p, "PCMU", "PCMU", payload_type=0)
    room.tick(0.0)
    plan = room._bulk
    room.set_muted("a", True)
    room.set_listen_only("b", True)
    room.tick(0.02)
    assert room._bulk is plan
    room.set_codec("c", "PCMA", "PCMU", 8)
    room.tick(0.04)
    pcm = speech(1, 0)
    payload = make_encoder("PCMA").encode(pcm)
    ports["c"].incoming.append(Frame(payload, 0))
    room.tick(0.06)
    np.testing.assert_array_equal(room.mixer.inputs[room._legs["c"].slot], make_decoder("PCMA").decode(payload))
