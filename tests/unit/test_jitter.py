"""Adaptive jitter buffer, driven by a simulated 20 ms clock."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.rtp import Empty, Frame, JitterBuffer, Missing, PlayoutItem

FRAME = 160          # 20 ms at 8 kHz
Packet = tuple[int, int, bytes, float]   # seq, ts, payload, arrival


def payload(seq: int, size: int = 160) -> bytes:
    return bytes([seq % 256]) * size


def stream(count: int, start_seq: int = 0, start_ts: int = 0, t0: float = 0.0,
           delay: Iterable[float] | None = None, skip: frozenset[int] | set[int] = frozenset()) -> list[Packet]:
    delays = iter(delay) if delay is not None else None
    out = []
    for i in range(count):
        arrival = t0 + 0.02 * i + (next(delays) if delays else 0.0)
        if i not in skip:
            out.append((start_seq + i, start_ts + FRAME * i, payload(start_seq + i), arrival))
    return out


class Sim:
    """Delivers packets by arrival time and pops once per 20 ms tick (at t0 + 0.02k + 0.01)."""

    def __init__(self, jb: JitterBuffer, t0: float = 0.0) -> None:
        self.jb, self.t0, self.k = jb, t0, 0
        self.pending: list[Packet] = []

    def add(self, packets: list[Packet]) -> None:
        self.pending = sorted(self.pending + packets, key=lambda p: p[3])

    def tick(self) -> PlayoutItem:
        now = self.t0 + 0.02 * self.k + 0.01
        self.k += 1
        while self.pending and self.pending[0][3] <= now:
            self.jb.put(*self.pending.pop(0))
        return self.jb.pop()


def run(jb: JitterBuffer, packets: list[Packet], ticks: int, t0: float = 0.0) -> list[PlayoutItem]:
    sim = Sim(jb, t0)
    sim.add(packets)
    return [sim.tick() for _ in range(ticks)]


def frames(items: Sequence[PlayoutItem]) -> list[int]:
    return [it.payload[0] for it in items if isinstance(it, Frame)]


def test_in_order_stream_plays_everything_with_min_delay() -> None:
    jb = JitterBuffer(8000, FRAME)
    assert jb.pop() == Empty()
    items = run(jb, stream(50), 50)
    assert isinstance(items[0], Frame) and items[0].timestamp == 0
    assert frames(items) == list(range(50))
    assert jb.lost == 0 and jb.late == 0 and jb.target_delay_ms == 20


def test_reordering_within_delay_is_repaired() -> None:
    jb = JitterBuffer(8000, FRAME, min_delay_ms=60)
    pkts = stream(30)
    # Swap arrival of 10 and 11 and of 20 and 22.
    pkts[10], pkts[11] = (10, 1600, payload(10), pkts[11][3]), (11, 1760, payload(11), pkts[10][3])
    pkts[20], pkts[22] = (20, 3200, payload(20), pkts[22][3]), (22, 3520, payload(22), pkts[20][3])
    items = run(jb, pkts, 40)
    assert frames(items) == list(range(30))
    assert jb.lost == 0


def test_loss_gives_missing_with_next_payload() -> None:
    jb = JitterBuffer(8000, FRAME, min_delay_ms=60)
    items = run(jb, stream(20, skip={7}), 25)
    played = [it for it in items if not isinstance(it, Empty)]
    idx = next(i for i, it in enumerate(played) if isinstance(it, Missing))
    assert played[idx] == Missing(payload(8))
    assert frames(played[:idx]) == list(range(7)) and frames(played[idx:]) == list(range(8, 20))
    assert jb.lost == 1


def test_loss_at_min_delay_conceals_once_without_adding_delay() -> None:
    jb = JitterBuffer(8000, FRAME)
    items = run(jb, stream(20, skip={5}), 20)
    assert items[5] == Missing(None)              # nothing buffered yet: stall
    assert isinstance(items[6], Frame) and items[6].payload[0] == 6   # skipped, same delay
    assert frames(items) == [i for i in range(20) if i != 5]
    assert jb.lost == 1


def test_duplicates_dropped_and_counted() -> None:
    jb = JitterBuffer(8000, FRAME, min_delay_ms=40)
    pkts = stream(10)
    pkts += [(3, 480, payload(3), pkts[3][3] + 0.001), (4, 640, payload(4), 0.5)]
    items = run(jb, pkts, 30)
    assert frames(items) == list(range(10))
    assert jb.duplicates == 2 and jb.received == 12


def test_duplicate_window_remembers_the_last_512_sequence_numbers() -> None:
    """Duplicate detection is a bit window below the highest sequence number seen: a
    reordered packet is new, a repeat inside the window is a duplicate, the window slides."""
    from bridge.rtp.jitter import SEEN_WINDOW
    jb = JitterBuffer(8000, FRAME, min_delay_ms=40, max_delay_ms=2000)
    for seq in (10, 12, 11):                 # 11 arrives after 12: reordered, not a duplicate
        jb.put(seq, seq * FRAME, b"", 0.0)
    assert jb.duplicates == 0
    for seq in (10, 11, 12):
        jb.put(seq, seq * FRAME, b"", 0.0)
    assert jb.duplicates == 3
    jb.put(12 + SEEN_WINDOW - 1, 0, b"", 0.0)   # 12 is now the oldest number in the window
    jb.put(12, 12 * FRAME, b"", 0.0)
    assert jb.duplicates == 4
    jb.put(12 + SEEN_WINDOW, 0, b"", 0.0)       # 12 has left the window: no longer known
    jb.put(12, 12 * FRAME, b"", 0.0)
    assert jb.duplicates == 4
    jb.put(100_000, 0, b"", 0.0)                # a jump forward forgets everything before it
    jb.put(12 + SEEN_WINDOW, 0, b"", 0.0)
    assert jb.duplicates == 4


def test_late_packet_discarded() -> None:
    jb = JitterBuffer(8000, FRAME, min_delay_ms=40)
    pkts = stream(20)
    pkts[5] = (5, 800, payload(5), 0.5)         # arrives ~400 ms late
    items = run(jb, pkts, 30)
    assert 5 not in frames(items)
    assert jb.late == 1 and jb.lost == 1


def test_resync_on_timestamp_jump() -> None:
    jb = JitterBuffer(8000, FRAME)
    first = stream(10)
    # Same SSRC, timestamps jump 30 s ahead (e.g. a sender restarting its clock).
    second = stream(10, start_seq=10, start_ts=8000 * 30, t0=0.2)
    items = run(jb, first + second, 25)
    assert frames(items) == list(range(20))
    assert jb.resyncs == 1
    last = max(i for i, it in enumerate(items) if isinstance(it, Frame))
    assert sum(isinstance(it, Missing) for it in items[:last]) <= 1


def test_resync_on_backward_jump() -> None:
    jb = JitterBuffer(8000, FRAME)
    items = run(jb, stream(10, start_ts=8000 * 100) + stream(10, start_seq=10, start_ts=0, t0=0.2), 25)
    assert frames(items) == list(range(20)) and jb.resyncs == 1 and jb.late == 0


def test_goes_empty_after_stream_stops_and_restarts_on_new_talkspurt() -> None:
    jb = JitterBuffer(8000, FRAME, max_missing=5)
    # Talkspurt, 2 s silence (timestamps keep running), talkspurt.
    pkts = stream(10) + stream(10, start_seq=10, start_ts=FRAME * 110, t0=2.2)
    items = run(jb, pkts, 130)
    kinds = [type(it).__name__ for it in items]
    assert kinds[10:15] == ["Missing"] * 5
    assert set(kinds[15:110]) == {"Empty"}
    assert frames(items) == list(range(20))
    assert jb.resyncs == 0 and jb.late == 0


def test_straggler_after_idle_is_late_not_a_restart() -> None:
    jb = JitterBuffer(8000, FRAME)
    items = run(jb, stream(10) + [(3, 480, payload(3), 1.0)], 60)
    assert frames(items) == list(range(10)) and jb.duplicates == 1
    jb2 = JitterBuffer(8000, FRAME)
    items = run(jb2, stream(10, skip={4}) + [(4, 640, payload(4), 1.0)], 60)
    assert 4 not in frames(items) and jb2.late == 1


def test_adaptive_delay_grows_under_jitter_then_shrinks() -> None:
    rng = random.Random(7)
    jb = JitterBuffer(8000, FRAME, min_delay_ms=20, max_delay_ms=200)
    sim = Sim(jb)
    assert jb.target_delay_ms == 20
    # 12 s with up to 80 ms of random network delay, then 15 s of a smooth network.
    sim.add(stream(600, delay=[rng.uniform(0.0, 0.08) for _ in range(600)]))
    sim.add(stream(750, start_seq=600, start_ts=FRAME * 600, t0=12.0, delay=[0.005] * 750))
    warmup = [sim.tick() for _ in range(500)]
    assert jb.target_delay_ms >= 60
    late_before = jb.late
    depths, settled = [], []
    for _ in range(100):
        settled.append(sim.tick())
        depths.append(jb.depth_ms)
    assert jb.late - late_before <= 3                  # adapted: hardly any late packets
    assert sum(isinstance(it, Frame) for it in settled) >= 95
    jittery_depth = sum(depths) / len(depths)
    assert jittery_depth >= 40
    smooth = [sim.tick() for _ in range(750)]
    assert jb.target_delay_ms == 20
    assert jb.depth_ms <= 40 < jittery_depth
    assert all(isinstance(it, Frame) for it in smooth[-100:])
    assert len(warmup) == 500


def test_max_delay_caps_target() -> None:
    rng = random.Random(3)
    jb = JitterBuffer(8000, FRAME, min_delay_ms=20, max_delay_ms=80)
    run(jb, stream(300, delay=[rng.uniform(0.0, 0.4) for _ in range(300)]), 320)
    assert jb.target_delay_ms == 80


def test_bounded_memory_under_a_flood() -> None:
    jb = JitterBuffer(8000, FRAME)
    for i in range(5000):
        jb.put(i, i * FRAME, payload(i), 0.0)
    assert len(jb._slots) <= jb._resync_ticks // FRAME + 1


def test_byte_codec_10ms_packets_merged_into_20ms_frames() -> None:
    jb = JitterBuffer(8000, FRAME, bytes_per_tick=1)
    pkts = [(i, 80 * i, bytes([i]) * 80, 0.01 * i) for i in range(20)]
    items = run(jb, pkts, 10)
    got = [it for it in items if isinstance(it, Frame)]
    assert [f.payload for f in got] == [bytes([2 * k]) * 80 + bytes([2 * k + 1]) * 80 for k in range(len(got))]
    assert len(got) >= 9 and all(f.timestamp == FRAME * k for k, f in enumerate(got))


def test_byte_codec_30ms_packets_split_into_20ms_frames() -> None:
    jb = JitterBuffer(8000, FRAME, bytes_per_tick=1)
    data = bytes(range(256)) * 40
    pkts = [(i, 240 * i, data[240 * i:240 * (i + 1)], 0.03 * i) for i in range(20)]
    items = run(jb, pkts, 30)
    got = [it for it in items if isinstance(it, Frame)]
    assert b"".join(f.payload for f in got) == data[:160 * len(got)]
    assert len(got) >= 28 and jb.lost == 0


def test_byte_codec_partial_slot_is_concealed() -> None:
    jb = JitterBuffer(8000, FRAME, min_delay_ms=60, bytes_per_tick=1)
    pkts = [(i, 80 * i, bytes([i]) * 80, 0.01 * i) for i in range(20) if i != 5]
    items = [it for it in run(jb, pkts, 15) if not isinstance(it, Empty)]
    assert items[2] == Missing(bytes([6]) * 80 + bytes([7]) * 80)


def test_long_non_byte_packets_emit_once_then_empty() -> None:
    jb = JitterBuffer(48000, 960)          # opus, 20 ms frames
    pkts = [(i, 1920 * i, b"op%d" % i, 0.04 * i) for i in range(10)]   # 40 ms packets
    items = run(jb, pkts, 20)
    # The first packet's length is unknown until the second arrives: one stall.
    kinds = [type(it).__name__ for it in items[:19]]
    assert kinds == ["Frame", "Missing"] + ["Frame", "Empty"] * 8 + ["Frame"]
    assert [it.payload for it in items if isinstance(it, Frame)] == [b"op%d" % i for i in range(10)]
    assert jb.lost == 0


def test_buffered_span_of_two_resync_windows_plays_out_then_idles() -> None:
    jb = JitterBuffer(8000, FRAME, bytes_per_tick=1)
    for seq, slot, size in ((2295, 295, 160), (1247, 247, 240), (2338, 338, 160)):
        jb.put(seq, slot * FRAME, b"\x01" * size, 0.01)
    items = [jb.pop() for _ in range(2 * jb._resync_ticks // FRAME + 10)]
    assert [i.timestamp // FRAME for i in items if isinstance(i, Frame)][:2] == [247, 295]
    assert items[-1] == Empty()


def test_reset_forgets_stream() -> None:
    jb = JitterBuffer(8000, FRAME)
    run(jb, stream(5), 3)
    jb.reset()
    assert jb.pop() == Empty() and not jb.playing
    items = run(jb, stream(5, start_seq=0, start_ts=999), 5)
    assert frames(items) == list(range(5))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-3, 400), st.integers(0, 2)), max_size=120),
       st.booleans())
def test_random_traffic_never_breaks_invariants(ops: list[tuple[int, int, int]], split: bool) -> None:
    """Any mix of puts (reordered, duplicated, far jumps) and pops keeps the contract."""
    jb = JitterBuffer(8000, FRAME, bytes_per_tick=1 if split else None)
    t = 0.0
    for kind, slot, size in ops:
        t += 0.01
        if kind == 0:
            assert isinstance(jb.pop(), (Frame, Missing, Empty))
        else:
            ts = slot * FRAME if kind < 3 else slot * FRAME * 1000    # kind 3: big jumps
            jb.put(slot + 1000 * kind, ts, b"\x01" * (80 * (size + 1)), t)
        assert len(jb._slots) <= jb._resync_ticks // FRAME + 2
    # Before playout starts, packets are kept within the resync window on either side of the
    # grid, so what is buffered can span two windows (found by hypothesis: 247, 295, 338).
    items = [jb.pop() for _ in range(2 * jb._resync_ticks // FRAME + 10)]
    assert items[-1] == Empty()
