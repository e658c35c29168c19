"""A SIP leg: the connection state of one participant who called in (or, later, was called).

The participant record (``bridge.control.participants``) says who the person is and what
they may hear and say; the leg says how their audio gets here: the SIP call, the
negotiated SDP, the RTP session and the transport. Helpers here are pure functions of SDP.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from bridge_codecs.base import Decoder

from bridge.call.ports import LegTransport
from bridge.config import Config
from bridge.control import ivr as ivrmod
from bridge.control.model import Conference
from bridge.control.participants import Participant
from bridge.media.dtmf_detect import InbandDtmfDetector
from bridge.media.room import Room
from bridge.rtp.packet import RtpError, RtpPacket
from bridge.rtp.session import RtpSession
from bridge.sdp.negotiate import NegotiatedMedia, NegotiationError, answer_offer, build_offer
from bridge.sip.endpoint import Call

FRAME_MS = 20
log = logging.getLogger("bridge.calls")


@dataclass
class Leg:
    participant: Participant
    call: Call
    advertised_host: str                # our address as the caller sees it (SDP c=)
    codecs: list[str]                   # what we offer / accept, in preference order
    offer: bytes | None = None          # the INVITE's offer, answered once media is bound
    transport: LegTransport | None = None
    session: RtpSession | None = None
    room_port: Any = None               # what rooms pop from and packetise into
    media: NegotiatedMedia | None = None
    local_sdp_session: int = field(default_factory=lambda: random.randrange(1, 2**31))
    sdp_version: int = 1
    pending_offer: bytes | None = None  # our offer when the INVITE had none (late offer)
    answer_due: float | None = None     # ringing: answer at this time
    answered_at: float = 0.0
    ended: bool = False
    access: bool = False   # dialled the access number: the IVR asks for the conference code
    encoder_opts: dict[str, Any] = field(default_factory=dict)
    in_room: bool = False
    in_lobby: bool = False
    ivr: ivrmod.Ivr | None = None
    ivr_token: int = 0
    lobby_then_hangup: bool = False     # a refusal prompt is playing in the lobby
    inband: InbandDtmfDetector | None = None    # G.711 callers without telephone-event
    inband_decoder: Decoder | None = None
    trunk: bool = False     # a cascade trunk between two nodes' parts of a room (cascade.py)
    srtp: str | None = None             # the SRTP policy of the room the R-URI named; None: sip.srtp

    def srtp_refusal(self, conf: Conference | None) -> str | None:
        """The prompt for a SIP caller whose media falls short of ``conf``'s SRTP policy, else None.
        Only reachable through the access number (a direct call is judged by its offer, and gets
        488); only ``required`` is enforced here, since an encrypted call is never downgraded."""
        if conf is None or conf.srtp != "required" or self.participant.kind != "sip_inbound":
            return None
        return "encryption_required" if self.media is not None and self.media.srtp is None else None

    @property
    def leg_id(self) -> str:
        return self.participant.participant_id

    @property
    def conf_id(self) -> str:
        return self.participant.conference_id

    @property
    def log_extra(self) -> dict[str, str]:
        """Structured fields for log lines about this call (the JSON log format shows them)."""
        return {"conference_id": self.conf_id, "participant_id": self.leg_id, "call_id": self.call.call_id}

    # RoomConnection: what a room needs to seat this leg.
    @property
    def codec(self) -> str:
        assert self.media is not None
        return self.media.codec

    @property
    def payload_type(self) -> int:
        assert self.media is not None
        return self.media.payload_type


def usable(media: NegotiatedMedia) -> NegotiatedMedia:
    """What the negotiator accepts but these sockets cannot use (they are IPv4)."""
    if ":" in media.remote_host:
        raise NegotiationError("IPv6 media addresses are not supported by this bridge", 301)
    return media


def negotiate(leg: Leg, offer: bytes, codecs: list[str], srtp: str) -> NegotiatedMedia:
    """Our answer to an offer for this leg (its transport bound), under the SRTP policy."""
    assert leg.transport is not None
    media = usable(answer_offer(offer, codecs, leg.advertised_host, leg.transport.port, leg.local_sdp_session,
                                leg.sdp_version, srtp=srtp))
    if leg.media is not None and (media.srtp is None) != (leg.media.srtp is None):
        # The room port was built for one or the other (an SRTP leg stays out of the lanes).
        raise NegotiationError("switching SRTP on or off mid-call is not supported", 302)
    return media


def our_offer(leg: Leg, codecs: list[str], srtp: str) -> bytes:
    """Our offer for this leg (late offer, offer-less re-INVITE) under the SRTP policy."""
    assert leg.transport is not None
    return build_offer(codecs, leg.advertised_host, leg.transport.port, leg.local_sdp_session, leg.sdp_version,
                       srtp=srtp)


def rtp_remote(media: NegotiatedMedia) -> dict[str, Any]:
    """What the RTP session needs to know about the far end, from the negotiated SDP
    (the same keywords for ``RtpSession(...)`` and ``RtpSession.update_remote(...)``)."""
    return {
        "codec_pt": media.payload_type,
        "codec_clock": media.clock_rate,
        "frame_ticks": media.clock_rate * FRAME_MS // 1000,
        "dtmf_pt": media.dtmf_pt,
        "dtmf_clock": media.dtmf_clock_rate,
        "remote_addr": (media.remote_host, media.remote_port) if media.remote_port else None,
    }


def parse_info_dtmf(content_type: str, body: bytes) -> str | None:
    """Digit from a SIP INFO body: application/dtmf-relay (Signal=5) or application/dtmf (5)."""
    ctype = content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8", "replace").strip()
    if ctype == "application/dtmf-relay":
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip().lower() == "signal":
                text = value.strip()
                break
        else:
            return None
    elif ctype != "application/dtmf":
        return None
    if text == "10":
        return "*"
    if text == "11":
        return "#"
    if len(text) == 1 and text.upper() in "0123456789*#ABCD":
        return text.upper()
    return None


def advertised_host(config: Config, request_host: str) -> str:
    """Our address as the far end should see it (SDP c=): the configured one, else the address
    the caller reached us at (an IP literal in the Request-URI), else the bound RTP address."""
    if config.sip.advertise_host:
        return config.sip.advertise_host
    host = request_host.strip("[]")
    try:
        if host and not ipaddress.ip_address(host).is_unspecified:
            return host
    except ValueError:
        pass
    bound = config.rtp.host
    return bound if bound not in ("0.0.0.0", "::") else "127.0.0.1"


def warning_header(text: str, code: int = 399) -> tuple[str, str]:
    """An RFC 3261 §20.43 Warning naming what we refused (quoted text, printable only)."""
    clean = "".join(ch if ch.isprintable() and ch not in '"\\' else "?" for ch in text)[:200]
    return ("Warning", f'{code} tutti-bridge "{clean}"')


def inband_digits(leg: Leg, data: bytes) -> list[str]:
    """In-band DTMF in one RTP packet of a G.711 caller that offered no telephone-event."""
    assert leg.media is not None and leg.inband is not None and leg.inband_decoder is not None
    try:
        packet = RtpPacket.parse(data)
    except RtpError:
        return []  # the session has already counted it as garbage
    if packet.payload_type != leg.media.payload_type or not packet.payload:
        return []
    return leg.inband.process(leg.inband_decoder.decode(packet.payload))


def jitter_min_ms(config: Config, codec: str) -> int:
    """rtp.jitter_min_ms; one frame more for Opus callers with media.opus_fec_lookahead_ms, so
    a lost packet's successor (carrying its FEC) is buffered when it is due."""
    lookahead = config.media.opus_fec_lookahead_ms if codec == "opus" else 0
    return max(config.rtp.jitter_min_ms, 20) + lookahead if lookahead else config.rtp.jitter_min_ms


def loss_depth(config: Config, codec: str) -> bool:
    """Does this leg's jitter buffer hold a frame more while it sees losses? media.opus_loss_depth:
    Opus callers, whose next packet carries the lost one's in-band FEC; media.g711_loss_depth:
    G.711 callers, whose concealment then bridges the gap towards the next packet."""
    if codec == "opus":
        return config.media.opus_loss_depth
    return codec in ("PCMU", "PCMA") and config.media.g711_loss_depth


def encoder_options(config: Config, codec: str, fmtp: str = "") -> dict[str, Any]:
    """Encoder settings a leg's codec gets from config.yaml (Opus bitrate, complexities, loss).
    An Opus peer's ``maxaveragebitrate`` (its fmtp, RFC 7587 6.1: the most it wants to receive)
    caps the bitrate we send it."""
    if codec == "opus":
        bitrate = config.media.opus_bitrate
        cap = opus_max_average_bitrate(fmtp)
        if cap is not None:
            bitrate = min(bitrate, cap)
        return {"bitrate": bitrate, "complexity": config.media.opus_complexity,
                "talker_complexity": config.media.opus_talker_complexity,
                "packet_loss": config.media.opus_expected_loss}
    return {}


def opus_max_average_bitrate(fmtp: str) -> int | None:
    """``maxaveragebitrate`` of an Opus fmtp, bounded to what libopus encodes (6-510 kbit/s);
    None when absent or not a number."""
    for param in fmtp.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "maxaveragebitrate" and value.strip().isdigit():
            return max(6000, min(510000, int(value.strip())))
    return None


def take_rtcp(leg: Leg, room: Room | None, data: bytes, addr: tuple[str, int], now: float) -> None:
    """An RTCP packet from the leg into its session; a receiver report's loss figure on to the
    leg's room (an Opus listener's encode plans for the loss it reports, media.opus_expected_loss)."""
    session = leg.session
    if session is None:
        return
    seen = session.rtcp_received
    session.receive_rtcp(data, addr, now)
    # Each accepted compound packet starts with its SR or RR (RFC 3550 6.1): one report (an SR
    # without a block for us repeats the last figure: the peer heard nothing new from us).
    fraction = session.remote_fraction_lost
    if session.rtcp_received != seen and fraction is not None and room is not None:
        room.report_loss(leg.leg_id, fraction)


def leg_housekeeping(leg: Leg, now: float, inactivity_timeout_s: float) -> bool:
    """Once a second: send the leg's RTCP report; True when no RTP came for the inactivity
    timeout (a caller on hold may stay silent)."""
    session = leg.session
    if session is None or leg.transport is None:
        return False
    if session.remote_addr is not None:
        report = session.rtcp_report(now)
        if report:
            host, port = session.remote_addr
            # remote_rtcp_port is in range: the SDP check refuses RTP ports above 65534.
            leg.transport.send_rtcp(report, (host, leg.media.remote_rtcp_port if leg.media else port + 1))
    last = session.last_received if session.last_received is not None else leg.answered_at
    return not leg.participant.on_hold and now - last > inactivity_timeout_s


def check_unconfirmed(unconfirmed: dict[str, Leg], now: float) -> None:
    """The reflection bound, each tick: legs whose far end answered, or whose unconfirmed sending
    time ran out (their RTP pauses until the far end is heard), leave ``unconfirmed``."""
    for leg in list(unconfirmed.values()):
        session = leg.session
        if session is None or session.confirmed or session.check_unconfirmed(now):
            unconfirmed.pop(leg.leg_id, None)
            if session is not None and not session.confirmed:
                log.info("%s: nothing received from %s; RTP paused until it answers", leg.leg_id,
                         session.remote_addr, extra=leg.log_extra)
