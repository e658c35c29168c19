"""A whole Room with 3 healthy PCMU legs (steady tones) and 1-2 legs whose ports deliver
garbage: random payloads of any length (empty, short, 160 random bytes, huge), losses with
garbage FEC payloads, nothing, in PCMU, PCMA, G.722, Opus or L16.

Exact equality with a room *without* the garbage is only possible when nobody can hear the
garbage (muted garbage legs: then the healthy legs' packets must be byte-identical, tick for
tick, to a room that never had those legs). Unmuted, random bytes are audible audio by design
(any byte is a valid G.711 sample), so the meaningful invariant is differential: the room must
treat a garbage frame exactly as "decode it with that leg's decoder, conceal on a loss, pad or
cut to one frame, resample, mix", nothing else. The reference room gets, instead of each
garbage leg, an L16 leg fed the PCM a separate decoder (+ resampler) of that codec produced
from the same items; every healthy leg must receive the same packets in both rooms, tick for
tick. The tick never raises and no garbage is reported as a failed leg (LegFailed is for ports
that raise; see tests/unit/test_room_containment.py).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import numpy as np
import pytest
from bridge_codecs import Resampler, make_decoder, make_encoder
from hypothesis import given
from hypothesis import strategies as st

from bridge.media.room import Room
from bridge.rtp.jitter import Empty, Frame, Missing
from tests.fuzz._settings import fuzz

RATE = 8000
FRAME = 160
HEALTHY = {"a": 440.0, "b": 700.0, "c": 1100.0}
_PCMU = make_encoder("PCMU")


class Port:
    """pop_frame/packetize like RtpSession (tests/unit/test_room.py's FakePort)."""

    def __init__(self) -> None:
        self.incoming: deque[Any] = deque()
        self.sent: list[bytes] = []

    def pop_frame(self) -> Any:
        return self.incoming.popleft() if self.incoming else Empty()

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        self.sent.append(payload)
        return b"H" + payload


def tone_frame(freq: float, tick: int) -> bytes:
    t = (np.arange(FRAME) + FRAME * tick) / RATE
    return _PCMU.encode(np.rint(6000 * np.sin(2 * np.pi * freq * t)).astype(np.int16))


def fit(pcm: np.ndarray, samples: int) -> np.ndarray:
    out = np.zeros(samples, np.int16)
    n = min(samples, pcm.shape[0])
    out[:n] = pcm[:n]
    return out


class Reference:
    """What the room should make of one garbage leg's items: its own decoder and resampler."""

    def __init__(self, codec: str) -> None:
        self.decoder = make_decoder(codec, frame_ms=20)
        self.samples = self.decoder.sample_rate * 20 // 1000
        rate = self.decoder.sample_rate
        self.resampler = Resampler(rate, RATE) if rate != RATE else None

    def frame(self, item: Any) -> Any:
        try:
            if isinstance(item, Frame):
                pcm = self.decoder.decode(item.payload)
            elif isinstance(item, Missing):
                pcm = self.decoder.conceal(self.samples, item.next_payload)
            else:
                return Empty()
            if self.resampler is not None:
                pcm = self.resampler.process(fit(pcm, self.samples))
        except Exception:  # noqa: BLE001 - the room drops a frame its decoder cannot take
            return Empty()
        return Frame(fit(pcm, FRAME).astype(">i2").tobytes(), 0)


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


PAYLOADS = st.one_of(
    st.binary(max_size=400),
    st.builds(random_bytes, st.sampled_from([0, 1, 2, 80, 159, 160, 160, 160, 161, 320, 960, 5000]),
              st.integers(0, 2**32)),
    st.sampled_from([b"\xff" * 160, b"\x00" * 160, b"\x7f" * 160, b"\x80" * 160, b"\xfc", b"\x78\x00"]),
)
ITEMS = st.one_of(
    st.builds(Frame, PAYLOADS, st.integers(0, 2**32 - 1)),
    st.builds(Frame, PAYLOADS, st.integers(0, 2**32 - 1)),
    st.builds(Missing, st.none() | PAYLOADS),
    st.just(Empty()),
)
CODECS = st.sampled_from(["PCMU", "PCMU", "PCMA", "G722", "opus", "L16"])


def build(garbage: dict[str, str], max_talkers: int, muted: bool,
          skip_inactive: bool = True) -> tuple[Room, dict[str, Port]]:
    room = Room("r", RATE, max_talkers=max_talkers, skip_inactive=skip_inactive)
    ports = {name: Port() for name in [*HEALTHY, *garbage]}
    for name in HEALTHY:
        room.add_leg(name, ports[name], "PCMU", "PCMU", payload_type=0)
    for name, codec in garbage.items():
        room.add_leg(name, ports[name], codec, codec, payload_type=96)
        if muted:
            room.set_muted(name, True)
    return room, ports


def run(codecs: list[str], ticks: list[list[Any]], max_talkers: int, muted: bool,
        skip_inactive: bool = True) -> dict[str, Port]:
    """``skip_inactive=False`` when the reference decodes every item: a room leaves an Opus
    frame its VAD flag calls inactive undecoded (test_opus_inactive.py), the reference cannot."""
    garbage = {f"g{i}": codec for i, codec in enumerate(codecs)}
    room, ports = build(garbage, max_talkers, muted, skip_inactive)
    # The reference: no garbage legs at all when they are muted, else L16 legs fed what a
    # decoder of their codec makes of the same items.
    ref_legs = {} if muted else {name: "L16" for name in garbage}
    ref_room, ref_ports = build(ref_legs, max_talkers, False)
    refs = {name: Reference(codec) for name, codec in garbage.items()}
    for t, items in enumerate(ticks):
        for name, freq in HEALTHY.items():
            payload = tone_frame(freq, t)
            ports[name].incoming.append(Frame(payload, FRAME * t))
            ref_ports[name].incoming.append(Frame(payload, FRAME * t))
        for (name, ref), item in zip(refs.items(), items):
            ports[name].incoming.append(item)
            if not muted:
                ref_ports[name].incoming.append(ref.frame(item))
        events = room.tick(t * 0.02).events
        ref_room.tick(t * 0.02)
        assert not [e for e in events if type(e).__name__ in ("LegFailed", "SinkFailed")], events
        for name in HEALTHY:
            assert len(ports[name].sent) == t + 1 and len(ports[name].sent[-1]) == FRAME
            assert ports[name].sent[-1] == ref_ports[name].sent[-1], f"{name} heard something else at tick {t}"
    return ports


def hears(payload: bytes, freq: float) -> bool:
    pcm = make_decoder("PCMU").decode(payload).astype(np.float64)
    t = np.arange(FRAME) / RATE
    c = np.hypot(pcm @ np.sin(2 * np.pi * freq * t), pcm @ np.cos(2 * np.pi * freq * t))
    return bool(c / FRAME > 500)


@st.composite
def scenarios(draw: st.DrawFn, codecs: st.SearchStrategy[str] = CODECS) -> tuple[list[str], list[list[Any]]]:
    legs = draw(st.lists(codecs, min_size=1, max_size=2))
    n_ticks = draw(st.integers(2, 8))
    return legs, [[draw(ITEMS) for _ in legs] for _ in range(n_ticks)]


@fuzz(60)
@given(scenarios(), st.sampled_from([0, 0, 2, 3]))
def test_room_muted_garbage_legs_are_inaudible(scenario: tuple[list[str], list[list[Any]]],
                                                max_talkers: int) -> None:
    codecs, ticks = scenario
    ports = run(codecs, ticks, max_talkers, muted=True)
    if max_talkers == 2:
        return               # each hears the top 2 talkers only, maybe itself among them
    for name, freq in HEALTHY.items():
        others = [f for n, f in HEALTHY.items() if n != name]
        last = ports[name].sent[-1]
        assert all(hears(last, f) for f in others) and not hears(last, freq)


@fuzz(100)
@given(scenarios(st.sampled_from(["PCMU", "PCMU", "PCMA", "L16"])), st.sampled_from([0, 0, 2, 3]))
def test_room_garbage_is_decoded_like_any_audio_g711(scenario: tuple[list[str], list[list[Any]]],
                                                     max_talkers: int) -> None:
    codecs, ticks = scenario
    run(codecs, ticks, max_talkers, muted=False)


@fuzz(40)
@given(scenarios(st.sampled_from(["G722", "opus"])))
def test_room_garbage_is_decoded_like_any_audio_g722_opus(scenario: tuple[list[str], list[list[Any]]]) -> None:
    codecs, ticks = scenario
    run(codecs, ticks, 0, muted=False, skip_inactive=False)


@fuzz(40)
@given(scenarios(st.sampled_from(["opus"])), st.sampled_from([0, 2]))
def test_room_garbage_opus_with_inactive_skipping_fails_no_leg(scenario: tuple[list[str], list[list[Any]]],
                                                               max_talkers: int) -> None:
    """The VAD flag read from garbage (any bytes may look inactive) never costs a leg or a tick."""
    codecs, ticks = scenario
    room, ports = build({f"g{i}": codec for i, codec in enumerate(codecs)}, max_talkers, False)
    for t, items in enumerate(ticks):
        for name, freq in HEALTHY.items():
            ports[name].incoming.append(Frame(tone_frame(freq, t), FRAME * t))
        for i, item in enumerate(items):
            ports[f"g{i}"].incoming.append(item)
        events = room.tick(t * 0.02).events
        assert not [e for e in events if type(e).__name__ in ("LegFailed", "SinkFailed")], events
        assert all(len(ports[name].sent) == t + 1 for name in HEALTHY)


@pytest.mark.parametrize("muted", [True, False])
def test_room_reference_sanity(muted: bool) -> None:
    """A well-behaved 'garbage' leg (a 300 Hz tone in PCMU) through the same machinery."""
    ticks: list[list[Any]] = [[Frame(tone_frame(300.0, t), 0)] for t in range(6)]
    ports = run(["PCMU"], ticks, 0, muted)
    assert hears(ports["a"].sent[-1], 300.0) is not muted


# -- regressions ---------------------------------------------------------------------------------
def test_room_conceal_after_odd_length_frame_uses_the_legs_own_history() -> None:
    """Found by this target: a G.711 frame of the wrong length (decoded per leg) after
    bulk-decoded ones, then a loss, was concealed from stale history (near silence)."""
    ticks: list[list[Any]] = [[Frame(b"\x00" * FRAME, 0)], [Frame(b"\x00", 0)], [Missing(None)]]
    run(["PCMU"], ticks, 0, muted=False)


def test_room_conceal_after_bulk_odd_bulk_frames_replays_each_payload_once() -> None:
    """Found by this target with more examples: bulk, odd-length, bulk frames, then a loss; the
    history replay fed the decoder payloads it had already decoded."""
    payload = random_bytes(FRAME, 7)
    ticks: list[list[Any]] = [[Frame(b"\xff" * FRAME, 0)], [Frame(b"\x00\x00", 0)], [Frame(payload, 0)],
                              [Missing(None)]]
    run(["PCMU"], ticks, 0, muted=False)
