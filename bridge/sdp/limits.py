"""Edge validation of a peer's SDP: everything the media path will use must be sane.

Every value in an offer or answer comes from the network and is hostile until checked.
An offer is accepted only when the audio stream we are about to use has

- payload types 0-127 (7 bits, RFC 3550 §5.1) in its format list; a codec bound by
  a=rtpmap to a dynamic type must sit in 96-127 (RFC 3551 §6), a static type may only
  carry its own codec, and 72-76 (RTCP conflict range) are never used;
- a clock rate and channel count the codec really has;
- a port in 1-65534, so the RTCP port (a=rtcp, else port + 1) is in range too, and no
  layered ``/count``;
- a ``c=`` that is an IP literal of the family its address type names, unicast
  (``0.0.0.0`` is the old hold). Host names are refused rather than resolved: name
  resolution must never run in the media path, and resolving names taken from a
  stranger's SDP is a DNS/SSRF vector. (Whether IPv6 media can be used is the socket
  adapter's business: the call layer refuses it while its sockets are IPv4.)
- bounded counts of media lines, formats and attributes.

Violations raise :class:`NegotiationError` with the RFC 3261 warning code, so the SIP
layer answers 488 with a ``Warning`` naming the field. Attributes RFC 3264 lets us ignore
(an unusable ``a=rtcp``, ``ptime`` out of range, a telephone-event we cannot use) are
ignored instead.
"""

from __future__ import annotations

import ipaddress

from .errors import NegotiationError
from .model import STATIC_PAYLOAD_TYPES, MediaDescription, RtpMap, SessionDescription, is_number

MAX_MEDIA = 16            # m= lines per SDP
MAX_FORMATS = 64          # formats on one m= line
MAX_ATTRIBUTES = 128      # a= lines per media description (and at session level)
PT_MAX = 127
DYNAMIC_PT = range(96, 128)
RTCP_CONFLICT_PT = range(72, 77)   # with the marker bit these look like RTCP SR/RR/SDES/BYE/APP
PORT_MAX = 65534                   # RTCP goes to port + 1
DTMF_CLOCKS = (8000, 16000, 32000, 44100, 48000)

# Clock rates and channel counts per codec (RFC 3551; G.722 is 8000 by the RFC's erratum,
# some clients write 16000; Opus is always opus/48000/2 by RFC 7587, a few write no channels).
CODEC_FORMATS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "PCMU": ((8000,), (1,)),
    "PCMA": ((8000,), (1,)),
    "G722": ((8000, 16000), (1,)),
    "opus": ((48000,), (1, 2)),
}
# Packetisation each codec allows; anything else falls back to the default 20 ms.
PTIME_RANGE: dict[str, tuple[int, int]] = {
    "PCMU": (10, 200), "PCMA": (10, 200), "G722": (10, 200), "opus": (10, 120),
}


def check_session(sd: SessionDescription) -> None:
    """Counts that bound the work of reading the rest."""
    if len(sd.media) > MAX_MEDIA:
        raise NegotiationError(f"too many m= lines ({len(sd.media)} > {MAX_MEDIA})", 307)
    if len(sd.attributes) > MAX_ATTRIBUTES:
        raise NegotiationError(f"too many session attributes ({len(sd.attributes)})", 307)
    for m in sd.media:
        if len(m.formats) > MAX_FORMATS:
            raise NegotiationError(f"too many formats on m={m.media} ({len(m.formats)} > {MAX_FORMATS})", 305)
        if len(m.attributes) > MAX_ATTRIBUTES:
            raise NegotiationError(f"too many attributes on m={m.media} ({len(m.attributes)})", 307)


def check_rtp_stream(m: MediaDescription) -> None:
    """The audio stream we are about to use: port and payload type numbers."""
    if not 1 <= m.port <= PORT_MAX:
        raise NegotiationError(f"m= port {m.port} out of range 1-{PORT_MAX}", 307)
    if m.port_count is not None and m.port_count != 1:
        raise NegotiationError(f"m= port count /{m.port_count} (layered multicast) not supported", 307)
    for fmt in m.formats:
        if not is_number(fmt) or int(fmt) > PT_MAX:
            raise NegotiationError(f"m= payload type {fmt[:16]!r} out of range 0-{PT_MAX}", 305)


def usable_codec_pt(codec: str, pt: int, rtpmap: RtpMap) -> bool:
    """Whether payload type ``pt`` may carry ``codec`` as ``rtpmap`` describes it."""
    if pt > PT_MAX or pt in RTCP_CONFLICT_PT:
        return False
    static = STATIC_PAYLOAD_TYPES.get(pt)
    if static is not None:
        if static[0].lower() != codec.lower():
            return False          # a static type rebound to another codec
    elif pt not in DYNAMIC_PT:
        return False
    clocks, channels = CODEC_FORMATS[codec]
    return rtpmap.clock_rate in clocks and rtpmap.channels in channels


def usable_dtmf_pt(pt: int, clock_rate: int, codec_pt: int) -> bool:
    return pt in DYNAMIC_PT and pt != codec_pt and clock_rate in DTMF_CLOCKS


def rtcp_port(m: MediaDescription) -> int:
    """a=rtcp when it names a port in range (its address, if any, is ignored: RTCP goes to
    the RTP host), else the RTP port + 1 (RFC 3605; an unusable a=rtcp is ignored)."""
    value = m.attribute("rtcp")
    token = value.split()[0] if value else ""
    if is_number(token) and 1 <= int(token) <= 65535:
        return int(token)
    return m.port + 1


def ptime(codec: str, value: str | None) -> int:
    """The peer's packetisation in ms, or the default 20 when absent or outside what the codec allows."""
    try:
        ms = int(float(value)) if value else 20
    except (ValueError, OverflowError):
        return 20
    lo, hi = PTIME_RANGE.get(codec, (10, 200))
    return ms if lo <= ms <= hi else 20


_FAMILY: dict[str, type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]] = {
    "IP4": ipaddress.IPv4Address, "IP6": ipaddress.IPv6Address,
}
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def media_host(addrtype: str, address: str) -> str:
    """The c= address as a unicast IP literal (the unspecified address means hold), or
    NegotiationError (warning 301) for a host name, a wrong family, multicast or broadcast."""
    family = _FAMILY.get(addrtype)
    if family is None:
        raise NegotiationError(f"c= address type {addrtype[:8]!r} is neither IP4 nor IP6", 301)
    try:
        ip = family(address)
    except ValueError:
        raise NegotiationError(f"c= address {address[:64]!r} is not an {addrtype} literal "
                               "(host names are not resolved)", 301) from None
    if ip.is_multicast or ip == _BROADCAST:
        raise NegotiationError(f"c= address {address} is not unicast", 301)
    return address if ip.is_unspecified else str(ip)
