"""G.711 legs in 8, 16 and 48 kHz rooms: the array paths (bulk decode, one product resampling
all rows, the talker matrix, shared encodes) against the per-leg reference path, tick for tick,
on the same input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bridge.media.room import Room
from bridge.rtp.jitter import Frame, Missing
from bridge.rtp.lanes import RxLane, TxLane
from bridge.rtp.session import RtpSession
from bridge_codecs import make_encoder
from tests.unit.test_lanes import _Capture, _packet, _Reader
from tests.unit.test_room import FakePort

# Per leg and tick: F = frame, M = Missing (concealed), E = nothing, S = short frame.
PATTERNS = ["FFFFFFFFFFFFFFFF", "FFFMFFFFMMFFFFFF", "FFMMFFFFFMFFEEFF", "FFFFEEFFFMFFFFFF",
            "FSFFFFSFFMFFFFFF", "MFFFFFFFFFFMFFFF"]


def assert_same_tick(fast: Room, ref: Room, results: list[Any], tick: int) -> None:
    """The array path (``fast``) and the per-leg reference (``ref``) after the same tick: mixer
    inputs and levels, contributors, every packet, events and listings all equal."""
    n = fast.mixer.count
    np.testing.assert_array_equal(fast.mixer.present[:n], ref.mixer.present[:n], err_msg=str(tick))
    np.testing.assert_array_equal(fast.mixer.given_level[:n], ref.mixer.given_level[:n], err_msg=str(tick))
    np.testing.assert_array_equal(fast.mixer.inputs[:n], ref.mixer.inputs[:n], err_msg=str(tick))
    np.testing.assert_array_equal(fast.mixer.contributors, ref.mixer.contributors, err_msg=str(tick))
    assert results[0].outgoing == results[1].outgoing, tick
    assert results[0].events == results[1].events, tick
    assert fast.participants_snapshot() == ref.participants_snapshot()


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
    room.set_output_gain("leg1", -6.0)       # talkers with their own output gain
    room.set_output_gain("leg7", 4.0)
    return room, ports, codec


@pytest.mark.parametrize("max_talkers", [0, 3])
@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_array_path_equals_per_leg_path_tick_for_tick(rate: int, max_talkers: int) -> None:
    rooms = [build(rate, bulk, max_talkers) for bulk in (True, False)]
    encs = {c: make_encoder(c) for c in ("PCMU", "PCMA")}
    names = list(rooms[0][1])
    most = 0
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
            assert fast._bulk and all((g.stage is not None) == (rate != 8000) for g in fast._bulk)
            assert not ref._bulk
        talking = len(fast.mixer.contributors)
        most = max(most, talking)
        assert_same_tick(fast, ref, results, tick)
    assert most >= (max_talkers or 5)       # several talkers at once: the talker matrix ran


# -- through the steady lanes ----------------------------------------------------------------------
class _Port:
    """A LegPort without sockets: datagrams from a queue (tests/unit/test_lanes.py's reader),
    sends captured. ``lanes`` gives the class the rx_lane/tx_lane factories a room looks for."""

    def __init__(self, session: RtpSession) -> None:
        self.session = session
        self.reader = _Reader(session)
        self.sent = _Capture()

    def pop_frame(self) -> Any:
        return self.reader.pop()

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        datagram = self.session.packetize(payload, ticks, marker)
        assert self.session.remote_addr is not None
        self.sent(datagram, self.session.remote_addr)
        return datagram


class _LanePort(_Port):
    @staticmethod
    def rx_lane(ports: list[_LanePort]) -> RxLane:
        return RxLane([p.session for p in ports], [p.reader for p in ports],
                      [p.pop_frame for p in ports], recheck=lambda: None)

    @staticmethod
    def tx_lane(ports: list[_LanePort]) -> TxLane:
        return TxLane([p.session for p in ports], [p.sent for p in ports])


@pytest.mark.parametrize("rate", [16000, 48000])
def test_lanes_in_a_wideband_room_equal_the_per_leg_path(rate: int) -> None:
    """Real RtpSessions fed the same datagrams (in order, a loss, a reorder, a late burst):
    a room reading and sending through lanes and the per-leg reference room put the same
    packets on the wire, tick for tick, and end with the same session counters."""
    worlds = []
    for lanes in (True, False):
        room = Room("r", rate, max_talkers=3, bulk=lanes)
        ports: list[_Port] = []
        for j in range(12):
            s = RtpSession(0x5000 + j, 0, 8000, 160, 101, 8000, ("127.0.0.1", 41000 + j),
                           jitter_min_ms=20, jitter_max_ms=200, initial_seq=7, initial_ts=99)
            port = _LanePort(s) if lanes else _Port(s)
            ports.append(port)
            room.add_leg(f"l{j}", port, "PCMU", "PCMU", payload_type=0)
        worlds.append((room, ports))
    enc = make_encoder("PCMU")
    used_lane = 0
    for tick in range(60):
        now = 1.0 + 0.02 * tick
        for j in range(12):
            if (j, tick) in ((3, 20), (4, 30)):
                continue                                   # lost (leg 4: sent late, below)
            seq = tick if (j, tick) != (5, 40) else 41      # leg 5: 40 and 41 swapped
            seq = 40 if (j, tick) == (5, 41) else seq
            payload = enc.encode(voice(j, seq, loud=j < 4))
            data = _packet(1000 + seq, 5000 + 160 * seq, payload, ssrc=0x100 + j)
            for _, ports in worlds:
                addr = ports[j].session.remote_addr
                assert addr is not None
                ports[j].reader.feed(data, addr, now)
                if (j, tick) == (4, 33):
                    late = _packet(1030, 5000 + 160 * 30, enc.encode(voice(j, 30, True)), ssrc=0x104)
                    ports[j].reader.feed(late, addr, now)
        for room, ports in worlds:
            room.tick(now)
            for p in ports:
                p.reader.drain()
        fast, ref = worlds
        used_lane += sum(int(g.lane.member.sum()) for g in fast[0]._bulk if g.lane is not None)
        assert all(g.lane is not None for g in fast[0]._common)
        for pf, pr in zip(fast[1], ref[1]):
            assert pf.sent.sent == pr.sent.sent, tick
        np.testing.assert_array_equal(fast[0].mixer.inputs[:12], ref[0].mixer.inputs[:12], err_msg=str(tick))
    assert used_lane > 0.8 * 12 * 60, used_lane      # most frames were played by the lane
    for pf, pr in zip(worlds[0][1], worlds[1][1]):
        assert pf.session.stats() == pr.session.stats()


# -- quiet rows: measured at 8 kHz, resampled only when they may be mixed ---------------------------
# Per leg and tick: L = loud voice, q = background noise (about -70 dBov), z = digital silence,
# M = Missing (concealed), E = nothing. Quiet and silent stretches longer than the gate's hangover
# (15 ticks) close it; the rows then become talkers again, so a skipped stretch must leave the
# resampler history exactly where the per-leg resampler has it.
SCRIPTS = ["LLLLLLLLLLqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "zzzzzLLLLLzzzzzzzzzzzzzzzzzzzzLLLLqqqqqq",
           "qqqqqqqqLLLLqqqqqqqqqqqqqqqqqqqqqLLLLLLL", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
           "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "qqqMqqqqEEqqLLLMLLqqqqqqqqqqqqqqqqqMqqLL",
           "zzzzzzzzzzzzLqzqzqzqzzzzzzzzzzzzzzzzzzzz", "LLLLLqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"]


def noise(seed: int, tick: int) -> np.ndarray:
    return np.random.default_rng(seed * 1000 + tick).normal(0, 8, 160).round().astype(np.int16)


class _Sink:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, pcm: np.ndarray, rate: int) -> None:
        self.frames.append(pcm.tobytes())


@pytest.mark.parametrize("max_talkers", [0, 2])
@pytest.mark.parametrize("rate", [16000, 48000])
def test_quiet_rows_skip_resampling_exactly_as_the_per_leg_path(rate: int, max_talkers: int) -> None:
    worlds = []
    for bulk in (True, False):
        room = Room("r", rate, max_talkers=max_talkers, bulk=bulk)
        ports = {f"q{i}": FakePort() for i in range(24)}
        for name, port in ports.items():
            room.add_leg(name, port, "PCMU", "PCMU", payload_type=0)
        sink = _Sink()
        room.add_leg_sink("q4", "rec", sink)          # a quiet leg recorded on its own
        room.set_whisper("q3", ["q0"])                # a silent supervisor whispering
        worlds.append((room, ports, sink))
    enc = make_encoder("PCMU")
    names = list(worlds[0][1])
    skipped = rendered_after_skip = 0
    was_skipped: set[str] = set()
    for tick in range(40):
        if tick == 25:
            for room, _, _ in worlds:
                room.set_whisper("q3", None)
                room.remove_leg_sink("q4", "rec")
        items: dict[str, Any] = {}
        for i, n in enumerate(names):
            kind = SCRIPTS[i % len(SCRIPTS)][tick]
            pcm = voice(i, tick, loud=True) if kind == "L" else (
                noise(i, tick) if kind == "q" else np.zeros(160, np.int16))
            items[n] = {"M": Missing(None), "E": None}.get(kind, Frame(enc.encode(pcm), 0))
        results = []
        for room, ports, _ in worlds:
            for n in names:
                if items[n] is not None:
                    ports[n].incoming.append(items[n])
            results.append(room.tick(0.02 * (tick + 1)))
        fast, ref = worlds[0][0], worlds[1][0]
        assert_same_tick(fast, ref, results, tick)
        for i, name in enumerate(names):
            slot = fast._legs[name].slot
            row = fast.mixer.inputs[slot]
            if fast.mixer.present[slot] and not row.any() and SCRIPTS[i % len(SCRIPTS)][tick] == "q":
                skipped += 1                          # noise in, nothing rendered
                was_skipped.add(name)
            elif name in was_skipped and fast.mixer.is_contributor(slot):
                rendered_after_skip += 1
        if tick < 25:
            # The whisperer's and the recorded leg's inputs are rendered although the gate is shut.
            assert not fast.mixer.is_contributor(fast._legs["q4"].slot)
            assert fast.mixer.inputs[fast._legs["q4"].slot].any(), tick
    assert skipped > 100 and rendered_after_skip > 10, (skipped, rendered_after_skip)
    assert worlds[0][2].frames == worlds[1][2].frames and len(worlds[0][2].frames) == 25
    assert sum(any(f) for f in worlds[0][2].frames) > 20     # the recording is not silence


def test_a_quiet_row_that_turns_loud_is_resampled_with_its_true_history() -> None:
    """Against an independent per-leg resampler fed every frame: a leg skipped for many ticks
    (noise under the gate) is, once it talks, the continuous resampled signal."""
    from bridge_codecs import make_decoder
    from bridge_codecs.resample import Resampler
    room = Room("r", 16000, max_talkers=0)
    port = FakePort()
    room.add_leg("a", port, "PCMU", "PCMU", payload_type=0)
    for j in range(3):
        room.add_leg(f"b{j}", FakePort(), "PCMU", "PCMU", payload_type=0)
    enc, dec, res = make_encoder("PCMU"), make_decoder("PCMU"), Resampler(8000, 16000)
    loud = 0
    for tick in range(40):
        pcm = noise(3, tick) if tick < 30 else voice(1, tick, loud=True)
        payload = enc.encode(pcm)
        port.incoming.append(Frame(payload, 0))
        room.tick(0.02 * (tick + 1))
        expect = res.process(dec.decode(payload))
        row = room.mixer.inputs[room._legs["a"].slot]
        if room.mixer.is_contributor(room._legs["a"].slot):
            np.testing.assert_array_equal(row, expect, err_msg=str(tick))
            loud += 1
        else:
            assert not row.any(), tick
    assert loud == 10
