"""One room across two bridge processes (README "One room across nodes"): node A owns the room
and seats one caller (``cascade.part_size: 1``); the next callers are redirected to node B,
whose part of the room joins A's as one trunk participant. Everyone hears everyone else's
tone, never their own; the trunk goes when B's last caller does."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.calls import Participant, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.support.raw_sip import raw_invite

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]

TRUSTED = {"security": {"trusted_proxies": ["127.0.0.1"]}}


def _nodes(bridge_factory: Callable[..., BridgeProcess]) -> tuple[BridgeProcess, BridgeProcess]:
    part = bridge_factory(**TRUSTED)
    owner = bridge_factory(**TRUSTED, cascade={"part_size": 1, "part_nodes": [f"127.0.0.1:{part.sip_port}"]})
    return owner, part


def assert_hears_the_others(people: list[Participant], seconds: float) -> None:
    for p in people:
        samples, rate = p.heard()
        # The last seconds of the conversation (all three in), not the hang-up.
        end = len(samples) / rate - 0.3
        samples = audio.segment(samples, rate, end - seconds, end)
        for other in people:
            if other is p or other.freq is None:
                continue
            assert audio.has_tone(samples, rate, other.freq, min_rel_db=-15, min_seconds=1.0), (
                f"{p.name} did not hear {other.name}'s {other.freq} Hz: "
                f"level {audio.tone_level_db(samples, rate, other.freq):.1f} dB")
        assert p.freq is not None
        own = audio.tone_level_db(samples, rate, p.freq)
        assert own < -30, f"{p.name} heard its own {p.freq} Hz tone at {own:.1f} dB"


def _connected(bridge: BridgeProcess) -> list[dict[str, Any]]:
    status, body = bridge.api("GET", "/v2/conferences")
    assert status == 200
    conf = next(c for c in body["conferences"] if c["name"] == "room1")
    status, body = bridge.api("GET", f"/v2/conferences/{conf['id']}/participants")
    assert status == 200
    return [p for p in body["participants"] if p["status"] == "connected"]


def _log_has(bridge: BridgeProcess, pattern: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, bridge.log_path.read_text(errors="replace")):
            return True
        time.sleep(0.1)
    return False


def test_owner_answers_302_past_the_part_size(bridge_factory: Callable[..., BridgeProcess],
                                              ports: PortAllocator, tmp_path: Path) -> None:
    owner, part = _nodes(bridge_factory)
    with participants(tmp_path, ports, [("alice", "PCMU", 500.0)]) as people:
        people[0].phone.dial(f"sip:room1@127.0.0.1:{owner.sip_port}")
        people[0].phone.wait_event("CALL_ESTABLISHED", timeout=10)
        status, contact = raw_invite(owner.sip_port, ports.block(4), "room1")
        assert status == 302
        assert contact == f"<sip:room1@127.0.0.1:{part.sip_port};tutti-owner=127.0.0.1:{owner.sip_port}>"
        people[0].phone.hangup()


def test_one_room_over_two_nodes_everyone_hears_everyone(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path
) -> None:
    owner, part = _nodes(bridge_factory)
    specs: list[tuple[str, str, float | None]] = [
        ("alice", "G722/16000/1", 500.0), ("bob", "PCMU", 1000.0), ("carol", "G722/16000/1", 1500.0)]
    with participants(tmp_path, ports, specs) as people:
        alice, bob, carol = people
        # All three dial the owner; bob and carol get its 302, and baresip follows it to B.
        for p in people:
            p.phone.dial(f"sip:room1@127.0.0.1:{owner.sip_port}")
            p.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        assert _log_has(owner, r"cascade trunk part_\w+ joined \(G722\)")
        assert _log_has(part, r"cascade trunk part_\w+ joined \(G722\)")
        # Alice is listed on A, bob and carol on B: the trunk is nobody's participant.
        assert len(_connected(owner)) == 1
        assert len(_connected(part)) == 2
        talk(4.0)
        for p in (bob, carol):
            p.phone.hangup()
        # B empties: it hangs the trunk up, and A lets it go.
        assert _log_has(part, r"last local caller left; hanging up the cascade trunk")
        assert _log_has(owner, r"cascade trunk part_\w+ left")
        alice.phone.hangup()
        for p in people:
            p.phone.wait_event("CALL_CLOSED", timeout=10)
        assert_hears_the_others(people, 3.0)
