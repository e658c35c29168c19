"""Pure (sans-IO) SIP: parse/serialise, transactions, dialogs and the UAS endpoint."""

from .endpoint import ALLOW, SipEndpoint
from .events import Call, CallConfirmed, CallEnded, IncomingCall, Info, ReInvite, SipEvent, Update
from .flow import Addr, Flow, Outgoing
from .message import (
    FramingError, Headers, PartialRequest, SipParseError, SipRequest, SipResponse, StreamFramer, parse_message,
)
from .uri import SipUri, parse_uri

__all__ = [
    "ALLOW", "Addr", "Call", "CallConfirmed", "CallEnded", "Flow", "FramingError", "Headers", "IncomingCall",
    "Info", "Outgoing", "PartialRequest", "ReInvite", "SipEndpoint", "SipEvent", "SipParseError", "SipRequest",
    "SipResponse", "SipUri", "StreamFramer", "Update", "parse_message", "parse_uri",
]
