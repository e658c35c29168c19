"""The jitter buffer's delay rule: one frame on a clean network, grown by late packets only,
decayed slowly; Opus legs hold a frame more only while they see losses (FEC lookahead)."""

from __future__ import annotations

import random

from bridge.rtp import Frame, JitterBuffer, Missing, PlayoutItem

from .test_jitter import FRAME, Sim, payload, stream


def _played_at(items: list[PlayoutItem]) -> dict[int, int]:
    """Packet number -> tick it played at."""
    return {it.timestamp // FRAME: k for k, it in enumerate(items) if isinstance(it, Frame)}


def test_clean_network_plays_each_packet_at_the_first_tick_after_it_arrives() -> None:
    rng = random.Random(1)
    jb = JitterBuffer(8000, FRAME)
    sim = Sim(jb)
    # Arrivals 1-9 ms before the tick with a little jitter (J ~ 1 ms): still one frame.
    sim.add(stream(200, delay=[0.001 + rng.uniform(0.0, 0.008) for _ in range(200)]))
    items = [sim.tick() for _ in range(200)]
    assert all(_played_at(items)[i] == i for i in range(200))
    assert jb.target_delay_ms == 20 and jb.late == 0 and jb.concealed == 0 and jb.dropped == 0


def test_one_late_packet_grows_the_delay_by_a_frame_then_it_decays_and_shrinks() -> None:
    jb = JitterBuffer(8000, FRAME)
    sim = Sim(jb)
    delays = [0.005] * 400
    delays[50] = 0.018              # misses its tick by 3 ms
    sim.add(stream(400, delay=delays))
    items = [sim.tick() for _ in range(400)]
    assert isinstance(items[50], Missing) and items[50].next_payload is None    # the stall
    at = _played_at(items)
    assert at[50] == 51 and at[60] == 61                # the delay grew by one frame...
    assert jb.target_delay_ms == 20 and at[250] == 250  # ...and is back to one after a few seconds
    assert jb.dropped == 1 and jb.lost == 0 and jb.concealed == 1


def test_delay_decays_more_slowly_after_it_had_to_grow_again() -> None:
    jb = JitterBuffer(8000, FRAME)
    sim = Sim(jb)
    # A packet every 2.5 s misses its tick: each decay comes too early, so the hold doubles.
    delays = [0.018 if i % 125 == 60 else 0.005 for i in range(1500)]
    sim.add(stream(1500, delay=delays))
    items = [sim.tick() for _ in range(1500)]
    grows = sum(isinstance(it, Missing) for it in items)
    assert grows <= 4 < 1500 // 125     # most late packets found the delay already grown
    assert jb.target_delay_ms == 40 and jb._delay.hold > 2


def test_reordering_grows_the_delay_so_the_next_reordered_packet_is_in_time() -> None:
    jb = JitterBuffer(8000, FRAME)
    pkts = stream(300, delay=[0.002] * 300)
    for a in (40, 100, 160):        # packet a arrives after a + 1 was played in its place
        pkts[a] = (a, a * FRAME, payload(a), pkts[a][3] + 0.035)
    sim = Sim(jb)
    sim.add(pkts)
    items = [sim.tick() for _ in range(300)]
    at = _played_at(items)
    assert 40 not in at and jb.late == 1 and jb.lost == 1   # concealed, then it came: too late
    assert items[100] == items[101] == Missing(None)        # the next one is waited for a frame more
    assert at[100] == 102 and at[101] == 103 and 160 in at  # and played; so is the third
    assert jb.target_delay_ms == 20                          # 2.8 clean seconds later: decayed


def _opus_run(lost: set[int], count: int, loss_depth: bool) -> tuple[JitterBuffer, list[PlayoutItem]]:
    jb = JitterBuffer(48000, 960, loss_depth=loss_depth)
    sim = Sim(jb)
    sim.add([(i, 960 * i, b"op%d" % i, 0.02 * i + 0.005) for i in range(count) if i not in lost])
    return jb, [sim.tick() for _ in range(count)]


def test_opus_leg_holds_a_frame_while_it_sees_losses_so_fec_is_there() -> None:
    lost = set(range(30, 400, 10))      # 10 % loss until 4 s, then clean
    jb, items = _opus_run(lost, 700, True)
    gaps = [it for it in items if isinstance(it, Missing)]
    # The first loss stalls once (no successor yet), then every gap has its successor (FEC).
    assert gaps[0].next_payload is None and gaps[1].next_payload == b"op31"
    assert all(g.next_payload is not None for g in gaps[1:]) and len(gaps) == len(lost) + 1
    assert jb.lost == len(lost) and jb.target_delay_ms == 20 and jb.dropped == 1   # clean again
    plain, items = _opus_run(lost, 700, False)
    assert all(it.next_payload is None for it in items if isinstance(it, Missing))
    assert plain.target_delay_ms == 20 and plain.dropped == 0


def test_a_pending_wait_decays_with_the_learned_delay() -> None:
    """Reordering once, then ten clean seconds: a later plain loss is skipped, not waited for."""
    jb = JitterBuffer(8000, FRAME)
    pkts = [p for p in stream(700, delay=[0.002] * 700) if p[0] != 600]
    pkts[40] = (40, 40 * FRAME, payload(40), pkts[40][3] + 0.035)
    sim = Sim(jb)
    sim.add(pkts)
    items = [sim.tick() for _ in range(700)]
    assert jb.late == 1 and jb.target_delay_ms == 20
    assert items[600] == Missing(None) and _played_at(items)[601] == 601   # no frame added
