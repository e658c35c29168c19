"""Steady lanes (bridge/rtp/lanes.py) against the object path they stand in for.

Each receive test runs two identical sessions through the same packet stream, one popped as
``LegPort.pop_frame`` does (read the datagram, ``RtpSession.receive``, ``jitter.pop``), the
other through an ``RxLane``: the frames played, the counters, the RFC 3550 jitter and the jitter
buffer's own state must come out the same, tick for tick.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from bridge.rtp.jitter import Frame
from bridge.rtp.lanes import G711_LANE, LaneShape, RxLane, TxLane
from bridge.rtp.session import RtpSession

ADDR = ("127.0.0.1", 40000)


class _Reader:
    """Stands in for the socket adapter's reader: a queue of datagrams."""

    def __init__(self, session: RtpSession) -> None:
        self.session = session
        self.queue: list[tuple[bytes, tuple[str, int]]] = []
        self.ready = False
        self.held = False
        self.now = 0.0

    def recvfrom_into(self, buf: Any) -> tuple[int, Any]:
        data, addr = self.queue.pop(0)
        size = min(len(data), len(buf))
        buf[:size] = data[:size]
        self.ready = bool(self.queue)
        return size, addr

    def on_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.session.receive(data, addr, self.now)  # type: ignore[arg-type]

    def pop(self) -> Any:
        """LegPort.pop_frame: the flagged datagram first, then the jitter buffer."""
        if self.session._rx_lane is not None:
            self.session._rx_lane.release(self.session)
        if self.ready:
            self.ready = False
            data, addr = self.queue.pop(0)
            self.on_datagram(data, addr)
        return self.session.jitter.pop()

    def feed(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self.queue.append((data, addr))
        self.ready = True
        self.now = now

    def drain(self) -> None:
        """What BatchReceiver.drain does after the rooms: read what is left."""
        while self.queue:
            data, addr = self.queue.pop(0)
            self.on_datagram(data, addr)
        self.ready = False


def _session(pt: int = 0) -> RtpSession:
    return RtpSession(1234, pt, 8000, 160, 101, 8000, ADDR, jitter_min_ms=20, jitter_max_ms=200,
                      initial_seq=100, initial_ts=1000)


def _packet(seq: int, ts: int, payload: bytes, *, pt: int = 0, ssrc: int = 0xABCD, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq & 0xFFFF, ts & 0xFFFFFFFF,
                       ssrc) + payload


def _played(item: Any) -> Any:
    if isinstance(item, Frame):
        return ("frame", item.payload)
    return (type(item).__name__, getattr(item, "next_payload", None))


def _jb_state(s: RtpSession) -> dict[str, Any]:
    jb = s.jitter
    fields = ("_play", "_end_ts", "_last_played", "_prev_seq", "_prev_ts", "_seen_bits", "_seen_top",
              "_jitter", "_last_transit", "_window_min", "_window_pops", "_stall", "_missing_run",
              "received", "late", "lost", "concealed", "duplicates", "dropped", "resyncs")
    state = {name: getattr(jb, name) for name in fields}
    state["slots"] = dict(jb._slots)
    return state


def _run(stream: list[list[tuple[bytes, tuple[str, int]]]], *, legs: int = 1, share: float = 0.5,
         session: Callable[[int], RtpSession] = lambda j: _session(),
         jb_state: Callable[[RtpSession], dict[str, Any]] = _jb_state, shape: LaneShape = G711_LANE) -> None:
    """Feed the same per-tick datagrams to object-path and lane sessions; compare everything.
    ``session(j)`` makes leg j's session, ``jb_state`` reads the jitter buffer's state to compare
    (tests/unit/test_opus_lanes.py passes its Opus ones)."""
    ref = [session(j) for j in range(legs)]
    lane_s = [session(j) for j in range(legs)]
    ref_r = [_Reader(s) for s in ref]
    lane_r = [_Reader(s) for s in lane_s]
    # The readers keep their ``ready`` flag true while datagrams are queued: the recheck
    # (an epoll call in the adapter) has nothing to add.
    lane = RxLane(lane_s, lane_r, [r.pop for r in lane_r], recheck=lambda: None, shape=shape)
    entered = 0
    for tick, datagrams in enumerate(stream):
        now = 10.0 + tick * 0.02 + random.Random(tick).uniform(0, 0.004)
        for j in range(legs):
            for data, addr in datagrams:
                ref_r[j].feed(data, addr, now)
                lane_r[j].feed(data, addr, now)
        expected = [_played(r.pop()) for r in ref_r]
        rows, ok, results = lane.pop_all(now)
        got = [("frame", rows[j, :lane.out_len[j]].tobytes()) if ok[j] else _played(results[j])
               for j in range(legs)]
        assert got == expected, f"tick {tick}"
        entered += int(ok.sum())
        for r in [*ref_r, *lane_r]:
            r.drain()
    for s_ref, s_lane in zip(ref, lane_s):
        assert s_lane.stats() == s_ref.stats()        # stats() takes the lane's state back
        assert jb_state(s_lane) == jb_state(s_ref)
        src_a, src_b = s_lane._source, s_ref._source
        assert src_a is not None and src_b is not None
        fields = ("max_seq", "received", "jitter", "_transit", "_ts_high", "cycles")
        assert [getattr(src_a, f) for f in fields] == [getattr(src_b, f) for f in fields]
        assert s_lane.last_received == s_ref.last_received
    assert entered > share * len(stream) * legs, "the lane should have played its share of frames"


def _steady(count: int, start_seq: int = 5000, start_ts: int = 80000) -> list[list[tuple[bytes, tuple[str, int]]]]:
    return [[(_packet(start_seq + i, start_ts + 160 * i, bytes([i % 251]) * 160), ADDR)] for i in range(count)]


def test_steady_stream_plays_the_same_through_the_lane() -> None:
    _run(_steady(300), legs=3)


def test_buffered_depth_is_kept_and_the_shrink_window_still_closes() -> None:
    stream = _steady(200)
    # A burst: two ticks without packets, then three at once -> the buffer grows, later shrinks.
    stream[60], stream[61], stream[62] = [], [], stream[60] + stream[61] + stream[62]
    _run(stream)


def test_loss_reorder_duplicates_and_a_foreign_address_leave_and_reenter() -> None:
    stream = _steady(400)
    stream[50] = []                                     # lost
    stream[80], stream[81] = stream[81], stream[80]     # reordered
    stream[120] = stream[120] + stream[119]             # duplicate
    stream[150] = [(stream[150][0][0], ("127.0.0.1", 40002))] + stream[150]   # stray source
    stream[200] = [(stream[200][0][0][:100], ADDR)]     # truncated
    stream[250] = [(_packet(5250, 80000 + 160 * 250, bytes(160), marker=True), ADDR)]
    _run(stream)


def test_dtmf_ssrc_change_and_sequence_wrap() -> None:
    stream = _steady(300, start_seq=65500)              # wraps at tick 35
    event = struct.pack("!BBH", 5, 0x0A, 160)
    stream[100] = stream[100] + [(_packet(65500 + 100, 80000 + 160 * 100, event, pt=101), ADDR)]
    for i in range(200, 300):                           # the caller's phone restarts its stream
        stream[i] = [(_packet(7 + i, 999 + 160 * i, bytes([i % 7]) * 160, ssrc=0x5555), ADDR)]
    _run(stream)


def test_random_network_matches_the_object_path() -> None:
    rng = random.Random(7)
    stream: list[list[tuple[bytes, tuple[str, int]]]] = [[] for _ in range(400)]
    for i in range(380):
        if rng.random() < 0.03:
            continue                                    # lost
        delay = 0 if rng.random() < 0.9 else rng.randint(1, 4)
        stream[i + delay].append((_packet(300 + i, 7000 + 160 * i, bytes([i % 200]) * 160), ADDR))
    _run(stream, legs=2, share=0.3)     # 10% of packets late: the lane steps aside often


# -- send ---------------------------------------------------------------------------------------
class _Capture:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def __call__(self, data: Any, addr: tuple[str, int]) -> None:
        self.sent.append((bytes(data), addr))


def test_tx_lane_sends_what_packetize_would_and_hands_the_state_back() -> None:
    ref = [RtpSession(0x1000 + j, 8, 8000, 160, None, None, ADDR, initial_seq=65530 + j,
                      initial_ts=0xFFFFFF00) for j in range(3)]
    lane_s = [RtpSession(0x1000 + j, 8, 8000, 160, None, None, ADDR, initial_seq=65530 + j,
                         initial_ts=0xFFFFFF00) for j in range(3)]
    sinks = [_Capture() for _ in lane_s]
    lane = TxLane(lane_s, sinks)
    for tick in range(20):
        payload = bytes([tick]) * 160
        skip = {1} if tick in (5, 6) else None
        lane.send(payload, 160, skip)
        for j, s in enumerate(ref):
            if skip and j in skip:
                # The talker is routed elsewhere: its own packetize, in both worlds.
                other = payload[::-1]
                assert lane_s[j].packetize(other, 160) == s.packetize(other, 160)
                continue
            assert sinks[j].sent[-1] == (s.packetize(payload, 160), ADDR), f"tick {tick} leg {j}"
    for a, b in zip(lane_s, ref):
        lane.release(a)
        assert (a._seq, a._ts, a.packets_sent, a.octets_sent) == (b._seq, b._ts, b.packets_sent, b.octets_sent)
        assert a.rtcp_report(20.0)[:8] == b.rtcp_report(20.0)[:8]     # SR header, same state


def test_tx_lane_skips_held_addresses_and_survives_a_failing_socket() -> None:
    sessions = [RtpSession(j, 0, 8000, 160, None, None, addr)
                for j, addr in enumerate([ADDR, ("0.0.0.0", 4000), None, ADDR])]

    def broken(data: Any, addr: tuple[str, int]) -> None:
        raise OSError("EAGAIN")

    sink = _Capture()
    lane = TxLane(sessions, [broken, sink, sink, sink])
    lane.send(bytes(160), 160)
    assert [addr for _, addr in sink.sent] == [ADDR]     # only the last leg had somewhere to send
    assert np.all(lane.sent == 1)                          # every leg's stream advanced anyway


@pytest.mark.parametrize("legs", [1, 5])
def test_rx_lane_close_hands_every_session_back(legs: int) -> None:
    sessions = [_session() for _ in range(legs)]
    readers = [_Reader(s) for s in sessions]
    lane = RxLane(sessions, readers, [r.pop for r in readers])
    for i, datagrams in enumerate(_steady(20)):
        for r in readers:
            for data, addr in datagrams:
                r.feed(data, addr, 1.0 + i * 0.02)
        lane.pop_all(1.0 + i * 0.02)
    assert lane.member.all()
    lane.close()
    assert not lane.member.any()
    for s in sessions:
        assert s._rx_lane is None and s.packets_received == 20 and s.jitter.received == 19   # the probation packet is counted, not played


def test_arrivals_straddling_the_tick_stay_in_the_lane() -> None:
    """A caller whose packets arrive right at the tick: some ticks find none, the next two;
    the jitter buffer absorbs that with a frame of depth, and so must the lane."""
    stream = _steady(400)
    for i in range(20, 390, 5):
        stream[i + 1] = stream[i] + stream[i + 1]
        stream[i] = []
    _run(stream, share=0.8)


def test_a_long_burst_deeper_than_the_ring_leaves_the_lane_without_losing_a_frame() -> None:
    stream = _steady(300)
    for i in range(100, 120):                 # 20 ticks of silence, then all 20 packets at once
        stream[120] = stream[120] + stream[i]
        stream[i] = []
    _run(stream, share=0.25)     # after the burst the buffer is deeper than the ring for a while
