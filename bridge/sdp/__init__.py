"""Pure SDP parsing/serialisation and RFC 3264 offer/answer."""

from .model import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    parse_sdp,
)
from .negotiate import NegotiatedMedia, NegotiationError, accept_answer, answer_offer, build_offer

__all__ = [
    "Attribute", "Connection", "MediaDescription", "Origin", "RtpMap", "SdpError",
    "SessionDescription", "parse_sdp", "NegotiatedMedia", "NegotiationError",
    "accept_answer", "answer_offer", "build_offer",
]
