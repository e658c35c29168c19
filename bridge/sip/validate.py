"""What the UAS refuses before a request reaches the dialog layer (RFC 3261 §8.2), and the
stateless answer to a request too broken to parse (RFC 4475 torture tests).

parse_message() already refused what does not follow the grammar (400, 505); `refusal()` adds the
UAS checks on a well-formed request, in the order of §8.2: Max-Forwards, method (405 for a method
we know but do not serve, 501 for one we do not know), Request-URI scheme (416), Require (420),
body (415) and Accept (406)."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

from .flow import Flow, Outgoing, response_flow, stamp_via
from .headers import HeaderError, add_tag, get_param, parse_name_addr, parse_params, parse_via, to_int
from .message import Headers, SipParseError, SipRequest, SipResponse, default_reason

ALLOW = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE")
# Methods of RFC 3261 and its common extensions: recognised, so 405 rather than 501 (§8.2.1).
KNOWN_METHODS = frozenset(ALLOW + ("REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"))
ACCEPT = "application/sdp, application/dtmf-relay, application/dtmf"
SDP = "application/sdp"
URI_SCHEMES = ("sip", "sips", "tel")
_SDP_RANGES = frozenset((SDP, "application/*", "*/*"))
_MAX_TEXT = 120  # of a parse error echoed in a reason phrase / Warning


@dataclass(frozen=True)
class Refusal:
    status: int
    headers: tuple[tuple[str, str], ...] = ()


def refusal(req: SipRequest, supported: frozenset[str], warn_host: str) -> Refusal | None:
    """The final response a well-formed request gets before any dialog sees it, or None."""
    method = req.method
    mf = req.headers.get("Max-Forwards")
    if mf is not None and to_int(mf.strip(), 3) == 0 and method != "OPTIONS":
        return Refusal(483)
    if method not in ALLOW:
        return Refusal(405 if method in KNOWN_METHODS else 501, (("Allow", ", ".join(ALLOW)),))
    if req.uri.scheme not in URI_SCHEMES:
        return Refusal(416)  # RFC 3261 §8.2.2.1; RFC 4475 §3.3.2, §3.3.3
    unknown = [o for o in req.headers.get_all("Require") if o.strip().lower() not in supported]
    if unknown:
        return Refusal(420, (("Unsupported", ", ".join(unknown)),))  # §8.2.2.3 (Proxy-Require: not ours)
    if method not in ("INVITE", "UPDATE"):
        return None
    if req.body:
        codings = [c.strip().lower() for c in req.headers.get_all("Content-Encoding")]
        if any(c != "identity" for c in codings):
            return Refusal(415, (("Accept-Encoding", "identity"), ("Accept", SDP)))  # §8.2.3
        if req.content_type != SDP and not _optional_body(req):
            return Refusal(415, (("Accept", SDP),))  # RFC 4475 §3.3.6
    accept = req.headers.get_all("Accept")
    if accept and not {a.split(";")[0].strip().lower() for a in accept} & _SDP_RANGES:
        # Our answer (and a late offer) is SDP, which the caller says it cannot take (RFC 4475 §3.3.15).
        return Refusal(406, (("Accept", SDP), ("Warning", f'399 {warn_host} "only application/sdp bodies"')))
    return None


def _optional_body(req: SipRequest) -> bool:
    """Content-Disposition ;handling=optional: a body we do not understand may be ignored (RFC
    3261 §20.11). The default, and anything unparseable, is 'required'."""
    value = req.headers.get("Content-Disposition") or ""
    _, sep, params = value.partition(";")
    try:
        handling = get_param(parse_params(sep + params), "handling")
    except HeaderError:
        return False
    return (handling or "").lower() == "optional"


def session_offer(req: SipRequest) -> bytes | None:
    """The SDP a request that passed `refusal()` carries; None for no body, or for one of another
    type the sender let us ignore."""
    return req.body if req.body and req.content_type == SDP else None


def malformed_reply(err: SipParseError, flow: Flow, *, hostport: str, user_agent: str,
                    new_tag: Callable[[], str]) -> Outgoing | None:
    """The stateless 400 (505 for another SIP version) to a request that did not parse, with
    a Warning and the reason phrase naming what is wrong; None when it cannot be answered (not a
    request, an ACK, or no Via/From/To/Call-ID/CSeq to build a response from)."""
    p = err.partial
    if p is None or not p.method or p.method == "ACK":
        return None
    h = p.headers
    vias = h.get_all("Via")
    if not vias or any(h.get(n) is None for n in ("From", "To", "Call-ID", "CSeq")):
        return None  # cannot address a response; drop silently
    try:
        via = parse_via(vias[0])
    except HeaderError:
        dest = flow  # a Via we cannot read (RFC 4475 §3.1.2.1, §3.1.2.16): back where it came from
    else:
        stamped = Headers([("Via", v) for v in vias])
        stamp_via(stamped, via, flow)
        vias = stamped.get_all("Via")
        dest = response_flow(via, flow)
    to = h.get("To") or ""
    try:
        tagged = parse_name_addr(to).tag is not None
    except HeaderError:  # a broken To still gets its tag (§8.2.6.2) unless it plainly has one
        tagged = any(p.partition("=")[0].strip().lower() == "tag" for p in to.split(";")[1:])
    if not tagged:
        to = add_tag(to, new_tag())
    text = err.reason.replace('"', "'").replace("\r", " ").replace("\n", " ")[:_MAX_TEXT]
    status = err.status
    out = Headers([("Via", v) for v in vias])
    out.add("From", h.get("From") or "")
    out.add("To", to)
    out.add("Call-ID", h.get("Call-ID") or "")
    out.add("CSeq", h.get("CSeq") or "")
    out.add("Warning", f'399 {hostport} "{text}"')
    out.add("Server", user_agent)
    reason = default_reason(status) + ("" if status == 505 else f" ({text})")
    return Outgoing(SipResponse(headers=out, status=status, reason=reason).to_bytes(), dest)
