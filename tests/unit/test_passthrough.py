"""Sole-talker passthrough (bridge/media/passthrough.py, media.sole_talker_passthrough): while
one G.711 or G.722 talker is all a pure listener of the same codec hears, the listener is sent
the talker's own codes, delayed by what the room's re-encode adds, instead of the re-encode."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from bridge_codecs import make_decoder, make_encoder

from bridge.media.passthrough import CLEAN_TICKS, CODEC_DELAY, passthrough_delay, round_trip
from bridge.media.room import Room
from bridge.media.tones import ToneSegment, ToneSource
from bridge.rtp.jitter import Frame, Missing
from tests.unit.test_room import FakePort

RATE = {"PCMU": 8000, "G722": 16000}


def speechlike(rate: int, seconds: float, f0: float = 150.0, seed: int = 3) -> np.ndarray:
    """A voiced, slowly varying signal with a little noise: what a talker's encoder sees."""
    t = np.arange(int(rate * seconds)) / rate
    x = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 8))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + np.random.default_rng(seed).standard_normal(t.size) * 0.05
    return np.rint(x / np.max(np.abs(x)) * 6000).astype(np.int16)


def packets(codec: str, x: np.ndarray) -> list[bytes]:
    enc, n = make_encoder(codec), RATE[codec] // 50
    return [enc.encode(x[i * n:(i + 1) * n]) for i in range(len(x) // n)]


def run(room_rate: int, codec: str, streams: dict[str, list[Any]], listeners: tuple[str, ...] = ("listener",),
        passthrough: bool = True, setup: Any = None) -> tuple[Room, dict[str, list[bytes]]]:
    """A room with one leg per stream (items: a payload, None for a lost packet) and silent
    listeners; returns what each leg was sent."""
    room = Room("r", room_rate, passthrough=passthrough)
    ports = {name: FakePort() for name in (*streams, *listeners)}
    for name, port in ports.items():
        room.add_leg(name, port, codec, codec, payload_type=0 if codec == "PCMU" else 9)
    if setup is not None:
        setup(room)
    ticks = RATE[codec] // 50 // (2 if codec == "G722" else 1)
    for i in range(max(len(s) for s in streams.values())):
        for name, stream in streams.items():
            if i < len(stream):
                item = stream[i]
                ports[name].incoming.append(Frame(item, ticks * i) if item is not None else Missing())
        room.tick(0.02 * (i + 1))
    return room, {name: [s[0] for s in port.sent] for name, port in ports.items()}


def lag(a: np.ndarray, b: np.ndarray, most: int = 80) -> int:
    """The shift of ``b`` against ``a`` (samples) that correlates best."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    n = min(len(a), len(b)) - 2 * most
    scores = [float(np.dot(a[most:most + n], b[most + k:most + k + n])) for k in range(-most, most + 1)]
    return int(np.argmax(scores)) - most


def test_delays_are_what_the_rooms_own_path_adds() -> None:
    assert passthrough_delay("PCMU", 8000) == 0 and passthrough_delay("PCMA", 8000) == 0
    assert passthrough_delay("PCMU", 16000) == round_trip(8000, 16000) > 0
    assert passthrough_delay("G722", 16000) == CODEC_DELAY["G722"] // 2
    assert passthrough_delay("G722", 8000) is None       # a narrowband room band-limits on purpose
    assert passthrough_delay("opus", 48000) is None and passthrough_delay("L16", 8000) is None
    # G.722's encode + decode delay, measured on a broadband signal.
    x = speechlike(16000, 0.6)
    dec = make_decoder("G722")
    y = np.concatenate([dec.decode(p) for p in packets("G722", x)])
    assert lag(x, y) == CODEC_DELAY["G722"]


@pytest.mark.parametrize("codec,room_rate", [("PCMU", 8000), ("PCMU", 16000), ("G722", 16000)])
def test_a_sole_talkers_codes_reach_the_listener_delayed_in_step_with_the_mix(codec: str, room_rate: int) -> None:
    talk = packets(codec, speechlike(RATE[codec], 1.0))
    _, on = run(room_rate, codec, {"talker": talk})
    _, off = run(room_rate, codec, {"talker": talk}, passthrough=False)
    delay = passthrough_delay(codec, room_rate)
    assert delay is not None
    stream = b"".join(talk)
    got = on["listener"][5:]            # the gate is open well before
    if delay:
        expected = [stream[(i - 1) * len(talk[0]) + len(talk[0]) - delay:(i) * len(talk[0]) + len(talk[0]) - delay]
                    for i in range(5, len(talk))]
    else:
        expected = talk[5:]
    assert got == expected
    # In step with the room's own encode: decoded, the two streams line up to the sample.
    dec_on, dec_off = make_decoder(codec), make_decoder(codec)
    a = np.concatenate([dec_on.decode(p) for p in on["listener"]])
    b = np.concatenate([dec_off.decode(p) for p in off["listener"]])
    assert lag(b, a) == 0
    if codec == "PCMU" and room_rate == 8000:
        assert on["listener"] == off["listener"]       # G.711 in an 8 kHz room: the same bytes


def test_two_talkers_a_gain_or_an_announcement_mean_the_rooms_own_encode() -> None:
    a, b = packets("G722", speechlike(16000, 1.0)), packets("G722", speechlike(16000, 1.0, f0=210.0, seed=5))
    _, both = run(16000, "G722", {"a": a, "b": b})
    _, alone = run(16000, "G722", {"a": a})
    _, enc = run(16000, "G722", {"a": a}, passthrough=False)
    assert both["listener"][10:] != alone["listener"][10:]
    assert all(p != q for p, q in zip(both["listener"][10:], alone["listener"][10:]))
    # The talker with an input gain, the listener with an output gain: the room's encode.
    _, gained = run(16000, "G722", {"a": a}, setup=lambda room: room.set_input_gain("a", 3.0))
    assert all(p not in b"".join(a) for p in gained["listener"][10:])
    _, quieter = run(16000, "G722", {"a": a}, setup=lambda room: room.set_output_gain("listener", -3.0))
    assert all(p not in b"".join(a) for p in quieter["listener"][10:])
    # A room announcement on top: the room's encode while it plays.
    def announce(room: Room) -> None:
        room.add_room_source("ann", ToneSource([ToneSegment((440.0,), 600, -30.0)]))
    _, announced = run(16000, "G722", {"a": a}, setup=announce)
    _, announced_off = run(16000, "G722", {"a": a}, setup=announce, passthrough=False)
    assert announced["listener"][10:30] == announced_off["listener"][10:30]
    assert all(p not in b"".join(a) for p in announced["listener"][10:30])
    assert announced["listener"][-10:] == alone["listener"][-10:] != enc["listener"][-10:]


def test_a_talker_that_lost_a_packet_is_passed_through_only_after_clean_seconds() -> None:
    x = speechlike(8000, 4.5)
    talk: list[bytes | None] = list(packets("PCMU", x))
    talk[20] = None
    _, on = run(16000, "PCMU", {"talker": talk})
    _, off = run(16000, "PCMU", {"talker": talk}, passthrough=False)
    clean_again = 20 + CLEAN_TICKS
    assert on["listener"][5:19] != off["listener"][5:19]           # passed through before the loss
    assert on["listener"][20:clean_again] == off["listener"][20:clean_again]
    assert all(p != q for p, q in zip(on["listener"][clean_again + 1:], off["listener"][clean_again + 1:]))


def test_off_sends_the_rooms_own_encode() -> None:
    talk = packets("G722", speechlike(16000, 1.0))
    _, off = run(16000, "G722", {"talker": talk}, passthrough=False)
    assert not set(off["listener"]) & set(talk)
    assert all(p not in b"".join(talk) for p in off["listener"][5:])


def test_between_words_the_last_sole_talker_is_still_passed_through_unless_muted() -> None:
    """The silence gate takes a talker out of the mix between words (and cuts the soft start of
    the next one); passed through, the listener keeps hearing its codes, as on a direct call.
    Muted, it is not heard at all."""
    x = speechlike(16000, 1.0)
    x = np.concatenate([x, (x[:16000] * 0.002).astype(np.int16), x])     # a pause below the gate
    talk = packets("G722", x)
    stream, size, delay = b"".join(talk), len(talk[0]), passthrough_delay("G722", 16000)
    assert delay is not None
    own = [b""] + [stream[k * size - delay:(k + 1) * size - delay] for k in range(1, len(talk))]
    for mute_at in (None, 60):
        room = Room("r", 16000)
        ports = {name: FakePort() for name in ("talker", "listener")}
        for name, port in ports.items():
            room.add_leg(name, port, "G722", "G722", payload_type=9)
        out_of_mix = []
        for i, payload in enumerate(talk):
            if i == mute_at:
                room.set_muted("talker", True)
            ports["talker"].incoming.append(Frame(payload, 160 * i))
            room.tick(0.02 * (i + 1))
            if not room.mixer.is_contributor(room._legs["talker"].slot):
                out_of_mix.append(i)
        heard = [s[0] for s in ports["listener"].sent]
        pause = [k for k in out_of_mix if 50 < k < 100]
        assert len(pause) > 20                  # the gate did close in the pause
        assert all(heard[k] == own[k] for k in range(10, 45))
        # The talker never hears its own codes, in the pause neither (nor anything else: silence).
        back = [s[0] for s in ports["talker"].sent]
        assert not any(back[k] == own[k] for k in range(1, len(back)))
        mine = make_decoder("G722")
        level = np.sqrt(np.mean(np.concatenate([mine.decode(p) for p in back]).astype(np.float64) ** 2))
        # At most the codec's noise on encoded silence (20-30 RMS here, as without passthrough).
        assert level < 0.03 * np.sqrt(np.mean(x.astype(np.float64) ** 2)), level
        if mute_at is None:
            assert all(heard[k] == own[k] for k in pause)
        else:
            assert not any(heard[k] == own[k] for k in range(mute_at + 1, len(heard)))
