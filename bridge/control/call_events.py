"""Domain events of calls under Telnyx call control (``bridge/call/callcontrol.py``).

They are not about a conference: ``conference_id`` is "" (the bus counts them together), and
each carries where its webhooks go (the application's URLs) so routing needs no lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.control.events import _NAMES, DomainEvent


@dataclass(frozen=True)
class CallEvent(DomainEvent):
    call_control_id: str = ""
    account_id: str = ""
    app: str = ""                 # the call-control application's name (Telnyx connection_id)
    webhook_url: str = ""
    webhook_failover_url: str | None = None
    client_state: str | None = None
    caller: str = ""              # from
    callee: str = ""              # to (the application's SIP user)
    caller_name: str = ""
    started_at: float = 0.0       # unix seconds: when the INVITE came (or went, outgoing)
    direction: str = "incoming"   # incoming (parked) | outgoing (POST /v2/calls)


@dataclass(frozen=True)
class CallInitiated(CallEvent):
    """An incoming call is parked, waiting for the application."""


@dataclass(frozen=True)
class CallAnswered(CallEvent):
    """The application answered it."""


@dataclass(frozen=True)
class CallHangup(CallEvent):
    # call_rejected | normal_clearing | originator_cancel | timeout | unspecified
    hangup_cause: str = "normal_clearing"
    hangup_source: str = "unknown"          # caller | callee | unknown
    sip_hangup_cause: str | None = None      # the SIP status, as text
    ended_at: float = 0.0


_NAMES.update({CallInitiated: "call.initiated", CallAnswered: "call.answered", CallHangup: "call.hangup"})
