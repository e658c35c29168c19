"""Opus frames their sender's encoder marks inactive (the SILK VAD flag) are not decoded while
that sender is out of the mix (room_ingress.RoomIngress._sleeps, media.opus_skip_inactive)."""

from __future__ import annotations

from typing import Any

import numpy as np
from bridge_codecs import make_decoder, make_encoder
from bridge_codecs.opus import _first_bit, _RangeBits, packet_is_inactive

from bridge.media.room import Room
from bridge.media.room_ingress import PROBE_TICKS
from bridge.rtp.jitter import Frame, Missing
from tests.unit.test_opus_native import frames, voiced
from tests.unit.test_resample import goertzel_db
from tests.unit.test_room import FakePort


def _noise(seconds: float, rms: float = 30.0, seed: int = 1) -> np.ndarray:
    """Low room noise (-60 dBFS), what an open microphone sends between words."""
    return (np.random.default_rng(seed).standard_normal(int(48000 * seconds)) * rms).astype(np.int16)


def _tone(seconds: float, freq: float = 440.0, amp: float = 3000.0) -> np.ndarray:
    t = np.arange(int(48000 * seconds)) / 48000
    return np.rint(amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _packets(x: np.ndarray) -> list[bytes]:
    enc = make_encoder("opus", bitrate=32000)
    return [enc.encode(f) for f in frames(x)]


def test_the_vad_flag_is_read_from_the_packet() -> None:
    quiet = _packets(_noise(1.0))
    talk = _packets(voiced(1.0))
    assert all(packet_is_inactive(p) for p in quiet[5:])
    # A vowel is active from its onset; libopus's VAD still calls the troughs of its 4 Hz
    # envelope (a fifth of its peak) inactive: the room keeps an open talker awake through them.
    assert not any(packet_is_inactive(p) for p in talk[:8])
    assert sum(not packet_is_inactive(p) for p in talk) > 0.6 * len(talk)
    # Never called inactive: CELT-only packets (config 16 and up), packets of several frames
    # (TOC code 1-3) and packets too short to hold a SILK header.
    body = quiet[10][1:]
    assert not packet_is_inactive(bytes([(16 << 3)]) + body)
    for code in (1, 2, 3):
        assert not packet_is_inactive(bytes([quiet[10][0] | code]) + body)
    assert not packet_is_inactive(b"") and not packet_is_inactive(quiet[10][:1])


def test_the_quick_first_bit_is_the_range_decoders() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20000):
        data = bytes(rng.integers(0, 256, 6).tolist())
        assert _first_bit(data[:3]) == _RangeBits(data).bit()


def _room(skip: bool, names: tuple[str, ...]) -> tuple[Room, dict[str, FakePort]]:
    room = Room("r", 48000, skip_inactive=skip)
    ports = {n: FakePort() for n in names}
    for name, port in ports.items():
        room.add_leg(name, port, "opus", "opus", payload_type=111, encoder_opts={"bitrate": 32000})
    room.tick(0.0)
    return room, ports


def _spy(room: Room, leg_id: str) -> list[tuple[str, Any]]:
    """Record the calls the room makes to a leg's decoder (decode: the payload; conceal: the
    next payload it was given, or None)."""
    decoder = room._legs[leg_id].decoder
    calls: list[tuple[str, Any]] = []
    decode, conceal = decoder.decode, decoder.conceal

    def spy_decode(payload: bytes) -> Any:
        calls.append(("decode", payload))
        return decode(payload)

    def spy_conceal(samples: int, next_payload: bytes | None = None) -> Any:
        calls.append(("conceal", next_payload))
        return conceal(samples, next_payload)

    decoder.decode = spy_decode            # type: ignore[method-assign]
    decoder.conceal = spy_conceal          # type: ignore[method-assign]
    return calls


def _run(room: Room, ports: dict[str, FakePort], streams: dict[str, list[Any]], t0: float = 0.02) -> None:
    for i in range(max(len(s) for s in streams.values())):
        for name, stream in streams.items():
            if i < len(stream):
                item = stream[i]
                ports[name].incoming.append(Frame(item, 960 * i) if isinstance(item, bytes) else item)
        room.tick(t0 + 0.02 * i)


def test_quiet_callers_are_not_decoded_and_everyone_hears_the_same() -> None:
    """Five callers sending room noise are decoded only at the probes (2 decodes in
    PROBE_TICKS); what every leg is sent is byte for byte what a room decoding everything sends."""
    names = ("talker", "q1", "q2", "q3", "q4", "q5")
    talk = _packets(voiced(2.0))
    quiet = {f"q{k}": _packets(_noise(2.0, seed=k)) for k in range(1, 6)}
    sent = {}
    for skip in (True, False):
        room, ports = _room(skip, names)
        calls = _spy(room, "q3")
        _run(room, ports, {"talker": talk, **quiet})
        sent[skip] = {n: [s[0] for s in p.sent] for n, p in ports.items()}
        decodes = sum(1 for kind, _ in calls if kind == "decode")
        if skip:
            assert decodes <= 2 * (len(talk) // PROBE_TICKS + 1) + 2
        else:
            assert decodes == len(talk)
    assert sent[True] == sent[False]


def test_a_sleeping_caller_wakes_with_its_decoder_in_step() -> None:
    """Talk, a second of room noise (asleep once its gate has closed), talk again: on waking the
    last skipped packet is decoded first, and the listener hears the new talk spurt as from a
    room that decoded every packet."""
    speech1, speech2 = _packets(voiced(1.0)), _packets(voiced(1.0, f0=180.0))
    noise = _packets(_noise(1.0))
    stream = speech1 + noise + speech2
    heard = {}
    for skip in (True, False):
        room, ports = _room(skip, ("talker", "listener"))
        calls = _spy(room, "talker")
        _run(room, ports, {"talker": stream, "listener": _packets(_noise(3.0, seed=9))})
        decoded = [p for kind, p in calls if kind == "decode"]
        if skip:
            assert len(decoded) < len(stream) - 20            # it did sleep through the noise
            wake = decoded.index(speech2[0])
            assert decoded[wake - 1] in noise                  # the last skipped packet, just before
        dec = make_decoder("opus")
        heard[skip] = np.concatenate([dec.decode(s[0]) for s in ports["listener"].sent])
    spurt = slice(len(speech1 + noise) * 960 + 960, len(stream) * 960)
    a, b = heard[True][spurt].astype(np.float64), heard[False][spurt].astype(np.float64)
    snr = 10 * np.log10(np.sum(b ** 2) / max(np.sum((a - b) ** 2), 1.0))
    assert snr > 40, snr      # measured: bit-exact here; 18 dB without the warm-up decode


def test_a_steady_tone_its_sender_calls_inactive_is_still_heard_after_hold() -> None:
    """libopus's VAD calls a steady tone inactive after about half a second. Held meanwhile, the
    caller's gate closed; when it comes back the probe decodes a frame, its level opens the gate,
    and the listener hears the tone within PROBE_TICKS."""
    tone = _packets(_tone(4.0))
    assert all(packet_is_inactive(p) for p in tone[100:])
    room, ports = _room(True, ("tone", "listener"))
    room.set_on_hold("tone", True)
    _run(room, ports, {"tone": tone[:100], "listener": _packets(_noise(2.0))})
    room.set_on_hold("tone", False)
    before = len(ports["listener"].sent)
    _run(room, ports, {"tone": tone[100:], "listener": _packets(_noise(2.0, seed=3))}, t0=2.02)
    dec = make_decoder("opus")
    out = [dec.decode(s[0]) for s in ports["listener"].sent[before:]]
    late = np.concatenate(out[PROBE_TICKS + 5:])
    assert goertzel_db(late, 440.0, 48000, ref_amp=3000.0) > -6


def test_a_loss_while_asleep_is_not_concealed() -> None:
    quiet = _packets(_noise(1.0))
    stream: list[Any] = list(quiet[:40]) + [Missing(quiet[41])] + list(quiet[41:])
    for skip in (True, False):
        room, ports = _room(skip, ("q", "listener"))
        calls = _spy(room, "q")
        _run(room, ports, {"q": stream, "listener": _packets(_noise(1.0, seed=5))})
        concealed = sum(1 for kind, _ in calls if kind == "conceal")
        assert concealed == (0 if skip else 1)


def test_a_recorded_caller_is_decoded_every_tick() -> None:
    """A leg with sinks of its own (its recording track) is decoded whatever its VAD says."""
    quiet = _packets(_noise(1.0))
    room, ports = _room(True, ("q", "listener"))
    got: list[np.ndarray] = []

    class Sink:
        def write(self, pcm: np.ndarray, rate: int) -> None:
            got.append(pcm)

    room.add_leg_sink("q", "track", Sink())  # type: ignore[arg-type]
    calls = _spy(room, "q")
    _run(room, ports, {"q": quiet, "listener": _packets(_noise(1.0, seed=5))})
    assert sum(1 for kind, _ in calls if kind == "decode") == len(quiet)
    assert len(got) >= len(quiet)
