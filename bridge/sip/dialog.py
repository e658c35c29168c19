"""Dialog state (RFC 3261 §12) for the UAS side and building in-dialog requests (§12.2.1.1)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .headers import HeaderError, add_tag, parse_name_addr
from .message import Headers, SipRequest, SipResponse
from .uri import SipUri, UriError, parse_uri


@dataclass(eq=False)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our From in requests we send: the INVITE's To, verbatim, without tag
    remote_uri: str  # their From, verbatim (tag included)
    remote_target: SipUri
    route_set: list[str] = field(default_factory=list)  # Route header values, first hop first
    remote_seq: int | None = None
    local_seq: int = 0
    state: str = "early"  # early | confirmed | terminated

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def for_uas(cls, invite: SipRequest, local_tag: str) -> "Dialog":
        """UAS dialog from an INVITE: the route set is Record-Route in order (§12.1.1; a UAC
        would reverse it), the remote target is the Contact."""
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_.tag or "",
            local_uri=invite.headers.get("To") or "",
            remote_uri=invite.headers.get("From") or "",
            remote_target=contact_target(invite) or invite.from_.uri,
            route_set=list(invite.headers.get_all("Record-Route")),
            remote_seq=invite.cseq.seq,
        )

    def refresh_target(self, request: SipRequest) -> None:
        """A successful target refresh (re-INVITE, UPDATE) replaces the remote target (§12.2.2)."""
        target = contact_target(request)
        if target is not None:
            self.remote_target = target

    def build_request(self, method: str, via: str, extra: list[tuple[str, str]] | None = None,
                      body: bytes = b"") -> SipRequest:
        self.local_seq += 1
        h = Headers()
        h.add("Via", via)
        h.add("Max-Forwards", "70")
        h.add("From", add_tag(self.local_uri, self.local_tag))
        h.add("To", self.remote_uri)
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self.local_seq} {method}")
        uri = self.remote_target
        routes = list(self.route_set)
        if routes:
            try:
                first = parse_name_addr(routes[0]).uri
            except HeaderError:
                first = None
            if first is not None and not first.has_param("lr"):
                # Strict-routing next hop (RFC 2543): it becomes the Request-URI and the remote
                # target goes last in Route (§12.2.1.1).
                uri = first
                routes = routes[1:] + [f"<{self.remote_target}>"]
        for r in routes:
            h.add("Route", r)
        for name, value in extra or []:
            h.add(name, value)
        return SipRequest(headers=h, body=body, method=method, uri=uri)


def contact_target(message: SipRequest | SipResponse) -> SipUri | None:
    value = message.headers.get("Contact")
    if not value or value.strip() == "*":
        return None
    try:
        return parse_name_addr(value).uri
    except HeaderError:
        try:
            return parse_uri(value)
        except UriError:
            return None
