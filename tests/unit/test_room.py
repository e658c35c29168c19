"""Room tick: shared encodes, per-leg flags, sources and sinks, events, codec handling."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pytest

from bridge.media.mixer import limit
from bridge.media.ports import ListSink, PcmSource
from bridge.media.room import (DominantSpeakerChanged, Room, SourceFinished, TalkingStarted,
                               TalkingStopped)
from bridge.rtp.jitter import Empty, Frame, Missing
from bridge_codecs import make_decoder, make_encoder


class FakePort:
    """pop_frame/packetize like RtpSession; packetize prefixes a 1-byte fake header."""

    def __init__(self) -> None:
        self.incoming: deque[Any] = deque()
        self.sent: list[tuple[bytes, int, bool]] = []

    def pop_frame(self) -> Any:
        return self.incoming.popleft() if self.incoming else Empty()

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        self.sent.append((payload, ticks, marker))
        return b"H" + payload

    @property
    def last(self) -> bytes:
        return self.sent[-1][0]


def tone(freq: float, amp: float, rate: int = 8000, samples: int = 160, phase: int = 0) -> np.ndarray:
    t = (np.arange(samples) + phase) / rate
    return np.rint(amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


PCMU_SILENCE = bytes([0xFF]) * 160


def g711_room(names: list[str], rate: int = 8000, **kw: Any) -> tuple[Room, dict[str, FakePort]]:
    room = Room("r1", rate, **kw)
    ports = {}
    for name in names:
        ports[name] = FakePort()
        room.add_leg(name, ports[name], "PCMU", "PCMU", payload_type=0)
    return room, ports


def feed_pcmu(port: FakePort, pcm: np.ndarray) -> bytes:
    payload = make_encoder("PCMU").encode(pcm)
    port.incoming.append(Frame(payload, 0))
    return payload


def decoded(payload: bytes) -> np.ndarray:
    return make_decoder("PCMU").decode(payload).astype(np.int32)


def test_shared_g711_encode_is_byte_identical_to_per_leg_encodes() -> None:
    listeners = [f"l{i}" for i in range(5)]
    room, ports = g711_room(["a", "b", *listeners])
    pa = feed_pcmu(ports["a"], tone(440, 8000))
    pb = feed_pcmu(ports["b"], tone(700, 6000))
    for name in listeners:
        ports[name].incoming.append(Frame(PCMU_SILENCE, 0))
    result = room.tick(0.0)
    assert sorted(leg for leg, _ in result.outgoing) == sorted(ports)
    enc = make_encoder("PCMU")
    total = decoded(pa) + decoded(pb)
    expected_listener = enc.encode(limit(total))
    for name in listeners:
        assert ports[name].last == expected_listener
        assert ports[name].last is ports[listeners[0]].last          # one encode, shared
    assert ports["a"].last == enc.encode(limit(decoded(pb)))         # mix-minus
    assert ports["b"].last == enc.encode(limit(decoded(pa)))
    assert all(t == 160 and m for _, t, m in (p.sent[0] for p in ports.values()))
    assert len(room._streams) == 3                                   # common + 2 talkers
    room.tick(0.02)
    assert not any(p.sent[-1][2] for p in ports.values())            # marker only first


def test_empty_and_silent_legs_hear_the_common_stream() -> None:
    room, ports = g711_room(["a", "quiet", "absent"])
    feed_pcmu(ports["a"], tone(440, 8000))
    ports["quiet"].incoming.append(Frame(PCMU_SILENCE, 0))
    room.tick(0.0)
    assert ports["quiet"].last is ports["absent"].last
    assert room.participants_snapshot()[1].contributing is False


def one_tick(room: Room, ports: dict[str, FakePort], loud: dict[str, float]) -> None:
    for name, port in ports.items():
        if name in loud:
            feed_pcmu(port, tone(loud[name], 8000))
    room.tick(0.0)


def heard_level(port: FakePort) -> float:
    pcm = decoded(port.last)
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


def hears(port: FakePort, freq: float) -> bool:
    """Correlation with a tone at ``freq`` (robust against other tones in the mix)."""
    pcm = decoded(port.last).astype(np.float64)
    t = np.arange(160) / 8000
    c = np.hypot(pcm @ np.sin(2 * np.pi * freq * t), pcm @ np.cos(2 * np.pi * freq * t))
    return bool(c / 160 > 500)


def test_flags_apply_at_the_next_tick_and_mute_semantics() -> None:
    room, ports = g711_room(["a", "b", "c"])
    one_tick(room, ports, {"a": 400, "b": 1000})
    room.set_muted("a", True)
    assert room.participants_snapshot()[0].muted is False            # queued, not applied yet
    one_tick(room, ports, {"a": 400, "b": 1000})
    assert room.participants_snapshot()[0].muted is True
    assert not hears(ports["c"], 400) and hears(ports["c"], 1000)
    assert hears(ports["a"], 1000)                                   # muted still hears


def test_deaf_leg_gets_a_silent_stream_but_is_heard() -> None:
    room, ports = g711_room(["a", "b"])
    room.set_deaf("a", True)
    one_tick(room, ports, {"a": 400, "b": 1000})
    assert len(ports["a"].sent) == 1 and heard_level(ports["a"]) == 0   # silence keeps NAT open
    assert hears(ports["b"], 400)
    room.set_deaf("a", False)
    one_tick(room, ports, {"a": 400, "b": 1000})
    assert hears(ports["a"], 1000)


def test_hold_listen_only_and_isolated() -> None:
    room, ports = g711_room(["a", "held", "webinar", "waiting", "d"])
    room.set_on_hold("held", True)
    room.set_listen_only("webinar", True)
    room.set_isolated("waiting", True)
    one_tick(room, ports, {"a": 400, "held": 600, "webinar": 1000, "waiting": 1400})
    for f in (600, 1000, 1400):
        assert not hears(ports["d"], f)
    assert hears(ports["d"], 400)
    assert heard_level(ports["held"]) == 0 and heard_level(ports["waiting"]) == 0   # silence, not the mix
    assert hears(ports["webinar"], 400)


def test_isolated_leg_can_be_fed_a_private_source() -> None:
    room, ports = g711_room(["a", "waiting"])
    room.set_isolated("waiting", True)
    room.set_leg_source("waiting", PcmSource(tone(1000, 5000, samples=160 * 3), 8000))
    one_tick(room, ports, {"a": 400})
    assert hears(ports["waiting"], 1000) and not hears(ports["waiting"], 400)
    assert not hears(ports["a"], 1000)


def test_gains() -> None:
    room, ports = g711_room(["a", "b", "c"])
    room.set_input_gain("a", -6.0206)
    room.set_output_gain("c", -6.0206)
    one_tick(room, ports, {"a": 400})
    full = heard_level(ports["b"])
    assert full == pytest.approx(8000 / np.sqrt(2) / 2, rel=0.05)
    assert heard_level(ports["c"]) == pytest.approx(full / 2, rel=0.05)


def test_room_source_heard_by_all_recorded_and_finishes() -> None:
    room, ports = g711_room(["a", "b"])
    sink = ListSink()
    room.add_mix_sink("rec", sink)
    room.add_room_source("beep", PcmSource(tone(1000, 5000, samples=320), 8000))
    one_tick(room, ports, {"a": 400})
    assert hears(ports["a"], 1000) and hears(ports["b"], 1000) and hears(ports["b"], 400)
    one_tick(room, ports, {})
    result = room.tick(0.04)
    assert SourceFinished("beep", None) in result.events
    assert len(sink.frames) == 3 and sink.rate == 8000
    np.testing.assert_array_equal(sink.frames[1], tone(1000, 5000, samples=160, phase=160))


def test_leg_source_replace_and_mix_and_mix_sink_excludes_prompts() -> None:
    room, ports = g711_room(["a", "b", "c"])
    sink = ListSink()
    room.add_mix_sink("rec", sink)
    room.set_leg_source("b", PcmSource(tone(1000, 5000, samples=160 * 10), 8000), mode="replace")
    room.set_leg_source("c", PcmSource(tone(1500, 5000, samples=160), 8000), mode="mix")
    one_tick(room, ports, {"a": 400})
    assert hears(ports["b"], 1000) and not hears(ports["b"], 400)            # replace
    assert hears(ports["c"], 1500) and hears(ports["c"], 400)                # mix on top
    assert not hears(ports["a"], 1000) and not hears(ports["a"], 1500)       # private to the leg
    one_tick(room, ports, {"a": 400})
    assert hears(ports["c"], 400) and not hears(ports["c"], 1500)            # c's prompt finished
    room.tick(0.06)
    mix = sink.pcm().astype(np.float64)
    t = np.arange(mix.size) / 8000
    assert abs(mix @ np.sin(2 * np.pi * 1000 * t)) / mix.size < 50           # no prompt in the mix
    assert abs(mix @ np.sin(2 * np.pi * 400 * t)) / mix.size > 1000
    room.set_leg_source("b", None)
    one_tick(room, ports, {"a": 400})
    assert hears(ports["b"], 400)


def test_leg_source_finishing_reports_and_restores_the_mix() -> None:
    room, ports = g711_room(["a", "b"])
    room.set_leg_source("b", PcmSource(tone(1000, 5000, samples=160), 8000))
    feed_pcmu(ports["a"], tone(400, 8000))
    assert SourceFinished(None, "b") not in room.tick(0.0).events
    feed_pcmu(ports["a"], tone(400, 8000))
    assert SourceFinished(None, "b") in room.tick(0.02).events
    assert hears(ports["b"], 400) and not hears(ports["b"], 1000)


def test_leg_sink_records_what_the_leg_said() -> None:
    room, ports = g711_room(["a", "b"])
    track = ListSink()
    room.add_leg_sink("a", "t", track)
    p = feed_pcmu(ports["a"], tone(400, 8000))
    room.tick(0.0)
    np.testing.assert_array_equal(track.frames[0], decoded(p))
    room.set_muted("a", True)
    feed_pcmu(ports["a"], tone(400, 8000))
    room.tick(0.02)
    assert not track.frames[1].any()                                 # muted speech is not recorded


def test_talk_and_dominant_speaker_events() -> None:
    room, ports = g711_room(["a", "b"])
    events = []
    for i in range(45):
        if i < 10:
            feed_pcmu(ports["a"], tone(400, 8000))
        events += room.tick(i * 0.02).events
    starts = [e for e in events if isinstance(e, TalkingStarted)]
    stops = [e for e in events if isinstance(e, TalkingStopped)]
    assert [e.leg_id for e in starts] == ["a"] and starts[0].level_dbov > -20
    assert [e.leg_id for e in stops] == ["a"]
    assert DominantSpeakerChanged("a") in events
    assert room.participants_snapshot()[0].talking is False


def test_loss_is_concealed_on_the_bulk_g711_path() -> None:
    room, ports = g711_room(["a", "b"])
    for i in range(3):
        feed_pcmu(ports["a"], tone(200, 8000, phase=160 * i))
        room.tick(0.0)
    ports["a"].incoming.append(Missing(None))
    room.tick(0.06)
    assert heard_level(ports["b"]) > 1000                             # pitch repetition, not silence
    listed = {s.leg_id: (s.frames_fec, s.frames_concealed) for s in room.participants_snapshot()}
    assert listed == {"a": (0, 1), "b": (0, 0)}                        # the listing's counters


def test_corrupt_payload_costs_one_frame_not_the_tick() -> None:
    room = Room("r", 48000)
    bad, good = FakePort(), FakePort()
    room.add_leg("bad", bad, "opus", "opus", payload_type=111)
    room.add_leg("good", good, "opus", "opus", payload_type=111)
    bad.incoming.append(Frame(b"\xff" * 3, 0))
    result = room.tick(0.0)
    assert {leg for leg, _ in result.outgoing} == {"bad", "good"}


def test_opus_talker_switches_to_a_private_stream_and_back() -> None:
    room = Room("r", 48000)
    ports = {n: FakePort() for n in ("t", "l1", "l2")}
    for n, p in ports.items():
        room.add_leg(n, p, "opus", "opus", payload_type=111)
    enc = make_encoder("opus")
    room.tick(0.0)
    assert ports["l1"].last is ports["t"].last                        # everyone on the common stream
    for i in range(5):
        ports["t"].incoming.append(Frame(enc.encode(tone(440, 8000, 48000, 960, 960 * i)), 0))
        room.tick(0.02 * i)
        assert ports["l1"].last is ports["l2"].last
        assert ports["t"].last is not ports["l1"].last                # private: total minus own
    hang = room.mixer.detector.config.gate_hang
    for i in range(hang + 2):
        room.tick(1.0 + 0.02 * i)
    assert ports["t"].last is ports["l1"].last                        # back on the shared stream
    assert len(room._streams) == 1


def test_g722_leg_is_resampled_into_a_narrowband_room() -> None:
    room = Room("r", 8000)
    wide, narrow = FakePort(), FakePort()
    room.add_leg("w", wide, "G722", "G722", payload_type=9)
    room.add_leg("n", narrow, "PCMU", "PCMU", payload_type=0)
    enc = make_encoder("G722")
    for i in range(6):
        wide.incoming.append(Frame(enc.encode(tone(400, 8000, 16000, 320, 320 * i)), 0))
        room.tick(0.02 * i)
    assert heard_level(narrow) > 2000
    assert wide.sent[-1][1] == 160 and len(wide.last) == 160          # G.722: 8000 Hz RTP clock


def test_set_codec_changes_encoder_at_next_tick() -> None:
    room, ports = g711_room(["a", "b"])
    one_tick(room, ports, {"a": 400})
    room.set_codec("b", "PCMA", "PCMA", 8)
    one_tick(room, ports, {"a": 400})
    pcm = make_decoder("PCMA").decode(ports["b"].last)
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 4000
    assert ports["b"].sent[-1][2] is True
    assert room.participants_snapshot()[1].encoder == "PCMA"


def test_leg_management_errors_and_removal() -> None:
    room, ports = g711_room(["a", "b"])
    with pytest.raises(ValueError):
        room.add_leg("a", FakePort(), "PCMU", "PCMU", payload_type=0)
    with pytest.raises(KeyError):
        room.set_muted("zz", True)
    with pytest.raises(ValueError):
        room.add_leg("x", FakePort(), "nope", "PCMU", payload_type=0)
    with pytest.raises(ValueError):
        Room("r", 44100)
    room.remove_leg("a")
    result = room.tick(0.0)
    assert [leg for leg, _ in result.outgoing] == ["b"] and "a" not in room and len(room) == 1


def test_dominant_speaker_leaving_is_reported() -> None:
    room, ports = g711_room(["a", "b"])
    for i in range(5):
        one_tick(room, ports, {"a": 400})
    room.remove_leg("a")
    assert DominantSpeakerChanged(None) in room.tick(0.2).events


def test_shared_streams_send_exactly_what_unshared_per_leg_encodes_send() -> None:
    names = ["a", "b", "c", "d", "e", "f"]
    rooms = []
    for shared in (True, False):
        room = Room("r", 8000, max_talkers=2, share_encodes=shared)
        ports = {n: FakePort() for n in names}
        for n in names:
            room.add_leg(n, ports[n], "PCMU", "PCMU", payload_type=0)
        room.set_output_gain("e", 4.0)
        room.set_muted("c", True)
        room.set_leg_source("f", PcmSource(tone(1200, 3000, samples=1600), 8000), mode="mix")
        rooms.append((room, ports))
    rng = np.random.default_rng(7)
    for i in range(8):
        loud = {"a": 300 + 10 * i, "b": 500, "c": 800, "d": 900 + 50 * i}
        pcm = {n: (tone(f, 3000 + 1000 * j) + rng.integers(-50, 50, 160)).astype(np.int16)
               for j, (n, f) in enumerate(loud.items())}
        for room, ports in rooms:
            for n, x in pcm.items():
                feed_pcmu(ports[n], x)
            room.tick(0.02 * i)
        for n in names:
            assert rooms[0][1][n].last == rooms[1][1][n].last
    assert len(rooms[0][0]._streams) < len(rooms[1][0]._streams) == len(names)


class LanePort(FakePort):
    """A port class with a send lane (as the socket adapter's LegPort has): the lane records
    what it was asked to send and hands each of its ports the payload."""

    class Lane:
        def __init__(self, ports: list[LanePort]) -> None:
            self.ports = ports
            self.sends = 0

        def send(self, payload: bytes, ticks: int, skip: set[int] | None = None) -> None:
            self.sends += 1
            for j, port in enumerate(self.ports):
                if not skip or j not in skip:
                    port.sent.append((payload, ticks, False))

    @staticmethod
    def tx_lane(ports: list[LanePort]) -> LanePort.Lane:
        return LanePort.Lane(ports)


def test_a_port_of_another_class_does_not_cost_the_others_their_send_lane() -> None:
    """A browser's port beside SIP callers' in one common stream: the callers keep their lane,
    and both groups get the same shared encode."""
    room = Room("r1", 8000)
    ports: dict[str, FakePort] = {f"sip{i}": LanePort() for i in range(3)}
    ports["browser"] = FakePort()
    for name, port in ports.items():
        room.add_leg(name, port, "PCMU", "PCMU", payload_type=0)
    for _ in range(3):
        room.tick(0.0)
    lanes = [group.lane for group in room._common if group.lane is not None]
    assert len(lanes) == 1 and lanes[0].sends == 3 and len(lanes[0].ports) == 3
    assert {ports[n].last for n in ports} == {ports["browser"].last}     # one encode, shared
