"""Issue 21, must-show 2 (the harness side): ``kill -9`` of one node during calls. The rooms on
the other nodes keep flowing (the largest RTP gap a caller there sees is measured, and a listener
there still hears its talker); a caller of a lost room who redials is back in the room on a live node
within 5 s (Kamailio: the owner times out or is already marked down by OPTIONS probing, the next node
takes the call)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.calls import room_callers
from tests.cluster.harness import Cluster, rooms
from tests.cluster.probe import RtpProbe
from tests.e2e.peers import audio
from tests.e2e.peers.baresip import Baresip
from tests.e2e.peers.ports import PortAllocator
from tests.e2e.peers.sipp import SippProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("need_baresip")]

PROBE_CALL = Path(__file__).resolve().parent / "scenarios" / "probe_call.xml"
TONE = 1000.0


def _redial_until_in(phone: Baresip, uri: str, tries: int) -> int:
    """Dial until the call is up, as a caller would after a busy signal: the proxy answers 503 when
    no live node will take the room yet. Returns the number of dial attempts."""
    for attempt in range(1, tries + 1):
        phone.dial(uri)
        deadline = time.monotonic() + 12.0
        while time.monotonic() < deadline:
            types = phone.event_types()
            if types.count("CALL_ESTABLISHED") >= 1:
                return attempt
            if types.count("CALL_CLOSED") >= attempt:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"{phone.name}: no answer and no failure in 12 s")
    raise AssertionError(f"{phone.name}: not in the room after {tries} dials:\n{phone.log_tail(20)}")


def _answered_media_port(messages: Path, timeout: float = 10.0) -> int:
    """The bridge's RTP port from the 200 OK SIPp logged for the probe call."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = messages.read_text(errors="replace") if messages.exists() else ""
        match = re.search(r"SIP/2\.0 200 OK.*?^m=audio (\d+)", text, re.DOTALL | re.MULTILINE)
        if match:
            return int(match.group(1))
        time.sleep(0.1)
    raise AssertionError(f"the probe call was not answered:\n{text[-2000:]}")


@pytest.mark.parametrize("nodes, heartbeat_s", [(3, 0.5), (4, 1.0)], ids=["hb0.5", "hb1-4nodes"])
def test_kill_9_one_node_others_flow_and_lost_room_redials(
    cluster_factory: Callable[..., Cluster], ports: PortAllocator, tmp_path: Path, nodes: int, heartbeat_s: float
) -> None:
    """heartbeat 0.5 s: the dead node has left the registry by the time the redial reaches a live
    node. heartbeat 1 s: it may not have, so that node redirects to the dead owner and the proxy
    waits and tries the next node (Kamailio's OWNER_DOWN_RETRY)."""
    cluster = cluster_factory(nodes, room_defs=rooms(12), heartbeat_s=heartbeat_s)
    assert cluster.proxy is not None and cluster.redis is not None
    names = [r["name"] for r in cluster.room_defs]
    with room_callers(cluster, ports, tmp_path / "load", names * 2, hold_ms=40_000, rate=30, timeout=90) as load:
        where = cluster.wait_placement({r: 2 for r in names}, timeout=30)
        owner = {room: next(iter(nodes)) for room, nodes in where.items()}
        assert sorted(owner) == sorted(names), where
        node_of = dict(zip(cluster.node_ids, cluster.nodes))
        if not cluster.leases:
            for room, nid in owner.items():
                cluster.pin(room, node_of[nid])
        victim = owner[names[0]]
        lost_room = names[0]
        kept_room = next(r for r in names if owner[r] != victim)

        mic = audio.tone_wav(tmp_path / "talker.wav", TONE, 30.0, 8000, 1)
        talker = Baresip("talker", tmp_path, ports.baresip(), codecs="PCMU", mic_wav=mic, mic_seconds=30.0).start()
        listener = Baresip("listener", tmp_path, ports.baresip(), codecs="PCMU").start()
        redialler = Baresip("redialler", tmp_path, ports.baresip(), codecs="PCMU").start()
        probe = RtpProbe(ports.port()).start()
        sp = ports.sipp()
        probe_call = SippProcess(PROBE_CALL, cluster.target, local_port=sp.sip, media_port=sp.media,
                                 service=kept_room, keys={"probe_port": probe.port},
                                 extra_args=["-d", "20000"], timeout=40, workdir=tmp_path / "probe")
        try:
            for phone in (talker, listener):
                phone.dial(f"sip:{kept_room}@{cluster.target}")
                phone.wait_event("CALL_ESTABLISHED", timeout=15)
            probe.send_to(_answered_media_port(probe_call.workdir / "messages.log"))
            deadline = time.monotonic() + 10
            while probe.count(time.monotonic() - 1.0, time.monotonic()) < 40 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert probe.count(time.monotonic() - 1.0, time.monotonic()) >= 40, "no audio reached the probe"
            time.sleep(2.0)

            killed_at = time.monotonic()
            cluster.kill_node(cluster.node_ids.index(victim))
            attempts = _redial_until_in(redialler, f"sip:{lost_room}@{cluster.target}", tries=3)
            back_in = time.monotonic() - killed_at
            time.sleep(4.0)
            observed_until = time.monotonic()

            gap_before = probe.largest_gap(killed_at - 2.0, killed_at)
            gap_after = probe.largest_gap(killed_at, observed_until)
            packets = probe.count(killed_at, observed_until)
            waits = cluster.proxy.log_path.read_text(errors="replace").count(f"room {lost_room}: owner down")
            print(f"heartbeat {heartbeat_s} s, {nodes} nodes, proxy waits {waits}, dial attempts {attempts}; kill -9 {victim}: redialling caller of {lost_room} back in {back_in:.2f} s; "
                  f"room {kept_room} on {owner[kept_room]}: largest RTP gap {gap_after * 1000:.0f} ms after the kill "
                  f"({gap_before * 1000:.0f} ms in the 2 s before), {packets} packets in "
                  f"{observed_until - killed_at:.1f} s")
            now_where = cluster.placement()
            assert list(now_where.get(lost_room, {})) not in ([], [victim]), now_where
            # 5 s is the bound; with 1 s heartbeats the loss is noticed only after 3-4 s,
            # so there the bound is the design's: fr_timer + 4 heartbeats + the proxy's 1 s steps.
            assert back_in < (5.0 if heartbeat_s <= 0.5 else 2.0 + 4 * heartbeat_s + 2.0), (
                f"redial took {back_in:.2f} s")
            assert packets >= 0.9 * 50 * (observed_until - killed_at), "the surviving room's audio thinned out"
            assert gap_after < 0.2, f"the surviving room stalled {gap_after * 1000:.0f} ms"
            # Kamailio's OPTIONS probing has marked the dead node down by now.
            assert cluster.proxy.node_states()[cluster.node_uri(node_of[victim])].startswith("I")

            listener.hangup()
            listener.wait_event("CALL_CLOSED", timeout=10)
            samples, rate = listener.heard(timeout=10.0)
            # the last seconds of the call: after the kill
            tail = audio.segment(samples, rate, max(0.0, len(samples) / rate - 4.0), len(samples) / rate - 0.3)
            assert audio.has_tone(tail, rate, TONE, min_rel_db=-15, min_seconds=2.0), (
                f"listener stopped hearing the talker after the kill: {audio.tone_level_db(tail, rate, TONE):.1f} dB")
        finally:
            probe_call.stop()
            probe.stop()
            for phone in (talker, listener, redialler):
                phone.stop()
        load.kill()
