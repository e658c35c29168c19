"""Issue 21, must-show 1 (scaled to one 2-core machine): three nodes behind Kamailio, 30 rooms x 3
callers (SIPp for load, baresip in a sampled room whose audio is checked by FFT): every room's callers
land on one node; a fourth node added (dispatcher list regenerated, ``kamcmd dispatcher.reload``):
no live room moves, while new rooms do reach the new node."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster.calls import room_callers
from tests.cluster.harness import Cluster, rooms, single_node
from tests.e2e.peers import audio
from tests.e2e.peers.baresip import Baresip
from tests.e2e.peers.ports import PortAllocator

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("need_baresip")]

LIVE_ROOMS = 30
SPARE_ROOMS = 10          # never called before the fourth node: where hashing sends new rooms
CALLERS = 3
TONES = (500.0, 1000.0, 1500.0)


@contextlib.contextmanager
def phones(tmp_path: Path, ports: PortAllocator, seconds: float) -> Iterator[list[Baresip]]:
    started: list[Baresip] = []
    try:
        for i, freq in enumerate(TONES):
            mic = audio.tone_wav(tmp_path / f"mic{i}.wav", freq, seconds, 8000, 1)
            started.append(Baresip(f"caller{i}", tmp_path, ports.baresip(), codecs="PCMU", mic_wav=mic,
                                   mic_seconds=seconds).start())
        yield started
    finally:
        for phone in started:
            phone.stop()


def assert_hear_each_other(people: list[Baresip]) -> None:
    for phone, own in zip(people, TONES):
        samples, rate = phone.heard(timeout=10.0)
        samples = audio.segment(samples, rate, 1.0, len(samples) / rate - 0.3)
        for other in TONES:
            if other != own:
                assert audio.has_tone(samples, rate, other, min_rel_db=-15, min_seconds=1.0), (
                    f"{phone.name} did not hear {other} Hz: {audio.tone_level_db(samples, rate, other):.1f} dB")
        level = audio.tone_level_db(samples, rate, own)
        assert level < -30, f"{phone.name} heard its own {own} Hz at {level:.1f} dB"


def test_thirty_rooms_on_three_nodes_then_a_fourth_moves_none(
    cluster_factory: Callable[..., Cluster], ports: PortAllocator, tmp_path: Path
) -> None:
    cluster = cluster_factory(3, room_defs=rooms(LIVE_ROOMS + SPARE_ROOMS))
    live = [f"r{i:02d}" for i in range(LIVE_ROOMS)]
    spare = [f"r{i:02d}" for i in range(LIVE_ROOMS, LIVE_ROOMS + SPARE_ROOMS)]
    sampled, loaded = live[0], live[1:]
    load_users = [room for _ in range(CALLERS) for room in loaded]       # round-robin over rooms

    with room_callers(cluster, ports, tmp_path / "load", load_users, hold_ms=40_000, rate=30,
                      timeout=90) as load, phones(tmp_path, ports, seconds=30.0) as people:
        for phone in people:
            phone.dial(f"sip:{sampled}@{cluster.target}")
        for phone in people:
            phone.wait_event("CALL_ESTABLISHED", timeout=15)
        before = single_node(cluster.wait_placement({r: CALLERS for r in live}, timeout=30))
        assert sorted(before) == sorted(live), f"rooms missing: {set(live) - set(before)}"
        assert all(sum(n.values()) == CALLERS for n in cluster.placement().values())
        per_node = {nid: sum(1 for o in before.values() if o == nid) for nid in cluster.node_ids}
        assert all(per_node.values()), f"a node got no room: {per_node}"
        print(f"rooms per node with 3 nodes: {per_node}")

        node_of = dict(zip(cluster.node_ids, cluster.nodes))
        assert cluster.redis is not None
        for room, nid in before.items():
            if cluster.leases:   # the nodes keep their own leases (cluster mode)
                assert cluster.get_key(cluster.room_key(room)) == cluster.node_uri(node_of[nid])
            else:                # until then the test writes what a node would
                cluster.pin(room, node_of[nid])

        cluster.add_node()
        # One more caller for every live room, and one for each room never used before.
        with room_callers(cluster, ports, tmp_path / "after", live + spare, hold_ms=6000, rate=30,
                          timeout=60) as late:
            expected = {r: CALLERS + 1 for r in live} | {r: 1 for r in spare}
            after = single_node(cluster.wait_placement(expected, timeout=30))
            late_result = late.wait()
        late_result.assert_ok(len(live) + len(spare))
        moved = {r: (before[r], after[r]) for r in live if after[r] != before[r]}
        assert not moved, f"live rooms moved when node4 joined: {moved}"
        # The control: the rooms that hashing alone would have moved, which Kamailio logged as
        # held at their Redis owner (modulo hashing over 4 nodes moves about 3 in 4).
        assert cluster.proxy is not None
        log = cluster.proxy.log_path.read_text(errors="replace")
        held = {r for r in live if re.search(rf"room {r}: owner \S+ from Redis \(hash said", log)}
        print(f"live rooms hashing alone would have moved: {len(held)} of {len(live)}")
        assert held, "no live room needed its Redis owner: the test would not notice rooms moving"
        new_homes = {after[r] for r in spare}
        assert "node4" in new_homes, f"no new room reached node4: {[(r, after[r]) for r in spare]}"
        print(f"new rooms after node4 joined: {sorted((r, after[r]) for r in spare)}")

        time.sleep(1.0)
        for phone in people:
            phone.hangup()
        for phone in people:
            phone.wait_event("CALL_CLOSED", timeout=10)
        assert_hear_each_other(people)
        load.kill()   # the long calls have proven what they were for
