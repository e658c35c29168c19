"""Telnyx ``call.*`` webhooks for calls under call control: bodies and their one delivery.

The envelope is the conference events' (``envelopes.telnyx_body``). Payload: ``call_control_id``,
``call_leg_id``, ``call_session_id`` (all the call's id), ``connection_id`` (the application's
name), ``client_state``, ``from``, ``to``, ``direction`` (``incoming``, or ``outgoing`` for
``POST /v2/calls`` legs), ``state``,
``caller_id_name``, ``start_time``; ``call.hangup`` adds ``hangup_cause``, ``hangup_source``,
``sip_hangup_cause`` and ``end_time``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..control.call_events import CallAnswered, CallEvent, CallHangup, CallInitiated
from .envelopes import delivery_id, encode, telnyx_body, telnyx_time
from .model import Delivery

STATES = {CallInitiated: "parked", CallAnswered: "answered", CallHangup: "hangup"}


def _time(ts: float) -> str:
    return telnyx_time(datetime.fromtimestamp(ts, timezone.utc))


def _state(event: CallEvent) -> str:
    # An outgoing call is "bridging" while it rings (Telnyx's state for a dialled leg).
    if isinstance(event, CallInitiated) and event.direction == "outgoing":
        return "bridging"
    return STATES.get(type(event), "parked")


def call_payload(event: CallEvent) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "call_control_id": event.call_control_id,
        "call_leg_id": event.call_control_id,
        "call_session_id": event.call_control_id,
        "connection_id": event.app,
        "client_state": event.client_state,
        "from": event.caller,
        "to": event.callee,
        "direction": event.direction,
        "state": _state(event),
        "caller_id_name": event.caller_name,
        "start_time": _time(event.started_at),
    }
    if isinstance(event, CallHangup):
        payload.update(hangup_cause=event.hangup_cause, hangup_source=event.hangup_source,
                       sip_hangup_cause=event.sip_hangup_cause, end_time=_time(event.ended_at))
    return payload


def call_delivery(event: CallEvent) -> Delivery:
    """The one delivery of a call event: to its application's webhook URL, lane per call."""
    body = telnyx_body(event.name, delivery_id(event.event_id), event.at, call_payload(event))
    created = event.at.timestamp()
    return Delivery(
        id=body["data"]["id"], conference_id=f"call:{event.call_control_id}", account_id=event.account_id,
        event_id=event.event_id, event_type=event.name, form="telnyx", url=event.webhook_url,
        failover_url=event.webhook_failover_url, body=encode(body), created_at=created, next_attempt_at=created,
    )
