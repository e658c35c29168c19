"""One room across two cluster nodes, the part node taken from the registry (no static list).

Node A owns the room (its lease in Redis) and seats one caller (``cascade.part_size: 1``, no
``part_nodes``). Bob dials A and is redirected to B, the other live node of the registry, as a
part caller. Carol then dials B directly and joins B's part: a part node never spreads the room
further (that would make a loop, and without this rule it did: alice heard her own tone back).
B never claims the room: A's lease stands. Everyone hears everyone else's tone, never their own."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.helpers import PREFIX, client, wait_for
from tests.e2e.calls import participants, talk
from tests.e2e.peers.ports import PortAllocator
from tests.e2e.test_cascade import _log_has, assert_hears_the_others
from tests.support.bridge_proc import BridgeProcess
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]


def test_a_full_room_spreads_to_a_live_node_of_the_registry(
    node_factory: Callable[..., BridgeProcess], redis_server: RedisServer, ports: PortAllocator, tmp_path: Path
) -> None:
    extra = {"security": {"trusted_proxies": ["127.0.0.1"]}, "cascade": {"part_size": 1}}
    node_a, node_b = node_factory("node-a", **extra), node_factory("node-b", **extra)
    r = client(redis_server)
    specs: list[tuple[str, str, float | None]] = [
        ("alice", "PCMU", 500.0), ("bob", "PCMU", 1000.0), ("carol", "PCMU", 1500.0)]
    with participants(tmp_path, ports, specs) as people:
        alice, bob, carol = people
        alice.phone.dial(f"sip:room1@127.0.0.1:{node_a.sip_port}")
        alice.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        assert wait_for(lambda: r.get(f"{PREFIX}conf:conf_room1:owner")) == "node-a"
        # A must see B alive before it can name B: B's key in Redis is not enough, A reads the
        # registry once a heartbeat (CI once dialled bob in between, and A seated him itself).
        assert _log_has(node_a, r"cluster: node node-b seen alive", 10.0)
        bob.phone.dial(f"sip:room1@127.0.0.1:{node_a.sip_port}")
        bob.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        carol.phone.dial(f"sip:room1@127.0.0.1:{node_b.sip_port}")
        carol.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        assert _log_has(node_a, rf"302 Moved Temporarily .*127\.0\.0\.1:{node_b.sip_port};tutti-owner=")
        assert not _log_has(node_b, r"302 Moved Temporarily .*tutti-owner=", 0.5), "the part node spread further"
        assert _log_has(node_b, r"cascade trunk part_\w+ joined")
        assert _log_has(node_a, r"cascade trunk part_\w+ joined")
        # B's API lists the owner's callers and its own part's, and controls its own: a mute of
        # carol through B takes effect on B (listed muted there).
        base = "/v2/accounts/acct1/conferences/conf_room1/participants"

        def listing_on_b() -> dict[str, dict[str, object]]:
            st, body = node_b.api("GET", base)
            return {p["caller_id_number"]: p for p in body["data"]} if st == 200 else {}
        assert wait_for(lambda: set(listing_on_b()) == {"alice", "bob", "carol"}), listing_on_b()
        carol_id = listing_on_b()["carol"]["participant_id"]
        status, body = node_b.api("POST", f"{base}/{carol_id}", {"data": {"action": "mute"}})
        assert status == 200 and body["data"]["muted"] is True, body
        status, body = node_b.api("POST", f"{base}/{carol_id}", {"data": {"action": "unmute"}})
        assert status == 200 and body["data"]["muted"] is False, body
        talk(4.0)
        # B never claimed the room: A's lease stands, and B logged no split.
        assert r.get(f"{PREFIX}conf:conf_room1:owner") == "node-a"
        assert not re.search(r"split", node_b.log_path.read_text(errors="replace"), re.I)
        for p in people:
            p.phone.hangup()
        for p in people:
            p.phone.wait_event("CALL_CLOSED", timeout=10)
        assert_hears_the_others(people, 3.0)
