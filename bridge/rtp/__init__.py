"""Pure RTP/RTCP: packets, per-leg sessions, adaptive jitter buffer, RFC 4733 DTMF."""

from .dtmf4733 import DtmfEvent, DtmfReceiver, build_dtmf_packets
from .jitter import Empty, Frame, JitterBuffer, Missing, PlayoutItem
from .packet import RtpError, RtpPacket, build_rtp_header, is_rtcp
from .rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SenderReport,
    SourceDescription,
    build_compound,
    parse_rtcp,
)
from .session import RtpSession

__all__ = [
    "DtmfEvent", "DtmfReceiver", "build_dtmf_packets", "Empty", "Frame", "JitterBuffer", "Missing",
    "PlayoutItem", "RtpError", "RtpPacket", "build_rtp_header", "is_rtcp", "Bye", "ReceiverReport",
    "ReportBlock", "RtcpError", "SenderReport", "SourceDescription", "build_compound", "parse_rtcp",
    "RtpSession",
]
