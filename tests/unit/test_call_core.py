"""The call core's flows with a fake clock and no sockets (real SIP endpoint, rooms, RTP sessions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.control.events import ConferenceEnded, ParticipantLeft
from tests.unit.call_harness import Bridge, Phone


@pytest.fixture
def bridge(tmp_path: Path) -> Bridge:
    return Bridge(tmp_path)


def keys(bridge: Bridge, phone: Phone, digits: str) -> None:
    for d in digits:
        phone.press(d)
        bridge.run(0.1)


def hung_up(phone: Phone) -> bool:
    return any(r.method == "BYE" for r in phone.requests)


def seated(bridge: Bridge, conf_id: str) -> dict[str, str]:
    return {p.participant_id: p.role for p in bridge.core.book.connected(conf_id)}


def left_reasons(bridge: Bridge) -> list[str]:
    return [e.reason for e in bridge.events if isinstance(e, ParticipantLeft)]


def test_unknown_room_404_and_no_ports_503(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path)
    bridge.directory.add("conf_a")
    caller = bridge.phone()
    caller.dial("nowhere")
    assert caller.last_status() == 404
    bridge.media.free.clear()
    other = bridge.phone()
    other.dial("conf_a")
    assert other.last_status() == 503 and not bridge.core.legs_by_call


def test_three_wrong_pins_hang_up(bridge: Bridge) -> None:
    bridge.directory.add("conf_p", member_pins=("1111",))
    caller = bridge.phone()
    caller.call("conf_p")
    bridge.run(0.3)                               # welcome + enter_pin
    for _ in range(3):
        keys(bridge, caller, "9999#")
        bridge.run(0.3)                           # bad_pin
    bridge.run(0.5)                               # too_many_attempts, then BYE
    assert hung_up(caller)
    assert bridge.prompts.played.count("bad_pin") >= 2 and "too_many_attempts" in bridge.prompts.played
    assert seated(bridge, "conf_p") == {} and bridge.events == []   # never seated: no events, no digits


def test_access_number_then_code_then_pin(bridge: Bridge) -> None:
    bridge.directory.add("conf_c", code="4321", member_pins=("1111",), moderator_pins=("2222",))
    caller = bridge.phone()
    caller.call("conference")                     # the access number
    bridge.run(0.3)
    keys(bridge, caller, "4321#")
    bridge.run(0.3)
    keys(bridge, caller, "2222#")
    bridge.run(0.1)
    assert list(seated(bridge, "conf_c").values()) == ["moderator"]
    assert bridge.names("conf_c")[:2] == ["participant.joined", "conference.started"]


def test_wait_for_the_host_then_a_moderator_starts_it(bridge: Bridge) -> None:
    bridge.directory.add("conf_w", wait_for_moderator=True, moderator_pins=("2222",))
    member, host = bridge.phone(), bridge.phone()
    member.call("conf_w")
    bridge.run(0.3)
    keys(bridge, member, "#")                     # moderator PINs only: '#' alone enters as member
    bridge.run(0.1)
    (p,) = bridge.core.book.connected("conf_w")
    assert p.waiting and "conference.started" not in bridge.names()
    host.call("conf_w")
    bridge.run(0.3)
    keys(bridge, host, "2222#")
    bridge.run(0.1)
    assert not p.waiting and bridge.names().count("conference.started") == 1


def test_wait_for_the_host_then_the_api_starts_it(bridge: Bridge) -> None:
    bridge.directory.add("conf_w", wait_for_moderator=True)
    a, b = bridge.phone(), bridge.phone()
    a.call("conf_w")
    b.call("conf_w")
    talk = {a: None, b: 1000.0}      # phones send RTP all along (one that never does is paused)
    bridge.run(0.4, speak=talk)
    assert all(p.waiting for p in bridge.core.book.connected("conf_w")) and not a.hears(1000.0)
    bridge.settings("conf_w", wait_for_moderator=False)   # PATCH start_conference_on_create: true
    bridge.run(0.1, speak=talk)
    assert not any(p.waiting for p in bridge.core.book.connected("conf_w"))
    assert "conference.started" in bridge.names()
    bridge.run(0.4, speak=talk)
    assert a.hears(1000.0)


def test_kick(bridge: Bridge) -> None:
    bridge.directory.add("conf_k")
    a, b = bridge.phone(), bridge.phone()
    a.call("conf_k")
    b.call("conf_k")
    bridge.run(0.1)
    victim = next(p for p in bridge.core.book.connected("conf_k") if p.caller_number.endswith("0002"))
    assert bridge.core.act("conf_k", victim.participant_id, "kick", bridge.now)
    bridge.run(0.1)
    assert hung_up(b) and not hung_up(a)
    assert victim.status == "disconnected" and victim.leave_reason == "kicked"
    listing = bridge.core.participants("conf_k")
    assert [v.status for v in listing] == ["connected", "disconnected"]


def test_hold_and_resume(bridge: Bridge) -> None:
    bridge.directory.add("conf_h")
    a, b = bridge.phone(), bridge.phone()
    a.call("conf_h")
    b.call("conf_h")
    bridge.run(0.1)
    b.reinvite("sendonly")
    bridge.run(0.1)
    held = next(p for p in bridge.core.book.connected("conf_h") if p.on_hold)
    assert held.status == "held"
    b.transport.received.clear()  # type: ignore[union-attr]
    bridge.run(0.2)
    assert len(b.transport.received) >= 8   # type: ignore[union-attr]  # a held phone still gets a stream
    b.reinvite("sendrecv")
    bridge.run(0.1)
    assert held.status == "connected" and not held.on_hold
    assert [e.on_hold for e in bridge.events if e.name == "participant.hold_changed"] == [True, False]  # type: ignore[attr-defined]


def test_rtp_inactivity_hangs_up(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path, rtp={"inactivity_timeout_s": 2})
    bridge.directory.add("conf_r")
    quiet, talker = bridge.phone(), bridge.phone()
    quiet.call("conf_r")
    talker.call("conf_r")
    bridge.run(3.5, speak={talker: None})
    assert hung_up(quiet) and not hung_up(talker)
    assert left_reasons(bridge) == ["rtp_timeout"]


def test_last_moderator_leaving_ends_the_conference(bridge: Bridge) -> None:
    bridge.directory.add("conf_m", moderator_pins=("2222",), end_when_moderator_leaves=True)
    host, member = bridge.phone(), bridge.phone()
    host.call("conf_m")
    bridge.run(0.3)
    keys(bridge, host, "2222#")
    member.call("conf_m")
    bridge.run(0.3)
    keys(bridge, member, "#")
    bridge.run(0.1)
    host.bye()
    bridge.run(0.5)                               # the member hears "ended", then BYE
    assert hung_up(member)
    ended = [e for e in bridge.events if isinstance(e, ConferenceEnded)]
    assert [e.reason for e in ended] == ["host_left"]
    assert left_reasons(bridge) == ["hangup", "conference_ended"]


def test_deaf_participant_still_gets_packets(bridge: Bridge) -> None:
    bridge.directory.add("conf_d")
    a, b = bridge.phone(), bridge.phone()
    a.call("conf_d")
    b.call("conf_d")
    bridge.run(0.1)
    pa = next(p for p in bridge.core.book.connected("conf_d") if p.caller_number.endswith("0001"))
    bridge.core.act("conf_d", pa.participant_id, "deaf", bridge.now)
    a.transport.received.clear()  # type: ignore[union-attr]
    talk = {a: None, b: 1000.0}
    bridge.run(0.2, speak=talk)
    assert len(a.transport.received) >= 8 and not a.hears(1000.0)  # type: ignore[union-attr]
    bridge.core.act("conf_d", pa.participant_id, "undeaf", bridge.now)
    bridge.run(0.3, speak=talk)
    assert a.hears(1000.0)
