"""Dial-out: the bridge calls a participant over a SIP trunk and seats them on answer.

A dialled participant is listed at once (``dialing``) and ends ``connected`` (joined the
room, like any caller but without the IVR: the API already chose the conference and role)
or ``rejected`` with a reason. Our own no-answer timer cancels an unanswered call; so does
removing the participant over the API while it rings. Early media (a 183's audio) is not
mixed into the room: the far end's audio counts from the answer.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast

from bridge.call.leg import Leg, usable
from bridge.call.ports import Datagram, MediaFactory
from bridge.config import Config, TrunkConfig
from bridge.control import events as ev
from bridge.control.participants import Participant, ParticipantBook
from bridge.sdp.negotiate import NegotiatedMedia, NegotiationError, accept_answer, build_offer
from bridge.sip.endpoint import SipEndpoint
from bridge.sip.events import Call, CallAnswered, CallFailed, CallProgress
from bridge.sip.flow import Flow
from bridge.sip.uac import Credentials
from bridge.sip.uri import UriError, parse_uri

log = logging.getLogger("bridge.calls")

_REASONS = {486: "busy", 600: "busy", 603: "declined", 404: "not_found", 604: "not_found", 484: "not_found",
            480: "no_answer", 408: "no_answer", 401: "trunk_auth_failed", 407: "trunk_auth_failed",
            403: "trunk_auth_failed"}


def reject_reason(status: int) -> str:
    """How a SIP failure reads in the participant listing (Telnyx/Twilio-style causes)."""
    if status in _REASONS:
        return _REASONS[status]
    return "unreachable" if status >= 500 else "failed"


class DialOutError(Exception):
    """The call cannot even be attempted (no trunk, no ports, a bad number for the trunk)."""

    def __init__(self, message: str, code: str = "dial_out_unavailable") -> None:
        super().__init__(message)
        self.code = code


class CallHost(Protocol):
    """What dial-out needs from the call core."""

    config: Config
    endpoint: SipEndpoint
    media: MediaFactory
    bus: ev.EventBus
    book: ParticipantBook
    legs_by_call: dict[int, Leg]
    now: float
    wall: Callable[[], datetime]

    def start_answered(self, leg: Leg, media: NegotiatedMedia, role: str) -> None: ...

    def hangup(self, leg: Leg, reason: ev.LeaveReason) -> None: ...

    def release(self, leg: Leg) -> None: ...

    def rtp_handlers(self, leg: Leg) -> tuple[Datagram, Datagram]: ...


@dataclass
class Ringing:
    leg: Leg
    deadline: float          # our no-answer timer
    role: str
    trunk: str


class DialOut:
    def __init__(self, host: CallHost) -> None:
        self.host = host
        self.ringing: dict[str, Ringing] = {}
        self._cancel_reason: dict[str, str] = {}
        self._recent: dict[str, deque[float]] = {}      # per trunk: when its last calls started

    def dial(self, conf_id: str, number: str, name: str, role: str, muted: bool, trunk: TrunkConfig,
             advertised_host: str, codecs: list[str], timeout_s: float) -> Participant:
        h = self.host
        try:
            target = parse_uri(trunk.uri_template.format(number=number, host=trunk.host, port=trunk.port))
        except UriError as err:
            raise DialOutError(f"trunk {trunk.name}: {number!r} makes no SIP URI ({err})") from None
        if sum(1 for r in self.ringing.values() if r.trunk == trunk.name) >= trunk.max_calls:
            raise DialOutError(f"trunk {trunk.name} is at max_calls ({trunk.max_calls})")
        recent = self._recent.setdefault(trunk.name, deque())
        while recent and recent[0] <= h.now - 1.0:
            recent.popleft()
        if len(recent) >= trunk.calls_per_second:
            raise DialOutError(f"trunk {trunk.name} is at calls_per_second ({trunk.calls_per_second:g})")
        recent.append(h.now)
        p = Participant("part_" + secrets.token_hex(8), "sip_outbound", number, name, created_at=h.wall(),
                        conference_id=conf_id, role=role, status="dialing", muted=muted)
        # The SIP call needs our RTP port in its offer, and the RTP handlers need the leg: the
        # leg exists first and gets its call two steps below.
        leg = Leg(p, cast(Call, None), advertised_host, codecs)
        on_rtp, on_rtcp = h.rtp_handlers(leg)
        try:
            leg.transport = h.media.open(p.participant_id, on_rtp, on_rtcp)
        except Exception as err:
            raise DialOutError("no free RTP ports") from err
        leg.pending_offer = build_offer(codecs, advertised_host, leg.transport.port, leg.local_sdp_session,
                                        leg.sdp_version)
        creds = trunk.credentials()
        host = h.endpoint.contact_host
        leg.call = h.endpoint.invite(
            target, to_uri=f"sip:{number}@{trunk.host}", from_uri=f"sip:{trunk.from_user}@{host}",
            from_display=trunk.from_display, flow=Flow(trunk.transport, (trunk.host, trunk.port)),
            body=leg.pending_offer, now=h.now, credentials=Credentials(*creds) if creds else None)
        h.legs_by_call[id(leg.call)] = leg
        self.ringing[p.participant_id] = Ringing(leg, h.now + timeout_s, role, trunk.name)
        h.book.seat(p)
        h.bus.publish(ev.ParticipantDialing(conf_id, participant_id=p.participant_id, phone_number=number,
                                            role=role))
        log.info("%s dialling %s via trunk %s for %s", p.participant_id, number, trunk.name, conf_id)
        return p

    # ------------------------------------------------------------------ SIP events

    def on_event(self, leg: Leg, event: CallProgress | CallAnswered | CallFailed) -> None:
        if isinstance(event, CallAnswered):
            self.on_answered(leg, event)
        elif isinstance(event, CallFailed):
            self.on_failed(leg, event)
        else:
            log.info("%s: %d from the far end", leg.leg_id, event.status)

    def on_answered(self, leg: Leg, event: CallAnswered) -> None:
        entry = self.ringing.pop(leg.leg_id, None)
        role = entry.role if entry else "member"
        offer, leg.pending_offer = leg.pending_offer, None
        try:
            if not event.answer or offer is None:
                raise NegotiationError("no SDP in the answer")
            media = usable(accept_answer(offer, event.answer))
        except NegotiationError as err:
            log.info("%s: answer unusable (%s); hanging up", leg.leg_id, err)
            self._reject(leg, "failed", None)
            self.host.hangup(leg, "hangup")
            return
        leg.answered_at = self.host.now
        self.host.start_answered(leg, media, role)

    def on_failed(self, leg: Leg, event: CallFailed) -> None:
        self.ringing.pop(leg.leg_id, None)
        reason = self._cancel_reason.pop(leg.leg_id, None) or reject_reason(event.status)
        log.info("%s: dial-out failed: %d %s (%s)", leg.leg_id, event.status, event.reason, reason)
        self._reject(leg, reason, event.status)
        if event.answered:
            self.host.hangup(leg, "hangup")       # a 2xx crossed our CANCEL: BYE
        else:
            self.host.release(leg)

    def _reject(self, leg: Leg, reason: str, status: int | None) -> None:
        p = leg.participant
        if p.status != "dialing":
            return
        p.status, p.reject_reason, p.left_at = "rejected", reason, self.host.wall()
        self.host.book.left(p)
        self.host.bus.publish(ev.ParticipantRejected(p.conference_id, participant_id=p.participant_id,
                                                     reason=reason, sip_status=status))

    # ------------------------------------------------------------------ our side

    def cancel(self, pid: str, reason: str) -> bool:
        """Stop ringing ``pid`` (no answer in time, or removed over the API)."""
        entry = self.ringing.get(pid)
        if entry is None:
            return False
        self._cancel_reason.setdefault(pid, reason)
        self.host.endpoint.hangup(entry.leg.call, now=self.host.now)
        return True

    def dropped(self, leg: Leg) -> None:
        """The core let go of ``leg`` (shutdown, a fault) while it still rang."""
        if self.ringing.pop(leg.leg_id, None) is not None:
            self._reject(leg, self._cancel_reason.pop(leg.leg_id, "canceled"), None)

    def timers(self, now: float) -> None:
        for pid, ringing in list(self.ringing.items()):
            if now >= ringing.deadline:
                log.info("%s: no answer in time; cancelling", pid)
                self.cancel(pid, "no_answer")
                self.ringing.pop(pid, None)
