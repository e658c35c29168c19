"""Telnyx ``call.*`` webhooks for legs dialled by ``POST /v2/calls``.

A dialled leg is an ordinary dial-out participant; this watcher turns its domain events into
the call events Telnyx sends for an outbound call: ``call.initiated`` (direction
``outgoing``, state ``bridging``) when the INVITE goes out, ``call.answered`` when it joins the
room, ``call.hangup`` when it is rejected (busy, no answer, canceled ...) or leaves. It is a bus
subscriber: events it publishes are drained in the same pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.control import events as ev
from bridge.control.call_events import CallAnswered, CallEvent, CallHangup, CallInitiated

# participant.rejected reason -> (hangup_cause, hangup_source)
_CAUSES = {
    "busy": ("user_busy", "callee"),
    "declined": ("call_rejected", "callee"),
    "not_found": ("not_found", "callee"),
    "no_answer": ("timeout", "caller"),       # our own no-answer timer (or a 480/408)
    "canceled": ("originator_cancel", "caller"),
    "trunk_auth_failed": ("call_rejected", "callee"),
    "unreachable": ("unspecified", "unknown"),
}
# participant.left reason -> hangup_source (who hung up)
_SOURCES = {"hangup": "callee", "kicked": "caller", "conference_ended": "caller", "shutdown": "caller"}


@dataclass(frozen=True)
class DialedCall:
    account: str
    connection_id: str              # the trunk's name
    webhook_url: str
    webhook_failover_url: str | None
    client_state: str | None
    from_number: str
    to_number: str
    started_at: float               # unix seconds


class DialedCalls:
    def __init__(self, publish: Callable[[ev.DomainEvent], object], wall_seconds: Callable[[], float],
                 limit: int = 10_000) -> None:
        self._publish = publish
        self._wall = wall_seconds
        self._limit = limit
        self._calls: dict[str, DialedCall] = {}
        self._answered: set[str] = set()

    def watch(self, call_control_id: str, call: DialedCall) -> None:
        """Report ``call_control_id`` (the participant id) from now on; ``call.initiated`` now."""
        if len(self._calls) >= self._limit:     # bounded: a leak here would grow forever
            oldest = next(iter(self._calls))
            self._forget(oldest)
        self._calls[call_control_id] = call
        self._emit(CallInitiated, call_control_id, call)

    def on_event(self, event: ev.DomainEvent) -> None:
        if not isinstance(event, ev.ParticipantEvent):
            return
        pid = event.participant_id
        call = self._calls.get(pid)
        if call is None:
            return
        if isinstance(event, ev.ParticipantJoined) and pid not in self._answered:
            self._answered.add(pid)
            self._emit(CallAnswered, pid, call)
        elif isinstance(event, ev.ParticipantRejected):
            cause, source = _CAUSES.get(event.reason, ("unspecified", "unknown"))
            if event.reason == "no_answer" and event.sip_status in (408, 480):
                cause, source = "no_answer", "callee"       # the far end said so (480/408)
            self._hangup(pid, call, cause, source, event.sip_status)
        elif isinstance(event, ev.ParticipantLeft):
            self._hangup(pid, call, "normal_clearing", _SOURCES.get(event.reason, "unknown"), None)

    def _hangup(self, pid: str, call: DialedCall, cause: str, source: str, sip: int | None) -> None:
        self._emit(CallHangup, pid, call, hangup_cause=cause, hangup_source=source,
                   sip_hangup_cause=str(sip) if sip is not None else None, ended_at=self._wall())
        self._forget(pid)

    def _forget(self, pid: str) -> None:
        self._calls.pop(pid, None)
        self._answered.discard(pid)

    def _emit(self, cls: type[CallEvent], pid: str, call: DialedCall, **extra: Any) -> None:
        self._publish(cls(
            "", call_control_id=pid, account_id=call.account, app=call.connection_id,
            webhook_url=call.webhook_url, webhook_failover_url=call.webhook_failover_url,
            client_state=call.client_state, caller=call.from_number, callee=call.to_number,
            started_at=call.started_at, direction="outgoing", **extra))
