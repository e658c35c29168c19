"""Cluster mode's pure parts: key names, lease decisions, lost nodes, snapshots, config."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bridge.cluster.keys import Keys, dial_users
from bridge.cluster.leases import LeaseBook
from bridge.cluster.mirror import RemoteRoom, parse_snapshot, redirect_contact, snapshot_message
from bridge.cluster.registry import NodeInfo, lost_nodes, registry_ttl_ms
from bridge.config import ConfigError, parse_config
from bridge.control.model import Conference, ParticipantView

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_key_names_are_the_kamailio_contract() -> None:
    k = Keys("tutti:")
    assert k.room_node("1001") == "tutti:room:1001:node"
    assert k.conf_owner("conf_x") == "tutti:conf:conf_x:owner"
    assert k.node("a") == "tutti:node:a"
    assert k.conf_changes == "tutti:conf-changes"
    assert k.node_cmd("a") == "tutti:node:a:cmd"
    assert Keys("p/").room_node("u") == "p/room:u:node"


def test_dial_users_cover_id_room_name_and_code() -> None:
    room = Conference(id="conf_room1", account_id=None, name="room1", dial_in_code="1001", created_at=T0,
                      source="config")
    api = Conference(id="conf_ab", account_id="a", name="Weekly", dial_in_code="12345678", created_at=T0)
    assert dial_users(room) == ("conf_room1", "room1", "1001")
    assert dial_users(api) == ("conf_ab", "12345678")     # an API name is not a dial string
    assert dial_users(Conference(id="c", account_id=None, name="c", dial_in_code="", created_at=T0)) == ("c",)


def test_lease_book_holds_renews_and_gives_up_a_lost_lease() -> None:
    book = LeaseBook("a")
    book.want("c1", ("c1", "1001"))
    assert book.to_claim() == [("c1", ("c1", "1001"))]
    assert book.record("c1", "a") == "held" and "c1" in book.held
    # Renewal found another owner: the lease expired and b claimed it; we stop claiming.
    assert book.record("c1", "b") == "lost"
    assert "c1" not in book.held and book.to_claim() == []
    assert book.drop("c1") == ()            # nothing of ours to release
    book.want("c2", ("c2",))
    assert book.record("c2", "b") == "refused" and book.to_claim() == []
    book.want("c3", ("c3",))
    book.record("c3", "a")
    assert book.drop("c3") == ("c3",) and book.wanted == {"c2": ("c2",)}


def test_lost_nodes_are_registered_ones_without_a_live_key() -> None:
    assert lost_nodes(["a", "b", "c"], ["a", "c"], me="a") == ["b"]
    assert lost_nodes(["a", "b"], [], me="a") == ["b"]        # our own expired key is not a loss
    assert registry_ttl_ms(2.0) == 6000
    info = NodeInfo("a", "sip:127.0.0.1:5071", "http://127.0.0.1:8081", 12.5)
    assert NodeInfo.from_json("a", info.to_json()) == info


def test_room_snapshot_round_trip_and_redirect_contact() -> None:
    view = ParticipantView("part_1", "alice", "Alice", True, False, False, "member", T0, status="connected")
    room = parse_snapshot(snapshot_message("c1", "b", "sip:127.0.0.1:5072", [view]))
    assert room == RemoteRoom("c1", "b", "sip:127.0.0.1:5072", (view,))
    assert room.has("part_1") and not room.has("part_2")
    assert parse_snapshot(snapshot_message("c1", "b", "sip:x", None)) == ("c1", "b")
    assert redirect_contact("1001", "sip:127.0.0.1:5072") == "<sip:1001@127.0.0.1:5072>"
    assert redirect_contact("r", "sip:[::1]:5072;transport=tcp") == "<sip:r@[::1]:5072>"


def test_cluster_config_off_by_default_and_checked_when_on() -> None:
    assert parse_config({}).cluster.enabled is False
    good = {"enabled": True, "node_id": "node-a", "redis_url": "redis://127.0.0.1:6379/0",
            "advertise_sip": "sip:127.0.0.1:5071", "advertise_http": "http://127.0.0.1:8081"}
    cfg = parse_config({"cluster": good}).cluster
    assert (cfg.key_prefix, cfg.lease_ttl_s, cfg.heartbeat_s) == ("tutti:", 5.0, 1.0)
    for bad, words in (({"redis_url": None}, "needs redis_url"), ({"advertise_sip": "127.0.0.1"}, "SIP URI"),
                       ({"node_id": "a b"}, "node_id"), ({"lease_ttl_s": 3, "heartbeat_s": 2}, "twice"),
                       ({"redis_url": "http://x"}, "redis://")):
        with pytest.raises(ConfigError, match=words):
            parse_config({"cluster": {**good, **bad}})


def test_a_lease_held_by_a_dead_node_is_claimed_again() -> None:
    book = LeaseBook("a")
    book.want("c1", ("c1",))
    assert book.record("c1", "b") == "refused"
    assert book.record("c1", "b") == "refused" and book.to_claim() == []    # said once, not fought
    assert book.retry_dead({"a", "b"}) == []
    assert book.retry_dead({"a"}) == ["c1"] and book.to_claim() == [("c1", ("c1",))]
    assert book.record("c1", "a") == "held"
