"""RFC 3264 offer/answer for the bridge's single audio stream.

We answer exactly one audio codec (the first of the OFFERER's list that the
room allows) plus one telephone-event, reject every other m= line with port 0
(keeping count and order), and mirror the offered direction. Everything the
media path will use is validated first (limits.py): a bad value is a 488 with
a Warning naming the field, never a surprise in the media tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bridge.rtp import srtp as srtpmod

from . import limits
from .errors import NegotiationError
from .model import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    parse_sdp,
)

SUPPORTED_CODECS = ("PCMU", "PCMA", "G722", "opus")
# RTP clock and channel count we put in our own rtpmap lines.
_CODEC_RTPMAP: dict[str, tuple[int, int]] = {
    "PCMU": (8000, 1), "PCMA": (8000, 1), "G722": (8000, 1), "opus": (48000, 2),
}
_STATIC_PT = {"PCMU": 0, "PCMA": 8, "G722": 9}
OPUS_OFFER_PT = 111
# telephone-event PTs we offer, per clock rate.
_DTMF_OFFER_PT = {8000: 101, 48000: 110}
_AUDIO_PROTOS = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF")
_SECURE_PROTOS = ("RTP/SAVP", "RTP/SAVPF")
_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
# We mix and send mono; we also prefer to receive mono (stereo=0).
OPUS_ANSWER_FMTP = "useinbandfec=1;stereo=0;sprop-stereo=0"


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    codec: str                 # canonical name: "PCMU", "PCMA", "G722" or "opus"
    payload_type: int
    clock_rate: int            # RTP clock (G722: 8000, opus: 48000)
    channels: int
    fmtp: str                  # the REMOTE side's fmtp for the codec ("" if none)
    dtmf_pt: int | None
    dtmf_clock_rate: int | None
    remote_host: str
    remote_port: int
    ptime: int                 # remote's packetisation in ms (default 20)
    offer_direction: str       # the remote's direction
    on_hold: bool              # remote is sendonly/inactive or c=0.0.0.0: do not send
    answer_sdp: bytes          # our answer (b"" from accept_answer)
    remote_rtcp_port: int = 0  # a=rtcp if given, else remote_port + 1 (we never answer rtcp-mux)
    srtp: srtpmod.SrtpKeys | None = None   # SDES keys when the stream is SRTP


def _canonical(name: str) -> str | None:
    for codec in SUPPORTED_CODECS:
        if codec.lower() == name.lower():
            return codec
    return None


def _choose_codec(m: MediaDescription, allowed: Sequence[str]) -> tuple[str, int, RtpMap] | None:
    maps = m.rtpmaps()
    allowed_lower = {a.lower() for a in allowed}
    for pt in m.payload_types():
        rtpmap = maps.get(pt)
        if rtpmap is None:
            continue
        codec = _canonical(rtpmap.encoding)
        if codec is not None and codec.lower() in allowed_lower and limits.usable_codec_pt(codec, pt, rtpmap):
            return codec, pt, rtpmap
    return None


def _choose_dtmf(m: MediaDescription, clock_rate: int, codec_pt: int) -> tuple[int, int] | None:
    """Offered telephone-event at the codec's clock if present, else the first usable one."""
    events = [(pt, rm.clock_rate) for pt, rm in m.rtpmaps().items()
              if rm.encoding.lower() == "telephone-event" and pt in m.payload_types()
              and limits.usable_dtmf_pt(pt, rm.clock_rate, codec_pt)]
    events.sort(key=lambda e: m.payload_types().index(e[0]))
    for pt, rate in events:
        if rate == clock_rate:
            return pt, rate
    return events[0] if events else None


def _offered_names(sd: SessionDescription) -> list[str]:
    names: list[str] = []
    for m in sd.media:
        if m.media != "audio":
            continue
        maps = m.rtpmaps()
        for pt in m.payload_types():
            rm = maps.get(pt)
            name = rm.encoding if rm else f"PT{pt}"
            if name.lower() != "telephone-event" and name not in names:
                names.append(name)
    return names


def _ptime(sd: SessionDescription, m: MediaDescription, codec: str) -> int:
    return limits.ptime(codec, m.attribute("ptime") or sd.attribute("ptime"))


def _remote(sd: SessionDescription, m: MediaDescription, what: str) -> tuple[str, bool]:
    """(validated media host, is the RFC 2543 null-address hold)."""
    conn = sd.media_connection(m)
    if conn is None:
        raise NegotiationError(f"{what} has no c= line for the audio stream", 307)
    if conn.nettype != "IN":
        raise NegotiationError(f"c= network type {conn.nettype[:8]!r} not supported", 300)
    return limits.media_host(conn.addrtype, conn.address), conn.is_null


def _usable_stream(m: MediaDescription) -> bool:
    return m.media == "audio" and m.port != 0 and m.proto.upper() in _AUDIO_PROTOS


def _srtp_choice(m: MediaDescription, policy: str) -> tuple[srtpmod.CryptoLine | None, str | None]:
    """(the offered crypto line we take, or None for plain RTP; reason the stream is refused).

    RTP/SAVP needs a usable a=crypto; with ``required`` a plain RTP/AVP offer is refused;
    with ``optional`` an RTP/AVP offer carrying a=crypto (RFC 8643 best effort) gets SRTP."""
    secure = m.proto.upper() in _SECURE_PROTOS
    crypto = srtpmod.pick_crypto([a.value or "" for a in m.attributes if a.name == "crypto"])
    if secure and policy == "off":
        return None, f"{m.proto} offered but SRTP is off here"
    if secure and crypto is None:
        return None, f"{m.proto} offered without a usable a=crypto ({srtpmod.SUITE} required)"
    if not secure and policy == "required":
        return None, f"SRTP required: offer is plain {m.proto} (offer RTP/SAVP with a=crypto {srtpmod.SUITE})"
    if not secure and policy == "off":
        return None, None
    return crypto, None


def _addrtype(host: str) -> str:
    return "IP6" if ":" in host else "IP4"


def _audio_lines(codec: str, pt: int, dtmf: tuple[int, int] | None) -> list[Attribute]:
    clock, channels = _CODEC_RTPMAP[codec]
    spec = f"{codec}/{clock}" + (f"/{channels}" if channels > 1 else "")
    attrs = [Attribute("rtpmap", f"{pt} {spec}")]
    if codec == "opus":
        attrs.append(Attribute("fmtp", f"{pt} {OPUS_ANSWER_FMTP}"))
    if dtmf is not None:
        attrs.append(Attribute("rtpmap", f"{dtmf[0]} telephone-event/{dtmf[1]}"))
        attrs.append(Attribute("fmtp", f"{dtmf[0]} 0-16"))
    return attrs


def _local_session(local_host: str, session_id: int, session_version: int) -> SessionDescription:
    return SessionDescription(
        origin=Origin("-", str(session_id), str(session_version), "IN", _addrtype(local_host), local_host),
        session_name="tutti-bridge",
        connection=Connection("IN", _addrtype(local_host), local_host),
    )


def answer_offer(offer: bytes, allowed: Sequence[str], local_host: str, local_port: int,
                 session_id: int, session_version: int, srtp: str = "off") -> NegotiatedMedia:
    """Answer an offer. Raises NegotiationError (-> 488), or its subclass SdpError if the
    offer is not SDP at all (-> 400 if the caller wants to distinguish)."""
    sd = parse_sdp(offer)
    limits.check_session(sd)
    answer = _local_session(local_host, session_id, session_version)
    chosen: tuple[MediaDescription, str, int, RtpMap, tuple[int, int] | None] | None = None
    keys: srtpmod.SrtpKeys | None = None
    refused: str | None = None
    for m in sd.media:
        pick = None
        crypto: srtpmod.CryptoLine | None = None
        if chosen is None and _usable_stream(m):
            limits.check_rtp_stream(m)
            crypto, refused = _srtp_choice(m, srtp)
            pick = None if refused else _choose_codec(m, allowed)
        if pick is None:
            # RFC 3264 6: rejected streams keep their place, port 0, formats as offered.
            answer.media.append(MediaDescription(m.media, 0, m.proto, list(m.formats) or ["0"]))
            continue
        codec, pt, rtpmap = pick
        dtmf = _choose_dtmf(m, rtpmap.clock_rate, pt)
        chosen = (m, codec, pt, rtpmap, dtmf)
        direction = _MIRROR[sd.media_direction(m)]
        formats = [str(pt)] + ([str(dtmf[0])] if dtmf else [])
        attrs = _audio_lines(codec, pt, dtmf)
        attrs += [Attribute("ptime", "20"), Attribute(direction)]
        if crypto is not None:
            keys = srtpmod.SrtpKeys(crypto.tag, srtpmod.new_key(), crypto.key)
            attrs.append(Attribute("crypto", srtpmod.CryptoLine(crypto.tag, crypto.suite, keys.local_key).serialize()))
        answer.media.append(MediaDescription("audio", local_port, m.proto, formats, attributes=attrs))
    if chosen is None and refused is not None:
        raise NegotiationError(refused, 302)
    if chosen is None:
        offered = ", ".join(_offered_names(sd)) or "no audio stream"
        raise NegotiationError(f"no common codec: offered {offered[:200]}; allowed {', '.join(allowed)}", 305)
    m, codec, pt, rtpmap, dtmf = chosen
    host, null_hold = _remote(sd, m, "offer")
    direction = sd.media_direction(m)
    return NegotiatedMedia(
        codec=codec, payload_type=pt, clock_rate=rtpmap.clock_rate,
        channels=rtpmap.channels, fmtp=m.fmtps().get(pt, ""),
        dtmf_pt=dtmf[0] if dtmf else None, dtmf_clock_rate=dtmf[1] if dtmf else None,
        remote_host=host, remote_port=m.port, ptime=_ptime(sd, m, codec),
        offer_direction=direction,
        on_hold=direction in ("sendonly", "inactive") or null_hold,
        answer_sdp=answer.serialize(), remote_rtcp_port=limits.rtcp_port(m), srtp=keys,
    )


def build_offer(allowed: Sequence[str], local_host: str, local_port: int, session_id: int,
                session_version: int, direction: str = "sendrecv", srtp: str = "off") -> bytes:
    """Our offer: allowed codecs in the room's order, telephone-event at 8000 (and 48000 for opus).
    SRTP ``required``: RTP/SAVP with our key; ``optional``: RTP/AVP with our key (RFC 8643)."""
    if direction not in _MIRROR:
        raise ValueError(f"bad direction {direction!r}")
    codecs = [c for c in (_canonical(a) for a in allowed) if c is not None]
    if not codecs:
        raise NegotiationError(f"no supported codec in {', '.join(allowed)}")
    sd = _local_session(local_host, session_id, session_version)
    formats: list[str] = []
    attrs: list[Attribute] = []
    for codec in dict.fromkeys(codecs):
        pt = _STATIC_PT.get(codec, OPUS_OFFER_PT)
        formats.append(str(pt))
        attrs += _audio_lines(codec, pt, None)
    clocks = [8000] + ([48000] if "opus" in codecs else [])
    for clock in clocks:
        pt = _DTMF_OFFER_PT[clock]
        formats.append(str(pt))
        attrs += [Attribute("rtpmap", f"{pt} telephone-event/{clock}"), Attribute("fmtp", f"{pt} 0-16")]
    attrs += [Attribute("ptime", "20"), Attribute(direction)]
    if srtp != "off":
        attrs.append(Attribute("crypto", srtpmod.CryptoLine(1, srtpmod.SUITE, srtpmod.new_key()).serialize()))
    proto = "RTP/SAVP" if srtp == "required" else "RTP/AVP"
    sd.media.append(MediaDescription("audio", local_port, proto, formats, attributes=attrs))
    return sd.serialize()


def _answer_keys(offer_m: MediaDescription | None, m: MediaDescription) -> srtpmod.SrtpKeys | None:
    """SRTP keys from our offer's a=crypto and the answer's (same tag). An offer with
    RTP/SAVP needs a crypto answer; an RTP/AVP offer with crypto may be answered plain."""
    ours = srtpmod.pick_crypto([a.value or "" for a in offer_m.attributes if a.name == "crypto"]) if offer_m else None
    if ours is None:
        return None
    theirs = srtpmod.pick_crypto([a.value or "" for a in m.attributes if a.name == "crypto"])
    if theirs is None or theirs.tag != ours.tag:
        if offer_m is not None and offer_m.proto.upper() in _SECURE_PROTOS:
            raise NegotiationError("answer to our RTP/SAVP offer has no usable a=crypto", 302)
        return None
    return srtpmod.SrtpKeys(ours.tag, ours.key, theirs.key)


def accept_answer(our_offer: bytes, answer: bytes) -> NegotiatedMedia:
    """Take the remote's answer to our offer (late-offer ACK or dial-out 200)."""
    offer_sd = parse_sdp(our_offer)
    sd = parse_sdp(answer)
    limits.check_session(sd)
    offered = [c for m in offer_sd.media if m.media == "audio"
               for c in (_canonical(rm.encoding) for rm in m.rtpmaps().values()) if c is not None]
    offer_audio = next((m for m in offer_sd.media if m.media == "audio"), None)
    for m in sd.media:
        if m.media != "audio" or m.port == 0:
            continue
        limits.check_rtp_stream(m)
        keys = _answer_keys(offer_audio, m)
        pick = _choose_codec(m, offered)
        if pick is None:
            raise NegotiationError(
                f"answer has no codec we offered: answered {', '.join(_offered_names(sd))[:200]}", 305)
        codec, pt, rtpmap = pick
        dtmf = _choose_dtmf(m, rtpmap.clock_rate, pt)
        host, null_hold = _remote(sd, m, "answer")
        direction = sd.media_direction(m)
        return NegotiatedMedia(
            codec=codec, payload_type=pt, clock_rate=rtpmap.clock_rate, channels=rtpmap.channels,
            fmtp=m.fmtps().get(pt, ""), dtmf_pt=dtmf[0] if dtmf else None,
            dtmf_clock_rate=dtmf[1] if dtmf else None, remote_host=host, remote_port=m.port,
            ptime=_ptime(sd, m, codec), offer_direction=direction,
            on_hold=direction in ("sendonly", "inactive") or null_hold, answer_sdp=b"",
            remote_rtcp_port=limits.rtcp_port(m), srtp=keys,
        )
    raise NegotiationError("answer rejected the audio stream", 304)
