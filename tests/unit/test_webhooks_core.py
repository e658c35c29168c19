"""The pure webhook core: retry schedule, lanes, envelopes, FreeClimb transitions, signatures, URLs."""

from __future__ import annotations

import json
import re
import random
import time
from datetime import datetime, timedelta, timezone

import pytest
from freeclimb.utils.request_verifier import RequestVerifier
from telnyx.lib.webhook_verification import WebhookVerificationError, verify_webhook_signature

from bridge.config import WebhookAccountConfig
from bridge.control.errors import ControlError
from bridge.control.events import (
    ConferenceCreated,
    ConferenceEnded,
    ConferenceStarted,
    DomainEvent,
    EventBus,
    FloorChanged,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuteChanged,
    PlaybackStarted,
)
from bridge.control.model import Conference
from bridge.webhooks.backoff import RetryPolicy
from bridge.webhooks.envelopes import Recording, freeclimb_body, telnyx_event, telnyx_recording_saved
from bridge.webhooks.freeclimb_status import FreeClimbStatusTracker
from bridge.webhooks.lanes import LaneScheduler
from bridge.webhooks.model import Delivery, Outcome
from bridge.webhooks.routing import Router
from bridge.webhooks.signing import FreeClimbSigner, TelnyxSigner
from bridge.webhooks.urls import AddressPolicy, ForbiddenDestination, check_address, validate_url

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def conf(**kw: object) -> Conference:
    base: dict[str, object] = dict(id="conf_1", account_id="acct1", name="Weekly", dial_in_code="1234",
                                   created_at=T0, status="active")
    base.update(kw)
    return Conference(**base)  # type: ignore[arg-type]


def stamped(*events: DomainEvent) -> list[DomainEvent]:
    clock = iter(T0 + timedelta(seconds=i) for i in range(1000))
    bus = EventBus(lambda: next(clock))
    return [bus.publish(e) for e in events]


# -- retry schedule ---------------------------------------------------------------------------


def test_backoff_doubles_caps_and_jitters_within_bounds() -> None:
    policy = RetryPolicy(initial_s=2, max_s=900, jitter=0.5, horizon_s=24 * 3600)
    rng = random.Random(7)
    for retry, full in [(1, 2), (2, 4), (3, 8), (9, 512), (10, 900), (40, 900)]:
        for _ in range(50):
            d = policy.delay(retry, rng)
            assert full * 0.5 <= d <= full
    assert RetryPolicy(initial_s=1, max_s=8, jitter=0).delay(3, rng) == 4


def test_schedule_reaches_the_horizon_and_stops() -> None:
    policy = RetryPolicy(initial_s=2, max_s=900, jitter=0.5, horizon_s=24 * 3600)
    times = policy.schedule(1000.0, random.Random(1))
    assert times[0] == 1000.0
    assert all(b > a for a, b in zip(times, times[1:]))
    assert times[-1] == 1000.0 + 24 * 3600          # the last try is at the horizon, not skipped
    assert max(b - a for a, b in zip(times, times[1:])) <= 900
    assert 90 <= len(times) <= 200                   # documented: about 100 attempts in 24 h
    assert policy.next_attempt(1000.0, 1000.0 + 24 * 3600, 5, random.Random()) is None


# -- lanes ------------------------------------------------------------------------------------


def delivery(i: int, conference: str = "c1", url: str = "http://a.example/hook", created: float = 0.0) -> Delivery:
    return Delivery(id=f"d{i}", conference_id=conference, account_id="acct1", event_id=f"e{i}", event_type="x",
                    form="telnyx", url=url, failover_url=None, body=b"{}", created_at=created, position=i,
                    next_attempt_at=created)


def test_lane_sends_in_order_and_one_at_a_time() -> None:
    lanes = LaneScheduler(RetryPolicy(initial_s=1, max_s=10, jitter=0, horizon_s=100))
    lanes.add([delivery(1), delivery(2), delivery(3)])
    assert [d.id for d in lanes.take_due(0)] == ["d1"]
    assert lanes.take_due(0) == []                   # d2 waits for d1
    failed = lanes.finish(delivery(1), Outcome(False, "500"), 0)
    assert failed.state == "pending" and failed.attempts == 1 and failed.next_attempt_at == 1
    assert lanes.take_due(0.5) == []                 # still d1's turn, after its backoff
    [again] = lanes.take_due(1)
    assert again.id == "d1" and again.attempts == 1
    assert lanes.finish(again, Outcome(True, "200", "http://a.example/hook"), 1).state == "delivered"
    assert [d.id for d in lanes.take_due(1)] == ["d2"]


def test_dead_head_releases_the_lane() -> None:
    lanes = LaneScheduler(RetryPolicy(initial_s=1, max_s=10, jitter=0, horizon_s=5))
    lanes.add([delivery(1), delivery(2)])
    now = 0.0
    for _ in range(20):
        due = lanes.take_due(now)
        if due and due[0].id == "d2":
            break
        for d in due:
            lanes.finish(d, Outcome(False, "connect: refused"), now)
        now += 1
    assert lanes.counters.dead == 1
    assert lanes.counters.retried >= 2
    assert due[0].id == "d2"


def test_destinations_are_bounded_separately() -> None:
    lanes = LaneScheduler(RetryPolicy(), per_destination=2, total=10)
    slow = [delivery(i, conference=f"c{i}", url="http://slow.example/") for i in range(5)]
    fast = [delivery(10 + i, conference=f"c{i}", url="http://fast.example/") for i in range(5)]
    lanes.add(slow + fast)
    started = lanes.take_due(0)
    assert sum(1 for d in started if "slow" in d.url) == 2
    assert sum(1 for d in started if "fast" in d.url) == 2
    assert lanes.take_due(0) == []                   # both destinations at their bound
    fast_one = next(d for d in started if "fast" in d.url)
    lanes.finish(fast_one, Outcome(True, "200"), 0)
    [more] = lanes.take_due(0)
    assert "fast" in more.url                        # the slow one's slots stay taken, fast moves on


def test_total_bound() -> None:
    lanes = LaneScheduler(RetryPolicy(), per_destination=8, total=3)
    lanes.add([delivery(i, conference=f"c{i}") for i in range(6)])
    assert len(lanes.take_due(0)) == 3


# -- envelopes --------------------------------------------------------------------------------


def test_telnyx_envelopes() -> None:
    c = conf(client_state="aGF2ZSBhIG5pY2UgZGF5")
    events = stamped(
        ConferenceCreated("conf_1"), ParticipantJoined("conf_1", participant_id="p1"),
        FloorChanged("conf_1", participant_id="p1"), ParticipantLeft("conf_1", participant_id="p1"),
        ConferenceEnded("conf_1", reason="all_left"),
    )
    built = [telnyx_event(e, c) for e in events]
    assert [b[0] for b in built if b] == [
        "conference.created", "conference.participant.joined", "conference.floor.changed",
        "conference.participant.left", "conference.ended",
    ]
    for event, b in zip(events, built):
        assert b is not None
        data = b[1]["data"]
        assert set(data) == {"record_type", "event_type", "id", "occurred_at", "payload"}
        assert data["record_type"] == "event"
        assert data["id"].replace("-", "") == event.event_id       # stable: the event's own id
        assert data["occurred_at"] == data["payload"]["occurred_at"]
        assert data["occurred_at"].endswith("Z") and len(data["occurred_at"]) == 27
        p = data["payload"]
        assert p["conference_id"] == "conf_1" and p["connection_id"] == "acct1"
        assert p["client_state"] == "aGF2ZSBhIG5pY2UgZGF5"
        assert {"call_control_id", "call_leg_id", "call_session_id"} <= set(p)
    assert built[1] is not None and built[1][1]["data"]["payload"]["call_control_id"] == "p1"
    assert built[4] is not None and built[4][1]["data"]["payload"]["reason"] == "all_left"
    # Events Telnyx has no webhook for
    mute, nobody = stamped(ParticipantMuteChanged("conf_1", participant_id="p1"), FloorChanged("conf_1"))
    assert telnyx_event(mute, c) is None and telnyx_event(nobody, c) is None
    [play] = stamped(PlaybackStarted("conf_1", media="https://example.com/a.wav"))
    played = telnyx_event(play, c)
    assert played is not None and played[0] == "conference.playback.started"
    assert played[1]["data"]["payload"]["media_url"] == "https://example.com/a.wav"


def test_recording_shapes() -> None:
    rec = Recording("rec_1", T0, T0 + timedelta(seconds=61.2), {"wav": "https://b.example/r.wav"})
    body = telnyx_recording_saved(conf(), rec, "2b7b0a3e-0000-4000-8000-000000000000", T0)
    p = body["data"]["payload"]
    assert body["data"]["event_type"] == "conference.recording.saved"
    assert p["recording_urls"] == {"wav": "https://b.example/r.wav"} and p["channels"] == "single"
    assert p["recording_started_at"] == "2030-01-01T12:00:00.123456Z"
    fc = freeclimb_body(conf(), "empty", recording=rec)
    assert fc["recordingDurationSec"] == 62 and fc["recordingId"] == "rec_1"
    assert "recordingUrl" not in freeclimb_body(conf(), "empty")


# -- FreeClimb status -------------------------------------------------------------------------


def statuses(events: list[DomainEvent], open_at_end: bool = False) -> list[str]:
    tracker = FreeClimbStatusTracker()
    out: list[str] = []
    for e in stamped(*events):
        out += tracker.observe(e, conference_open=open_at_end or not isinstance(e, ConferenceEnded))
    return out


def test_freeclimb_transitions_as_documented() -> None:
    c = "conf_1"
    assert statuses([ConferenceCreated(c)]) == ["empty"]
    # first participant waits for the host: populated; the host starts it: inProgress
    assert statuses([
        ConferenceCreated(c), ParticipantJoined(c, participant_id="p1", waiting=True),
        ParticipantJoined(c, participant_id="p2", role="moderator"), ConferenceStarted(c),
        ParticipantLeft(c, participant_id="p1"), ParticipantLeft(c, participant_id="p2"),
    ]) == ["empty", "populated", "inProgress", "empty"]
    # terminating an in-progress conference: empty, then terminated
    assert statuses([
        ConferenceCreated(c), ParticipantJoined(c, participant_id="p1"), ConferenceStarted(c),
        ConferenceEnded(c, reason="ended_via_api"),
    ]) == ["empty", "populated", "inProgress", "empty", "terminated"]
    # a second end (the service and the room both reporting it) adds nothing
    assert statuses([
        ConferenceCreated(c), ConferenceEnded(c, reason="ended_via_api"), ConferenceEnded(c, reason="all_left"),
        ParticipantJoined(c, participant_id="late"),
    ]) == ["empty", "terminated"]
    # terminating an empty conference: terminated only
    assert statuses([ConferenceCreated(c), ConferenceEnded(c, reason="ended_via_api")]) == ["empty", "terminated"]
    # the room closes because everyone left but the conference stays open: no terminated
    assert statuses([
        ConferenceCreated(c), ParticipantJoined(c, participant_id="p1"), ParticipantLeft(c, participant_id="p1"),
        ConferenceEnded(c, reason="all_left"),
    ], open_at_end=True) == ["empty", "populated", "inProgress", "empty"]


# -- signatures, checked by the vendors' own SDK code -----------------------------------------


def test_telnyx_sdk_verifies_our_signature() -> None:
    signer = TelnyxSigner(TelnyxSigner.generate_private_key())
    body = b'{"data":{"record_type":"event","event_type":"conference.created"}}'
    headers = signer.headers(body, int(time.time()))
    verify_webhook_signature(body.decode(), headers, signer.public_key_b64)
    with pytest.raises(WebhookVerificationError):
        verify_webhook_signature(body.decode().replace("created", "ended"), headers, signer.public_key_b64)
    other = TelnyxSigner(TelnyxSigner.generate_private_key())
    with pytest.raises(WebhookVerificationError):
        verify_webhook_signature(body.decode(), headers, other.public_key_b64)
    with pytest.raises(WebhookVerificationError):
        verify_webhook_signature(body.decode(), signer.headers(body, int(time.time()) - 600), signer.public_key_b64)


def test_freeclimb_sdk_verifies_our_signature() -> None:
    signer = FreeClimbSigner(FreeClimbSigner.generate_secret())
    body = json.dumps({"requestType": "conferenceStatus", "status": "empty"})
    header = signer.headers(body.encode(), int(time.time()))["FreeClimb-Signature"]
    assert header.startswith("t=") and ",v1=" in header
    RequestVerifier.verify_request_signature(body, header, signer.secret, 300)
    with pytest.raises(Exception, match="Unverified signature"):
        RequestVerifier.verify_request_signature(body.replace("empty", "terminated"), header, signer.secret, 300)
    with pytest.raises(Exception, match="Unverified signature"):
        RequestVerifier.verify_request_signature(body, header, "sigsec_other", 300)


# -- URL rules --------------------------------------------------------------------------------


@pytest.mark.parametrize("url, code", [
    ("ftp://example.com/x", "invalid_statusCallbackUrl"),
    ("https://user:pw@example.com/x", "invalid_statusCallbackUrl"),
    ("https://example.com/x#frag", "invalid_statusCallbackUrl"),
    ("http://127.0.0.1:8080/x", "forbidden_statusCallbackUrl"),
    ("http://[::1]/x", "forbidden_statusCallbackUrl"),
    ("http://169.254.169.254/latest/meta-data", "forbidden_statusCallbackUrl"),
    ("http://10.1.2.3/x", "forbidden_statusCallbackUrl"),
    ("http://[::ffff:192.168.1.1]/x", "forbidden_statusCallbackUrl"),
    ("http://localhost:9000/x", "forbidden_statusCallbackUrl"),
    ("http://metadata.google.internal/x", "forbidden_statusCallbackUrl"),
])
def test_refused_urls_name_the_field(url: str, code: str) -> None:
    with pytest.raises(ControlError) as err:
        validate_url("statusCallbackUrl", url, AddressPolicy())
    assert err.value.status == 400 and err.value.code == code and "statusCallbackUrl" in err.value.message


def test_allowed_urls_and_allow_list() -> None:
    assert validate_url("webhook_url", "https://hooks.example.com/a?b=c", AddressPolicy())
    assert validate_url("webhook_url", "http://93.184.216.34:8080/x", AddressPolicy())
    loop = AddressPolicy.from_config(["127.0.0.1/32"])
    assert validate_url("webhook_url", "http://127.0.0.1:8080/x", loop)
    assert validate_url("webhook_url", "http://localhost:8080/x", loop)
    with pytest.raises(ControlError):
        validate_url("webhook_url", "http://169.254.169.254/", loop)
    check_address("127.0.0.1", loop)
    with pytest.raises(ForbiddenDestination):
        check_address("127.0.0.2", loop)
    with pytest.raises(ForbiddenDestination):
        check_address("100.64.1.1", AddressPolicy())
    # IPv6 that carries an IPv4 address (mapped, 6to4, NAT64) is judged by where it leads.
    for public in ("::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808"):
        check_address(public, AddressPolicy())
    for inward in ("::ffff:127.0.0.1", "2002:7f00:1::1", "64:ff9b::a9fe:a9fe", "2002:a00:1::"):
        with pytest.raises(ForbiddenDestination):
            check_address(inward, AddressPolicy())


# -- routing ----------------------------------------------------------------------------------


def test_routing_destinations() -> None:
    accounts = {"acct1": WebhookAccountConfig(account="acct1", url="https://acct.example/h",
                                              failover_url="https://backup.example/h")}
    current = {"c": conf(status_callback_url="https://fc.example/cb")}
    router = Router(accounts, lambda cid: current["c"] if cid == "conf_1" else None)
    [created] = stamped(ConferenceCreated("conf_1"))
    out = router.route(created)
    assert [(d.form, d.url, d.failover_url) for d in out] == [
        ("telnyx", "https://acct.example/h", "https://backup.example/h"),
        ("freeclimb", "https://fc.example/cb", None),
    ]
    assert json.loads(out[1].body)["status"] == "empty"
    assert len({d.id for d in out}) == 2
    # the conference's own webhook_url wins over the account's
    current["c"] = conf(webhook_url="https://own.example/h", webhook_failover_url="https://own2.example/h")
    [joined] = stamped(ParticipantJoined("conf_1", participant_id="p1"))
    [d] = router.route(joined)
    assert (d.url, d.failover_url) == ("https://own.example/h", "https://own2.example/h")
    # unknown conference, or no account: nowhere
    [other] = stamped(ConferenceCreated("conf_2"))
    assert router.route(other) == []
    current["c"] = conf(account_id=None)
    assert router.route(joined) == []


def test_telnyx_conference_ended_once_per_session() -> None:
    from bridge.control.events import ConferenceEnded

    accounts = {"acct1": WebhookAccountConfig(account="acct1", url="https://acct.example/h")}
    router = Router(accounts, lambda cid: conf())
    emptied, deleted = stamped(ConferenceEnded("conf_1", reason="all_left"),
                               ConferenceEnded("conf_1", reason="ended_via_api"))
    assert [d.event_type for d in router.route(emptied)] == ["conference.ended"]
    assert router.route(deleted) == []                     # the room emptying already ended it
    [joined] = stamped(ParticipantJoined("conf_1", participant_id="p2"))
    router.route(joined)
    [again] = stamped(ConferenceEnded("conf_1", reason="all_left"))
    assert [d.event_type for d in router.route(again)] == ["conference.ended"]


# -- config -----------------------------------------------------------------------------------


def test_webhooks_config_defaults_and_validation() -> None:
    from bridge.config import ConfigError, parse_config

    hooks = parse_config({}).webhooks
    assert (hooks.timeout_s, hooks.retry_horizon_hours, hooks.initial_backoff_s, hooks.max_backoff_s) == (10, 24, 2, 900)
    assert hooks.allow_networks == () and hooks.enabled
    accounts = [{"id": "a"}]
    for bad, where in [
        ({"allow_networks": ["nope"]}, "allow_networks"),
        ({"initial_backoff_s": 10, "max_backoff_s": 5}, "max_backoff_s"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"accounts": [{"account": "a", "url": "http://169.254.169.254/"}]}, "accounts[a].url"),
        ({"accounts": [{"account": "a", "url": "ftp://x.example/"}]}, "accounts[a].url"),
        ({"accounts": [{"account": "zz", "url": "https://x.example/"}]}, "unknown account"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(where)):
            parse_config({"accounts": accounts, "webhooks": bad})
