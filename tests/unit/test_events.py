"""The event bus: stamps, per-conference order, subscribers isolated from each other."""

from __future__ import annotations

from datetime import datetime, timezone

from bridge.control.events import (
    ConferenceEnded,
    EventBus,
    ParticipantJoined,
    ParticipantLeft,
    log_subscriber,
)
from bridge.control.roles import PERMISSIONS, permissions

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)


def test_events_are_stamped_in_order_per_conference() -> None:
    bus = EventBus(lambda: T0)
    a1 = bus.publish(ParticipantJoined("conf_a", participant_id="p1"))
    b1 = bus.publish(ParticipantJoined("conf_b", participant_id="p2"))
    a2 = bus.publish(ParticipantLeft("conf_a", participant_id="p1", reason="kicked"))
    assert (a1.seq, a2.seq, b1.seq) == (1, 2, 1)
    assert a1.at == T0 and a1.event_id and a1.event_id != a2.event_id
    assert a2.name == "participant.left" and a2.reason == "kicked"


def test_publish_never_calls_subscribers_and_drain_delivers_in_order() -> None:
    bus = EventBus(lambda: T0)
    seen: list[str] = []
    bus.subscribe("test", lambda e: seen.append(e.name))
    bus.publish(ParticipantJoined("c", participant_id="p"))
    bus.publish(ConferenceEnded("c", reason="all_left"))
    assert seen == [] and bus.pending == 2
    assert bus.drain() == 2
    assert seen == ["participant.joined", "conference.ended"]


def test_a_failing_subscriber_does_not_starve_the_others() -> None:
    bus = EventBus(lambda: T0)
    seen: list[int] = []

    def broken(event: object) -> None:
        raise RuntimeError("bug")

    bus.subscribe("broken", broken)
    bus.subscribe("log", log_subscriber)
    bus.subscribe("ok", lambda e: seen.append(e.seq))
    bus.publish(ParticipantJoined("c", participant_id="p"))
    bus.drain()
    assert seen == [1] and bus.subscriber_errors == 1


def test_the_queue_is_bounded() -> None:
    bus = EventBus(lambda: T0, limit=3)
    for i in range(5):
        bus.publish(ParticipantJoined("c", participant_id=f"p{i}"))
    assert bus.pending == 3 and bus.dropped == 2


def test_role_table() -> None:
    assert not permissions("listener").speak and not permissions("listener").unmute_self
    assert permissions("presenter") == permissions("moderator")
    assert permissions("operator").bypass_cap and not permissions("operator").host
    assert permissions("nonsense") == PERMISSIONS["member"]
