"""One conference across two bridge nodes (README "One room across nodes").

Owner node (A): once its room for a conference seats ``cascade.part_size`` callers, a further
caller who dials the conference gets ``302 Moved Temporarily`` to a part node (B), with
``;tutti-owner=<A host:port>`` in the Contact URI. Kamailio follows the redirect; a softphone
may dial that URI itself.

Part node (B): a call whose Request-URI carries ``tutti-owner`` (accepted from a trusted
address only) joins B's own room for that conference, PIN and IVR rules as usual. With its
first caller B places ONE trunk call to the owner, marked ``X-Tutti-Cascade: part;node=<B>``,
and hangs it up when its last local caller leaves. The owner seats that call as a trunk:
mixed both ways and exempt from the talker cap, but no participant (no PIN, prompts, beeps,
events, listing, cap or recording track). Mix-minus then holds across the hop: A sends the
trunk everyone on A but the trunk, B sends A everyone on B but the trunk. An INVITE with the
header is never redirected again, so the nodes form a tree, never a loop.

The decisions are pure functions (tests/unit/test_cascade.py); ``Cascade`` applies them for the
call core through the small ``CascadeHost`` protocol.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, cast

from bridge.call.leg import Leg, advertised_host, warning_header
from bridge.call.ports import Datagram, Directory, MediaFactory, NoMediaPorts
from bridge.config import Config
from bridge.config_cascade import check_hostport, sip_hostport
from bridge.control.participants import Participant
from bridge.sdp.negotiate import build_offer
from bridge.sip.endpoint import SipEndpoint
from bridge.sip.events import Call
from bridge.sip.flow import Flow
from bridge.sip.message import SipRequest
from bridge.sip.uri import UriError, parse_uri

if TYPE_CHECKING:
    from bridge.call.live import LiveConference
    from bridge.control import events as ev
    from bridge.control.model import Conference

log = logging.getLogger("bridge.cascade")

HEADER = "X-Tutti-Cascade"
OWNER_PARAM = "tutti-owner"


@dataclass(frozen=True)
class Screening:
    """What to do with a new INVITE before anything is answered."""

    kind: Literal["plain", "trunk", "part"]
    owner: str | None = None             # part: the owner node's host:port
    status: int = 0                      # non-zero: answer this instead (302 or 403)
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    warning: str = ""


def _forbidden(why: str) -> Screening:
    return Screening("plain", status=403, reason="Forbidden", warning=why)


def is_trusted(source: str, trusted: Sequence[str]) -> bool:
    """``source`` (an IP address) is in one of the ``security.trusted_proxies`` networks."""
    try:
        addr = ipaddress.ip_address(source)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(net, strict=False) for net in trusted)


def redirect_node(part_size: int, part_nodes: Sequence[str], humans_here: int, conf_id: str) -> str | None:
    """The part node a new caller goes to, or None to seat them here. One node per conference
    (a stable hash of its id), so that all its overflow callers meet in one part behind one trunk."""
    if part_size <= 0 or not part_nodes or humans_here < part_size:
        return None
    ordered = sorted(part_nodes)
    return ordered[zlib.crc32(conf_id.encode()) % len(ordered)]


def redirect_contact(user: str, part_node: str, owner: str) -> str:
    return f"<sip:{user}@{part_node};{OWNER_PARAM}={owner}>"


def trunk_header(node: str) -> str:
    return f"part;node={node}"


def node_address(config: Config, request_host: str) -> str:
    """This node as the other nodes reach it over SIP (host:port)."""
    if config.cascade.node_address:
        return config.cascade.node_address
    if config.cluster.enabled and config.cluster.advertise_sip:
        return sip_hostport(config.cluster.advertise_sip)
    return f"{advertised_host(config, request_host)}:{config.sip.port}"


def trunk_codecs(rate: int, codecs: Sequence[str]) -> list[str]:
    """The trunk's codec: G.722 for a 16/48 kHz room (wideband for one encode, no Opus cost),
    else PCMU; whichever of those the conference allows, else its first codec."""
    for name in ("G722", "PCMU") if rate >= 16000 else ("PCMU",):
        if name in codecs:
            return [name]
    return list(codecs[:1])


def screen(request: SipRequest, source: str, config: Config, humans_here: int, node: str, conf_id: str = "",
           part_nodes: Sequence[str] | None = None) -> Screening:
    """Trunk, part caller, redirect or plain call: the decision for a new INVITE to a conference.
    ``humans_here``: callers of this conference on this node (trunks excluded); ``part_nodes``:
    where a full room may spread (default ``cascade.part_nodes``; cluster mode: the live nodes)."""
    trusted = is_trusted(source, config.security.trusted_proxies)
    if request.headers.get(HEADER) is not None:
        return Screening("trunk") if trusted else _forbidden("cascade trunk from an untrusted address")
    owner = request.uri.param(OWNER_PARAM)
    if owner is not None:
        if not trusted:
            return _forbidden("tutti-owner from an untrusted address")
        try:
            check_hostport(owner)
        except ValueError:
            return _forbidden("tutti-owner is not host:port")
        return Screening("part", owner=owner)
    nodes = config.cascade.part_nodes if part_nodes is None else part_nodes
    part = redirect_node(config.cascade.part_size, [n for n in nodes if n != node], humans_here, conf_id)
    if part is not None:
        contact = redirect_contact(request.uri.user_text or "", part, node)
        return Screening("plain", status=302, reason="Moved Temporarily", headers=(("Contact", contact),))
    return Screening("plain")


class CascadeHost(Protocol):
    """What the cascade needs from the call core."""

    config: Config
    endpoint: SipEndpoint
    directory: Directory
    media: MediaFactory
    rooms: dict[str, LiveConference]
    legs_by_call: dict[int, Leg]
    now: float
    wall: Callable[[], datetime]

    def rtp_handlers(self, leg: Leg) -> tuple[Datagram, Datagram]: ...

    def hangup(self, leg: Leg, reason: ev.LeaveReason) -> None: ...

    def open_room(self, conf: Conference) -> LiveConference: ...


class Cascade:
    def __init__(self, host: CascadeHost) -> None:
        self.host = host
        self.owners: dict[str, tuple[str, str]] = {}   # part node: conf id -> (owner host:port, user dialled)
        self.trunks: dict[str, Leg] = {}               # part node: conf id -> our trunk to the owner

    def humans_here(self, conf_id: str) -> int:
        """Callers of the conference on this node, seated or still ringing / in the IVR."""
        return sum(1 for leg in self.host.legs_by_call.values() if leg.conf_id == conf_id and not leg.trunk)

    def admit(self, call: Call, request: SipRequest, conf_id: str) -> str | None:
        """A new INVITE to ``conf_id``: "trunk", "part" or "plain"; None when it was answered here
        (302 to a part node, 403 to an untrusted source)."""
        h = self.host
        source = call.flow.remote[0]
        node = node_address(h.config, request.uri.host)
        # A part node never spreads the conference further: its callers join its part (a tree
        # with the owner at the root; a part overflowing to the owner would close a loop).
        spread_to = () if self.is_part(conf_id) else h.directory.part_nodes()
        verdict = screen(request, source, h.config, self.humans_here(conf_id), node, conf_id, spread_to)
        if verdict.status:
            why = verdict.warning or dict(verdict.headers).get("Contact", "")
            log.info("%s: %d %s for a call from %s (%s)", conf_id, verdict.status, verdict.reason, source, why,
                     extra={"call_id": call.call_id})
            headers = list(verdict.headers) + ([warning_header(verdict.warning)] if verdict.warning else [])
            h.endpoint.respond(call, verdict.status, verdict.reason, headers=headers, now=h.now)
            return None
        if verdict.owner is not None:   # this node's room for the conference is a part of the owner's
            self.owners[conf_id] = (verdict.owner, call.room or "")
        return verdict.kind

    def is_part(self, conf_id: str) -> bool:
        """This node's room for ``conf_id`` is a part of another node's (it claims no ownership)."""
        return conf_id in self.owners

    def joining(self, live: LiveConference) -> None:
        """A caller is about to sit down in ``live``: on a part node, the trunk to the owner is
        dialled with the first one (and again after a failed attempt)."""
        entry = self.owners.get(live.conf.id)
        if entry is None:
            return
        live.trunk_expected = True
        if live.conf.id not in self.trunks:
            self._dial(live, *entry)

    def _dial(self, live: LiveConference, owner: str, user: str) -> None:
        h = self.host
        conf = live.conf
        host, _, port = owner.rpartition(":")
        try:
            target = parse_uri(f"sip:{user}@{owner}")
        except UriError as err:
            log.warning("%s: cannot dial the owner %s (%s)", conf.id, owner, err)
            return
        p = Participant("part_" + secrets.token_hex(8), "sip_outbound", "cascade", "", created_at=h.wall(),
                        conference_id=conf.id, status="connected")
        local = advertised_host(h.config, "")
        codecs = trunk_codecs(conf.rate, list(conf.codecs or h.config.media.codecs))
        leg = Leg(p, cast(Call, None), local, codecs, trunk=True)   # the call comes two steps below
        on_rtp, on_rtcp = h.rtp_handlers(leg)
        try:
            leg.transport = h.media.open(p.participant_id, on_rtp, on_rtcp)
        except NoMediaPorts:
            log.warning("%s: no RTP port for the cascade trunk to %s", conf.id, owner)
            return
        leg.pending_offer = build_offer(codecs, local, leg.transport.port, leg.local_sdp_session,
                                        leg.sdp_version)
        node = node_address(h.config, "")
        leg.call = h.endpoint.outgoing.invite(
            target, f"sip:{user}@{owner}", f"sip:cascade@{h.endpoint.contact_host}", None,
            Flow("udp", (host, int(port))), leg.pending_offer, h.now, extra=[(HEADER, trunk_header(node))])
        h.legs_by_call[id(leg.call)] = leg
        self.trunks[conf.id] = leg
        log.info("%s: cascade trunk %s dialling the owner %s (%s)", conf.id, p.participant_id, owner,
                 codecs[0])

    def seat(self, leg: Leg) -> None:
        """A trunk's media is up (either side): into the conference's room as a trunk."""
        h = self.host
        live = h.rooms.get(leg.conf_id)
        if live is None:
            conf = h.directory.resolve_dial(leg.conf_id)
            if conf is None or self.trunks.get(leg.conf_id) is leg:
                h.hangup(leg, "hangup")   # gone, or (part node) the local callers left while it rang
                return
            live = h.open_room(conf)      # owner node: its own callers have all left meanwhile
        live.add_trunk(leg.leg_id, leg)
        leg.in_room = True
        log.info("%s: cascade trunk %s joined (%s)", leg.conf_id, leg.leg_id, leg.codec)

    def dropped(self, leg: Leg, live: LiveConference | None) -> None:
        """The core let go of ``leg`` (and ``live`` is the room it was for): a trunk is forgotten;
        on a part node the last local caller takes the trunk along."""
        if leg.trunk:
            log.info("%s: cascade trunk %s left", leg.conf_id, leg.leg_id)
            if self.trunks.get(leg.conf_id) is leg:
                del self.trunks[leg.conf_id]
            return
        if live is None or live.members:
            return
        self.owners.pop(live.conf.id, None)
        trunk = self.trunks.get(live.conf.id)
        if trunk is not None:
            log.info("%s: last local caller left; hanging up the cascade trunk %s", live.conf.id,
                     trunk.leg_id)
            self.host.hangup(trunk, "hangup")
