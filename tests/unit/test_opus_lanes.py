"""Opus callers in receive lanes (bridge/rtp/lanes.py, ``OPUS_LANE``) against the per-leg path.

The lane tests feed two identical Opus sessions the same datagrams, one popped as
``LegPort.pop_frame`` does, the other through an Opus ``RxLane``: payloads of every length, the
counters, the RFC 3550 jitter and the jitter buffer's whole state (its whole-packet slots, the
loss-depth delay) must come out the same tick for tick, through a lost packet, a reordered one,
a DTX gap, a loss burst, a marker bit, a payload too long for the lane and an empty one. The
room tests run a room reading Opus callers through lanes beside one reading them per leg: the
same decoded audio in the mixer, the same datagrams sent to every leg, the same decoder calls
(sleeping callers decoded only at the probes in both) and the same session counters.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import numpy as np
import pytest
from bridge_codecs import make_encoder
from bridge_codecs.opus import packet_is_inactive, packets_inactive

import bridge.media.room_ingress as ri
from bridge.media.ports import ListSink
from bridge.media.room import Room
from bridge.media.room_ingress import PROBE_TICKS
from bridge.rtp.jitter import _Slot
from bridge.rtp.lanes import OPUS_LANE, OPUS_WIDTH, RxLane, TxLane
from bridge.rtp.session import RtpSession
from tests.unit.test_lanes import ADDR
from tests.unit.test_lanes import _run as run_lanes
from tests.unit.test_opus_inactive import _spy
from tests.unit.test_opus_native import frames, voiced
from tests.unit.test_room_rates import _Port

PT = 111
Stream = list[list[tuple[bytes, tuple[str, int]]]]


def _session(j: int = 0) -> RtpSession:
    return RtpSession(0x4000 + j, PT, 48000, 960, 101, 48000, ADDR, jitter_min_ms=20, jitter_max_ms=200,
                      initial_seq=100, initial_ts=1000, loss_depth=True)


def _packet(seq: int, ts: int, payload: bytes, *, pt: int = PT, ssrc: int = 0xABCD,
            marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq & 0xFFFF, ts & 0xFFFFFFFF,
                       ssrc) + payload


def _jb_state(s: RtpSession) -> dict[str, Any]:
    jb = s.jitter
    fields = ("_play", "_end_ts", "_last_played", "_last_whole_ts", "_prev_seq", "_prev_ts", "_pkt_ticks",
              "_seen_bits", "_seen_top", "_jitter", "_last_transit", "_window_min", "_window_pops", "_stall",
              "_missing_run", "_grow", "_planned", "_grid", "_wait",
              "received", "late", "lost", "concealed", "duplicates", "dropped", "resyncs")
    state = {name: getattr(jb, name) for name in fields}
    state["delay"] = dict(vars(jb._delay)) if hasattr(jb._delay, "__dict__") else \
        {k: getattr(jb._delay, k) for k in jb._delay.__slots__}
    state["slots"] = {k: (v.timestamp, dict(v.pieces), v.filled) if isinstance(v, _Slot) else v
                      for k, v in jb._slots.items()}
    return state


def _payloads(count: int, seed: int) -> list[bytes]:
    """Opus packets of varying length (speech, then quiet), as a caller would send them."""
    enc = make_encoder("opus", bitrate=32000)
    x = np.concatenate([voiced(count * 0.01, f0=120.0 + 10 * seed),
                        (np.random.default_rng(seed).standard_normal(count * 480) * 30).astype(np.int16)])
    return [enc.encode(f) for f in frames(x)][:count]


def _run(stream: Stream, *, legs: int = 1, share: float = 0.5) -> None:
    """Feed the same per-tick datagrams to per-leg and lane sessions; compare everything."""
    run_lanes(stream, legs=legs, share=share, session=_session, jb_state=_jb_state, shape=OPUS_LANE)


def _steady(count: int, start_seq: int = 5000, start_ts: int = 80000) -> Stream:
    pays = _payloads(count, 1)
    return [[(_packet(start_seq + i, start_ts + 960 * i, pays[i]), ADDR)] for i in range(count)]


def test_opus_stream_of_varying_lengths_plays_the_same_through_the_lane() -> None:
    stream = _steady(200)
    assert len({len(d) for tick in stream for d, _ in tick}) > 10
    _run(stream, legs=3, share=0.9)


def test_loss_reorder_dtx_burst_and_odd_packets_leave_and_reenter() -> None:
    count = 400
    pays = _payloads(count, 2)
    stream: Stream = []
    seq_gap = 0
    for i in range(count):
        if 150 <= i < 165:          # DTX: nothing sent, then the sequence goes on, the timestamp jumps
            stream.append([])
            seq_gap += 1
            continue
        stream.append([(_packet(5000 + i - seq_gap, 80000 + 960 * i, pays[i]), ADDR)])
    stream[50] = []                                     # lost
    stream[80], stream[81] = stream[81], stream[80]     # reordered
    stream[120] = stream[120] + stream[119]             # duplicate
    for i in range(200, 206):                           # a loss burst
        stream[i] = []
    stream[230] = [(_packet(5230 - seq_gap, 80000 + 960 * 230, pays[230], marker=True), ADDR)]
    stream[250] = [(_packet(5250 - seq_gap, 80000 + 960 * 250, bytes([0x78]) * (OPUS_WIDTH + 1)), ADDR)]
    stream[270] = [(_packet(5270 - seq_gap, 80000 + 960 * 270, b""), ADDR)]          # empty payload
    stream[290] = [(stream[290][0][0], ("127.0.0.1", 40002))] + stream[290]          # stray source
    event = struct.pack("!BBH", 5, 0x0A, 960)
    stream[310] = stream[310] + [(_packet(5310 - seq_gap, 80000 + 960 * 310, event, pt=101), ADDR)]   # DTMF
    _run(stream, legs=2, share=0.8)


def test_random_network_matches_the_per_leg_path() -> None:
    rng = random.Random(11)
    pays = _payloads(400, 3)
    stream: Stream = [[] for _ in range(400)]
    for i in range(380):
        if rng.random() < 0.04:
            continue                                    # lost
        delay = 0 if rng.random() < 0.9 else rng.randint(1, 3)
        stream[i + delay].append((_packet(300 + i, 7000 + 960 * i, pays[i]), ADDR))
    _run(stream, legs=2, share=0.3)


def test_vad_flags_of_many_rows_are_the_scalar_ones() -> None:
    """packets_inactive (a lane's rows) says what packet_is_inactive says, packet by packet,
    for real packets and for random bytes under every TOC byte and length."""
    real = _payloads(100, 4)
    rng = np.random.default_rng(5)
    fake = [bytes(rng.integers(0, 256, int(rng.integers(0, 9))).tolist()) for _ in range(4000)]
    fake += [bytes([toc]) + bytes(rng.integers(0, 256, 3).tolist()) for toc in range(256)]
    packets = real + fake
    rows = np.zeros((len(packets), 600), np.uint8)
    for i, p in enumerate(packets):
        rows[i, :len(p)] = np.frombuffer(p, np.uint8)
    sizes = np.array([len(p) for p in packets], np.int64)
    assert packets_inactive(rows, sizes).tolist() == [packet_is_inactive(p) for p in packets]
    assert 10 < sum(map(packet_is_inactive, real)) < 90       # both kinds among the real ones


# -- a room -----------------------------------------------------------------------------------------
class _OpusLanePort(_Port):
    """The socket adapter's LegPort lanes for Opus callers (receive and send)."""

    @staticmethod
    def opus_rx_lane(ports: list[_OpusLanePort]) -> RxLane:
        return RxLane([p.session for p in ports], [p.reader for p in ports],
                      [p.pop_frame for p in ports], recheck=lambda: None, shape=OPUS_LANE)

    @staticmethod
    def tx_lane(ports: list[_OpusLanePort]) -> TxLane:
        return TxLane([p.session for p in ports], [p.sent for p in ports])


LEGS = 10


def _room_stream(ticks: int) -> list[list[list[bytes]]]:
    """Per tick, per leg: the datagrams that arrive. Legs 0 and 1 talk, the rest send room noise
    (inactive frames), with a loss (2), a reorder (3), a DTX gap (4), a loss burst (5), a
    marker bit (6) and two packets in one tick (7)."""
    talk = [_payloads(ticks, 10 + j)[: ticks // 2] for j in range(2)]
    enc = make_encoder("opus", bitrate=32000)
    out: list[list[list[bytes]]] = [[[] for _ in range(LEGS)] for _ in range(ticks + 2)]
    for j in range(LEGS):
        noise = (np.random.default_rng(j).standard_normal(ticks * 960) * 30).astype(np.int16)
        quiet = [enc.encode(f) for f in frames(noise)]
        pays = (talk[j] + quiet[len(talk[j]):]) if j < 2 else quiet
        gap = 0
        for i in range(ticks):
            if j == 4 and 60 <= i < 75:
                gap += 1
                continue
            if (j, i) == (2, 40) or (j == 5 and 90 <= i < 95):
                continue
            at = i
            if j == 3 and i in (50, 51):
                at = 101 - i                            # 50 and 51 swapped
            if j == 7 and i == 110:
                at = 111                                # arrives with the next one
            out[at][j].append(_packet(1000 + i - gap, 5000 + 960 * i, pays[i], ssrc=0x100 + j,
                                      marker=(j, i) == (6, 120)))
    return out


@pytest.mark.parametrize(("rate", "skip"), [(48000, True), (16000, True), (48000, False)])
def test_a_room_reads_opus_callers_through_lanes_as_the_per_leg_path(rate: int, skip: bool) -> None:
    """Besides the network events of _room_stream: a caller put on hold and back (out of the lane
    group and in again), one recorded for a while (awake every tick), one muted."""
    ticks = 160
    stream = _room_stream(ticks)
    worlds = []
    sinks = [ListSink(), ListSink()]
    for lanes in (True, False):
        room = Room("r", rate, max_talkers=3, skip_inactive=skip)
        ports: list[_Port] = []
        calls: list[list[tuple[str, bytes | None]]] = []
        for j in range(LEGS):
            s = RtpSession(0x5000 + j, PT, 48000, 960, 101, 48000, ("127.0.0.1", 41000 + j),
                           jitter_min_ms=20, jitter_max_ms=200, initial_seq=7, initial_ts=99, loss_depth=True)
            port = _OpusLanePort(s) if lanes else _Port(s)
            ports.append(port)
            room.add_leg(f"l{j}", port, "opus", "opus", payload_type=PT, encoder_opts={"bitrate": 32000})
        room.tick(0.98)
        for j in range(LEGS):
            calls.append(_spy(room, f"l{j}"))
        worlds.append((room, ports, calls))
    used_lane = 0
    for tick in range(ticks + 2):
        now = 1.0 + 0.02 * tick
        for w, (room, _, _) in enumerate(worlds):
            if tick in (30, 60):
                room.set_on_hold("l8", tick == 30)
            if tick == 20:
                room.add_leg_sink("l9", "track", sinks[w])
            if tick == 100:
                room.remove_leg_sink("l9", "track")
            if tick == 45:
                room.set_muted("l6", True)
        for (room, ports, _) in worlds:
            for j in range(LEGS):
                addr = ports[j].session.remote_addr
                assert addr is not None
                for data in stream[tick][j]:
                    ports[j].reader.feed(data, addr, now)
        results = [room.tick(now) for room, _, _ in worlds]
        for _, ports, _ in worlds:
            for p in ports:
                p.reader.drain()
        (fast, fports, _), (ref, rports, _) = worlds
        used_lane += sum(int(g.lane.member.sum()) for g in fast._opus if isinstance(g.lane, RxLane))
        held = ["l8"] if 30 <= tick < 60 else []
        assert fast._opus and not ref._opus and [leg.leg_id for leg in fast._other] == held
        n = fast.mixer.count
        np.testing.assert_array_equal(fast.mixer.present[:n], ref.mixer.present[:n], err_msg=str(tick))
        np.testing.assert_array_equal(fast.mixer.inputs[:n], ref.mixer.inputs[:n], err_msg=str(tick))
        np.testing.assert_array_equal(fast.mixer.contributors, ref.mixer.contributors, err_msg=str(tick))
        assert results[0].events == results[1].events, tick
        for pf, pr in zip(fports, rports):
            assert pf.sent.sent == pr.sent.sent, tick
    assert used_lane > 0.8 * LEGS * ticks, used_lane      # most frames were played by the lane
    assert worlds[0][2] == worlds[1][2]                   # the same decoder calls, in order
    quiet = [sum(1 for kind, _ in worlds[0][2][j] if kind == "decode") for j in range(2, LEGS - 2)]
    if skip:
        assert max(quiet) <= 2 * (ticks // PROBE_TICKS + 1) + 4, quiet     # sleeping: only the probes
    else:
        assert min(quiet) >= ticks - 20, quiet
    assert len(sinks[0].frames) == len(sinks[1].frames) > 70
    for a, b in zip(sinks[0].frames, sinks[1].frames):
        np.testing.assert_array_equal(a, b)
    for pf, pr in zip(worlds[0][1], worlds[1][1]):
        assert pf.session.stats() == pr.session.stats()
        assert _jb_state(pf.session) == _jb_state(pr.session)


def test_sleeping_callers_in_a_lane_cost_no_python_per_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers sending inactive frames stay asleep through array operations alone: once the lane
    holds them, the room builds a payload object (``LanePayload``, the per-leg decode's input)
    only for the probe of the tick, at most one leg in PROBE_TICKS, and none is decoded else."""
    ticks = 80
    room = Room("r", 48000, max_talkers=3)
    ports = []
    enc = make_encoder("opus", bitrate=32000)
    noise = (np.random.default_rng(3).standard_normal(ticks * 960) * 30).astype(np.int16)
    quiet = [enc.encode(f) for f in frames(noise)]
    assert all(packet_is_inactive(p) for p in quiet[5:])
    calls: list[list[tuple[str, bytes | None]]] = []
    for j in range(LEGS):
        s = RtpSession(0x6000 + j, PT, 48000, 960, 101, 48000, ("127.0.0.1", 42000 + j), loss_depth=True)
        ports.append(_OpusLanePort(s))
        room.add_leg(f"l{j}", ports[j], "opus", "opus", payload_type=PT)
    room.tick(0.98)
    for j in range(LEGS):
        calls.append(_spy(room, f"l{j}"))
    built: list[int] = []
    original = ri.LanePayload

    class Counting(original):  # type: ignore[misc, valid-type]
        def __init__(self, payload: bytes) -> None:
            built[-1] += 1
            super().__init__(payload)

    monkeypatch.setattr(ri, "LanePayload", Counting)
    for i in range(ticks):
        now = 1.0 + 0.02 * i
        for j, port in enumerate(ports):
            port.reader.feed(_packet(10 + i, 960 * i, quiet[i], ssrc=j), ("127.0.0.1", 42000 + j), now)
        built.append(0)
        room.tick(now)
        for port in ports:
            port.reader.drain()
    lane = room._opus[0].lane
    assert isinstance(lane, RxLane) and lane.member.all()
    assert max(built[10:]) <= 1 and sum(built[10:]) >= LEGS    # the probes, one leg a tick at most
    decodes = sum(1 for leg in calls for kind, _ in leg if kind == "decode")
    assert decodes <= 2 * sum(built) + 6 * LEGS, decodes       # a probe: the skipped frame, then its own
