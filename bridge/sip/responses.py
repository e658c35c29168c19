"""Building a response to a request (RFC 3261 §8.2.6): headers copied, our tag and Contact added."""

from __future__ import annotations

from .headers import add_tag
from .message import Headers, SipRequest, SipResponse, default_reason
from .validate import ALLOW, SDP


def build_response(req: SipRequest, status: int, reason: str | None, *, to_tag: str | None, contact_uri: str,
                   supported: frozenset[str], user_agent: str, headers: list[tuple[str, str]] | None = None,
                   body: bytes = b"", content_type: str = SDP, contact: bool = False,
                   record_route: bool = False, allow: bool = False) -> bytes:
    h = Headers()
    for via in req.headers.get_all("Via"):
        h.add("Via", via)
    if record_route:
        for rr in req.headers.get_all("Record-Route"):
            h.add("Record-Route", rr)  # §12.1.1: copied into dialog-creating responses
    h.add("From", req.headers.get("From") or "")
    to = req.headers.get("To") or ""
    h.add("To", add_tag(to, to_tag) if to_tag and req.to.tag is None else to)
    h.add("Call-ID", req.call_id)
    h.add("CSeq", req.headers.get("CSeq") or "")
    if status == 100 and req.headers.get("Timestamp"):
        h.add("Timestamp", req.headers.get("Timestamp") or "")
    if contact:
        h.add("Contact", contact_uri)
    if allow:
        h.add("Allow", ", ".join(ALLOW))
        if supported:
            h.add("Supported", ", ".join(sorted(supported)))
    h.add("Server", user_agent)
    for name, value in headers or []:
        h.add(name, value)
    if body:
        h.add("Content-Type", content_type)
    resp = SipResponse(headers=h, body=body, status=status, reason=reason or default_reason(status))
    return resp.to_bytes()
