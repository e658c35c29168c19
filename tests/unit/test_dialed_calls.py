"""Telnyx call.* events for POST /v2/calls legs, from the dial-out participant's domain events."""

from __future__ import annotations

import pytest

from bridge.call.dialed_calls import DialedCall, DialedCalls
from bridge.control import events as ev
from bridge.control.call_events import CallAnswered, CallHangup, CallInitiated
from bridge.vendors.telnyx.dial import parse_dial
from bridge.vendors.telnyx.validation import TelnyxError
from bridge.webhooks.call_envelopes import call_payload

CALL = DialedCall("acct1", "lab", "https://app.example/hook", None, "eA==", "+15550000", "15551234", 1.0e9)


def _watched() -> tuple[DialedCalls, list[ev.DomainEvent]]:
    out: list[ev.DomainEvent] = []
    calls = DialedCalls(out.append, lambda: 2.0e9)
    calls.watch("part_1", CALL)
    return calls, out


def test_answered_then_left_is_initiated_answered_hangup() -> None:
    calls, out = _watched()
    calls.on_event(ev.ParticipantJoined("conf_a", participant_id="part_1"))
    calls.on_event(ev.ParticipantJoined("conf_a", participant_id="part_2"))      # not ours
    calls.on_event(ev.ParticipantLeft("conf_a", participant_id="part_1", reason="hangup"))
    calls.on_event(ev.ParticipantLeft("conf_a", participant_id="part_1", reason="hangup"))  # once only
    assert [type(e) for e in out] == [CallInitiated, CallAnswered, CallHangup]
    first, hangup = call_payload(out[0]), call_payload(out[2])   # type: ignore[arg-type]
    assert (first["direction"], first["state"], first["client_state"]) == ("outgoing", "bridging", "eA==")
    assert (hangup["hangup_cause"], hangup["hangup_source"]) == ("normal_clearing", "callee")


@pytest.mark.parametrize("reason,status,cause", [
    ("busy", 486, "user_busy"), ("no_answer", 487, "timeout"), ("no_answer", 480, "no_answer"),
    ("canceled", 487, "originator_cancel"), ("declined", 603, "call_rejected"), ("not_found", 404, "not_found"),
    ("failed", None, "unspecified"),
])
def test_rejections_map_to_telnyx_hangup_causes(reason: str, status: int | None, cause: str) -> None:
    calls, out = _watched()
    calls.on_event(ev.ParticipantRejected("conf_a", participant_id="part_1", reason=reason, sip_status=status))
    hangup = out[-1]
    assert isinstance(hangup, CallHangup) and hangup.hangup_cause == cause
    assert hangup.sip_hangup_cause == (str(status) if status else None)


def test_dial_accepts_webhook_url_and_client_state_and_checks_them() -> None:
    base = {"connection_id": "lab", "to": "1", "from": "1", "conference_config": {"id": "c"}}
    ok = parse_dial({**base, "webhook_url": "https://app.example/h", "client_state": "eA=="})
    assert (ok.webhook_url, ok.client_state) == ("https://app.example/h", "eA==")
    for bad, pointer in [({"webhook_url": "ftp://x"}, "/webhook_url"), ({"client_state": "!!"}, "/client_state")]:
        with pytest.raises(TelnyxError) as err:
            parse_dial({**base, **bad})
        assert err.value.status == 422 and err.value.pointer == pointer
