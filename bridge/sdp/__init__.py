"""Pure SDP parsing/serialisation and RFC 3264 offer/answer."""

from .errors import NegotiationError, SdpError
from .model import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    parse_sdp,
)
from .negotiate import NegotiatedMedia, accept_answer, answer_offer, build_offer

__all__ = [
    "Attribute", "Connection", "MediaDescription", "Origin", "RtpMap", "SdpError",
    "SessionDescription", "parse_sdp", "NegotiatedMedia", "NegotiationError",
    "accept_answer", "answer_offer", "build_offer",
]
