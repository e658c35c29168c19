"""Who hears whom for Telnyx supervisor roles: a whisperer is heard only by its targets, on top
of their mix, and hears everyone; ending the whisper (or the supervisor leaving) restores the
common mix."""

from __future__ import annotations

from tests.unit.test_room import g711_room, hears, one_tick


def test_whisper_is_heard_by_its_targets_only() -> None:
    room, ports = g711_room(["agent", "customer", "boss", "other"])
    room.set_whisper("boss", ["agent"])
    one_tick(room, ports, {"agent": 400, "customer": 1000, "boss": 1400})
    assert hears(ports["agent"], 1400) and hears(ports["agent"], 1000)       # whisper + the call
    assert not hears(ports["customer"], 1400) and not hears(ports["other"], 1400)
    assert hears(ports["customer"], 400) and hears(ports["other"], 400)
    assert hears(ports["boss"], 400) and hears(ports["boss"], 1000)          # hears everyone
    assert not hears(ports["agent"], 400)                                     # still mix-minus


def test_ending_the_whisper_or_leaving_restores_the_mix() -> None:
    room, ports = g711_room(["agent", "customer", "boss"])
    room.set_whisper("boss", ["agent"])
    room.set_whisper("boss", None)
    one_tick(room, ports, {"boss": 1400})
    assert hears(ports["customer"], 1400) and hears(ports["agent"], 1400)     # barge again
    room.set_whisper("boss", ["agent"])
    room.remove_leg("boss")
    one_tick(room, ports, {"customer": 1000})
    assert hears(ports["agent"], 1000)
