"""Admission control end to end (README "Security", issue "Must show 2").

Two real softphones talk in a room while 1,500 INVITEs that are never ACKed arrive from one other
address (127.0.0.2) in 6 s. The calls in progress must have no gap over 200 ms, and a third real
caller (from 127.0.0.1) dialling during the flood must be answered and hear them. The flood's
outcome (answered, refused with 503 + Retry-After, silenced) is written to
``$TUTTI_ATTACK_REPORT`` when set, for the README's attack table.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tests.e2e.calls import hang_up_all, participants
from tests.e2e.hostile import FloodResult, invite_flood, longest_gap_s
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]

FLOOD_INVITES = 1500
FLOOD_SECONDS = 6.0


def _report(name: str, data: dict[str, object]) -> None:
    path = os.environ.get("TUTTI_ATTACK_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"attack": name, **data}) + "\n")


def test_invite_flood_leaves_calls_and_newcomers_alone(bridge: BridgeProcess, ports: PortAllocator,
                                                       tmp_path: Path) -> None:
    specs = [("alice", "PCMU", 500.0), ("bob", "PCMU", 1000.0), ("carol", "PCMU", None)]
    flood: list[FloodResult] = []
    with participants(tmp_path, ports, specs) as people:
        talkers, carol = people[:2], people[2]
        for p in talkers:
            p.phone.dial(f"sip:room1@127.0.0.1:{bridge.sip_port}")
        for p in talkers:
            p.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        attack = threading.Thread(target=lambda: flood.append(
            invite_flood(bridge.sip_port, FLOOD_INVITES, FLOOD_SECONDS)))
        attack.start()
        threading.Event().wait(2.0)                 # the flood is under way
        carol.phone.dial(f"sip:room1@127.0.0.1:{bridge.sip_port}")
        try:
            carol.phone.wait_event("CALL_ESTABLISHED", timeout=10)
            carol_answered = True
        except Exception:
            carol_answered = False
        attack.join(FLOOD_SECONDS + 10)
        threading.Event().wait(1.0)
        hang_up_all(people if carol_answered else talkers)
    result = flood[0]
    gaps = {}
    for person in talkers:
        samples, rate = person.heard()
        samples = audio.segment(samples, rate, 1.0, len(samples) / rate - 0.5)
        gaps[person.name] = longest_gap_s(samples, rate)
    heard = {}
    if carol_answered:
        samples, rate = carol.heard()
        samples = audio.segment(samples, rate, 1.0, len(samples) / rate - 0.5)
        heard = {f: audio.has_tone(samples, rate, f, min_rel_db=-15, min_seconds=1.0) for f in (500.0, 1000.0)}
    _report("invite_flood", {"sent": result.sent, "seconds": round(result.seconds, 1),
                             "statuses": result.statuses, "retry_after": sorted(result.retry_after),
                             "newcomer_answered": carol_answered, "newcomer_heard": heard,
                             "max_gap_ms": round(max(gaps.values()) * 1000)})

    assert result.sent == FLOOD_INVITES and result.seconds < FLOOD_SECONDS + 3
    assert carol_answered, bridge.log_tail()
    assert heard == {500.0: True, 1000.0: True}
    for name, gap in gaps.items():
        assert gap <= 0.2, f"{name}'s audio had a {gap * 1000:.0f} ms gap"
    assert result.answered_200 <= 5                 # security.max_unconfirmed_per_source
    assert result.statuses.get(503, 0) > 0 and result.retry_after
    log = bridge.log_path.read_text(errors="replace")
    assert "Traceback" not in log, bridge.log_tail()
