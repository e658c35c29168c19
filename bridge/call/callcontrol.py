"""Telnyx call control: SIP calls to an application's users are parked until the app acts.

A call to one of ``call_control[].sip_users`` rings (180) under a ``call_control_id`` (its
participant id) and ``call.initiated`` goes to the application's webhook URL. The application
answers it (``call.answered``; until it joins a conference the caller hears silence), hangs it up,
or puts it in a conference (create from it, or join); ``call.hangup`` reports how it ended
(``hangup_cause``: ``normal_clearing``, ``originator_cancel``, ``call_rejected``, ``timeout``
when nobody answered it within ``answer_timeout_s``, ``unspecified``). A call stays under
call control in its conference: a hang-up there is reported too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bridge.call.leg import Leg
from bridge.config import CallControlAppConfig, Config
from bridge.control import events as ev
from bridge.control.call_events import CallAnswered, CallEvent, CallHangup, CallInitiated
from bridge.sip.endpoint import SipEndpoint

log = logging.getLogger("bridge.calls")


class CallControlError(Exception):
    """A call-control command that cannot be carried out; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code   # not_found | already_answered | not_answered | in_conference | refused


class CallHost(Protocol):
    """What call control needs from the call core."""

    config: Config
    endpoint: SipEndpoint
    bus: ev.EventBus
    now: float
    wall: Callable[[], datetime]

    def _answer(self, leg: Leg) -> None: ...

    def _join_by_id(self, leg: Leg, conf_id: str, role: str) -> None: ...

    def hangup(self, leg: Leg, reason: ev.LeaveReason) -> None: ...


@dataclass
class Controlled:
    leg: Leg
    app: CallControlAppConfig
    started_at: float              # unix seconds
    deadline: float | None         # media clock: unanswered until then; None once answered
    client_state: str | None = None
    answered: bool = False
    reported: bool = False         # call.hangup already published


@dataclass(frozen=True)
class CallInfo:
    call_control_id: str
    account: str
    app: str
    webhook_url: str
    webhook_failover_url: str | None
    answered: bool
    conference_id: str             # "" while not in a conference


class CallControl:
    def __init__(self, host: CallHost) -> None:
        self.host = host
        self.apps = {user: app for app in host.config.call_control for user in app.sip_users}
        self.calls: dict[str, Controlled] = {}

    def app_for(self, user: str) -> CallControlAppConfig | None:
        return self.apps.get(user)

    def park(self, leg: Leg, app: CallControlAppConfig) -> None:
        host = self.host
        host.endpoint.respond(leg.call, 180, "Ringing", now=host.now)
        c = Controlled(leg, app, host.wall().timestamp(), host.now + app.answer_timeout_s)
        self.calls[leg.leg_id] = c
        log.info("%s parked for application %s (%s)", leg.leg_id, app.name, leg.participant.caller_number)
        self._publish(CallInitiated, c)

    def holds(self, leg: Leg) -> bool:
        """An answered call under call control waits outside any room until it is joined."""
        return leg.leg_id in self.calls and not leg.in_room

    def _get(self, ccid: str, account: str) -> Controlled:
        c = self.calls.get(ccid)
        if c is None or c.app.account != account or c.leg.ended:
            raise CallControlError("not_found", f"no call {ccid!r} under call control")
        return c

    def info(self, ccid: str, account: str) -> CallInfo:
        c = self._get(ccid, account)
        return CallInfo(ccid, c.app.account, c.app.name, c.app.webhook_url, c.app.webhook_failover_url,
                        c.answered and c.leg.media is not None, c.leg.conf_id if c.leg.in_room else "")

    def answer(self, ccid: str, account: str, client_state: str | None = None) -> None:
        c = self._get(ccid, account)
        if c.answered:
            raise CallControlError("already_answered", "the call is already answered")
        c.answered, c.deadline = True, None
        if client_state is not None:
            c.client_state = client_state
        self.host._answer(c.leg)
        if c.leg.ended:   # the offer could not be answered (488); call.hangup was reported
            raise CallControlError("refused", "the caller's media offer could not be answered")
        self._publish(CallAnswered, c)

    def hangup(self, ccid: str, account: str, client_state: str | None = None) -> None:
        c = self._get(ccid, account)
        if client_state is not None:
            c.client_state = client_state
        cause = "normal_clearing" if c.answered else "call_rejected"
        self._report(c, cause, "callee", None if c.answered else "480")
        self.host.hangup(c.leg, "kicked")

    def join(self, ccid: str, account: str, conf_id: str, role: str = "member", muted: bool = False,
             client_state: str | None = None) -> None:
        c = self._get(ccid, account)
        if not c.answered or c.leg.media is None:
            raise CallControlError("not_answered", "answer the call before putting it in a conference")
        if c.leg.in_room:
            raise CallControlError("in_conference", f"the call is already in {c.leg.conf_id}")
        if client_state is not None:
            c.client_state = client_state
        c.leg.participant.muted = muted
        self.host._join_by_id(c.leg, conf_id, role)
        if not c.leg.in_room:
            raise CallControlError("refused", "the conference refused the call (full, locked or over)")

    def dropped(self, leg: Leg, reason: ev.LeaveReason) -> None:
        """The core dropped a leg: report the hang-up if it was ours and nobody reported it yet."""
        c = self.calls.pop(leg.leg_id, None)
        if c is None or c.reported:
            return
        if reason == "hangup":
            self._report(c, "normal_clearing" if c.answered else "originator_cancel", "caller", None)
        elif reason in ("conference_ended", "kicked", "shutdown", "left_by_keypad"):
            self._report(c, "normal_clearing", "callee", None)
        else:
            self._report(c, "unspecified", "unknown", None)

    def timers(self, now: float) -> None:
        """Parked calls nobody answered in time: 480, call.hangup with hangup_cause timeout."""
        for c in [c for c in self.calls.values() if c.deadline is not None and now >= c.deadline]:
            log.info("%s: not answered within %.0f s; hanging up", c.leg.leg_id, c.app.answer_timeout_s)
            self._report(c, "timeout", "callee", "480")
            self.host.hangup(c.leg, "hangup")
            self.calls.pop(c.leg.leg_id, None)

    def _report(self, c: Controlled, cause: str, source: str, sip: str | None) -> None:
        c.reported = True
        self._publish(CallHangup, c, hangup_cause=cause, hangup_source=source, sip_hangup_cause=sip,
                      ended_at=self.host.wall().timestamp())

    def _publish(self, cls: type[CallEvent], c: Controlled, **extra: Any) -> None:
        leg, p = c.leg, c.leg.participant
        self.host.bus.publish(cls(
            "", call_control_id=leg.leg_id, account_id=c.app.account, app=c.app.name,
            webhook_url=c.app.webhook_url, webhook_failover_url=c.app.webhook_failover_url,
            client_state=c.client_state, caller=p.caller_number, callee=leg.call.room or "",
            caller_name=p.caller_name, started_at=c.started_at, **extra))
