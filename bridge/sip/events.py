"""The app-facing handle (Call) and the events the endpoint emits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .dialog import Dialog
from .flow import Flow
from .message import SipRequest

CallState = Literal["early", "confirmed", "terminated"]
EndReason = Literal["bye", "cancel", "ack_timeout", "timeout", "local", "error"]


@dataclass(eq=False)
class Call:
    """One incoming call; identity is the object (a Call-ID may repeat across calls)."""

    dialog: Dialog = field(repr=False)
    caller_display: str | None
    caller_uri: str
    caller_user: str | None
    room: str | None  # Request-URI user part, %-decoded
    flow: Flow
    state: CallState = "early"
    user_data: object = None

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    @property
    def local_tag(self) -> str:
        return self.dialog.local_tag

    @property
    def remote_tag(self) -> str:
        return self.dialog.remote_tag

    @property
    def remote_target(self) -> str:
        return str(self.dialog.remote_target)

    @property
    def route_set(self) -> list[str]:
        return list(self.dialog.route_set)

    @property
    def caller(self) -> tuple[str | None, str | None]:
        return (self.caller_display, self.caller_user)


@dataclass
class IncomingCall:
    call: Call
    request: SipRequest
    offer: bytes | None  # None: late offer, put an offer in the 200 and get the answer in the ACK


@dataclass
class CallConfirmed:
    call: Call
    answer: bytes | None  # ACK body (late offer answer) or None
    initial: bool = True  # False for the ACK of a re-INVITE's 2xx


@dataclass
class ReInvite:
    call: Call
    request: SipRequest
    offer: bytes | None


@dataclass
class Update:
    call: Call
    request: SipRequest
    offer: bytes | None


@dataclass
class Info:
    call: Call
    content_type: str
    body: bytes


@dataclass
class CallEnded:
    call: Call
    reason: EndReason
    status: int | None = None




@dataclass
class CallProgress:
    """A provisional response (180, 183...) to an outgoing INVITE; ``body`` is early-media SDP."""
    call: Call
    status: int
    body: bytes | None


@dataclass
class CallAnswered:
    """An outgoing call was answered (we have ACKed): ``answer`` is the 2xx's SDP."""
    call: Call
    answer: bytes | None


@dataclass
class CallFailed:
    """An outgoing call got no answer: busy, declined, unreachable, timed out or cancelled.
    ``answered``: a 2xx crossed our CANCEL; the dialog exists and must be ended with BYE."""
    call: Call
    status: int
    reason: str
    answered: bool = False


SipEvent = IncomingCall | CallConfirmed | ReInvite | Update | Info | CallEnded | CallProgress | CallAnswered | CallFailed
