"""Call control: turns SIP endpoint events into legs in live rooms.

This is application glue between the sans-IO cores (SIP endpoint, SDP
negotiation, RTP session, room mixer, conference service) and the socket
adapters. It owns no protocol logic of its own: routing decisions come from the
conference service, media decisions from SDP negotiation, timing from the
media clock.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from bridge.adapters.rtp_transport import LegSockets, PortAllocator, PortRangeExhausted
from bridge.config import Config
from bridge.control.model import Conference, ParticipantView
from bridge.media.room import Room
from bridge.rtp.session import RtpSession
from bridge.sdp.negotiate import NegotiatedMedia, NegotiationError, accept_answer, answer_offer, build_offer
from bridge.sip import endpoint as sipev
from bridge.sip.endpoint import Call, SipEndpoint

log = logging.getLogger("bridge.calls")

FRAME_MS = 20


@dataclass
class Leg:
    leg_id: str
    call: Call
    conf_id: str
    sockets: LegSockets
    caller_number: str
    caller_name: str
    joined_at: datetime
    role: str = "member"
    session: RtpSession | None = None
    media: NegotiatedMedia | None = None
    local_sdp_session: int = field(default_factory=lambda: random.randrange(1, 2**31))
    sdp_version: int = 1
    pending_offer: bytes | None = None  # our offer when the INVITE had none (late offer)
    in_room: bool = False
    muted: bool = False
    deaf: bool = False
    on_hold: bool = False
    answered_at: float = 0.0
    ended: bool = False
    advertised_host: str = "127.0.0.1"  # our address as the caller sees it (SDP c=)


class LiveRoom:
    """A conference that has callers in it right now: its mixer and its legs."""

    def __init__(self, conf: Conference, max_talkers: int) -> None:
        self.conf = conf
        self.room = Room(conf.id, conf.rate, max_talkers=max_talkers)
        self.legs: dict[str, Leg] = {}


class CallController:
    def __init__(
        self,
        config: Config,
        endpoint: SipEndpoint,
        resolve_dial: Callable[[str], Conference | None],
        on_first_join: Callable[[str], None],
        allocator: PortAllocator,
        loop: asyncio.AbstractEventLoop,
        pump_sip: Callable[[], None],
    ) -> None:
        self.config = config
        self.endpoint = endpoint
        self.resolve_dial = resolve_dial
        self.on_first_join = on_first_join
        self.allocator = allocator
        self.loop = loop
        self.pump_sip = pump_sip
        self.rooms: dict[str, LiveRoom] = {}
        self.legs_by_call: dict[int, Leg] = {}

    # ------------------------------------------------------------------ SIP events

    def drain_sip_events(self) -> None:
        while (event := self.endpoint.next_event()) is not None:
            try:
                self._dispatch(event)
            except Exception:  # one bad call must never take the others down
                log.exception("error handling %s", type(event).__name__)

    def _dispatch(self, event: Any) -> None:
        if isinstance(event, sipev.IncomingCall):
            self._on_invite(event.call, event.request.uri.host, event.offer)
        elif isinstance(event, sipev.CallConfirmed):
            self._on_ack(event.call, event.answer, event.initial)
        elif isinstance(event, (sipev.ReInvite, sipev.Update)):
            self._on_reoffer(event.call, event.offer)
        elif isinstance(event, sipev.Info):
            self._on_info(event.call, event.content_type, event.body)
        elif isinstance(event, sipev.CallEnded):
            self._on_ended(event.call, event.reason)

    def _now(self) -> float:
        return self.loop.time()

    def _advertised_host(self, request_host: str) -> str:
        if self.config.sip.advertise_host:
            return self.config.sip.advertise_host
        host = request_host.strip("[]")
        try:
            ip = ipaddress.ip_address(host)
            if not ip.is_unspecified:
                return host
        except ValueError:
            pass
        bound = self.config.rtp.host
        return bound if bound not in ("0.0.0.0", "::") else "127.0.0.1"

    def _reject(self, call: Call, status: int, reason: str | None = None, warning: str | None = None) -> None:
        headers = []
        if warning:
            headers.append(("Warning", f'399 tutti-bridge "{warning}"'))
        self.endpoint.respond(call, status, reason, headers=headers, now=self._now())

    def _codecs(self, conf: Conference) -> list[str]:
        return list(conf.codecs or self.config.media.codecs)

    def _on_invite(self, call: Call, request_host: str, offer: bytes | None) -> None:
        user = call.room or ""
        conf = self.resolve_dial(user)
        if conf is None:
            self._reject(call, 404, "Not Found", f"no conference {user!r}")
            return
        live = self.rooms.get(conf.id)
        if live is not None and len(live.legs) >= conf.max_participants:
            self._reject(call, 486, "Busy Here", "conference is full")
            return
        leg = Leg(
            leg_id="part_" + secrets.token_hex(8),
            call=call,
            conf_id=conf.id,
            sockets=LegSockets(self.allocator),
            caller_number=call.caller_user or "",
            caller_name=call.caller_display or "",
            joined_at=datetime.now(timezone.utc),
            advertised_host=self._advertised_host(request_host),
        )
        self.legs_by_call[id(call)] = leg
        self.loop.create_task(self._answer(leg, conf, offer))

    async def _answer(self, leg: Leg, conf: Conference, offer: bytes | None) -> None:
        call = leg.call
        try:
            port = await leg.sockets.open(
                self.loop,
                lambda data, addr: self._on_rtp(leg, data, addr),
                lambda data, addr: self._on_rtcp(leg, data, addr),
            )
        except PortRangeExhausted:
            self.legs_by_call.pop(id(call), None)
            self._reject(call, 503, "Service Unavailable", "no free RTP ports")
            self.pump_sip()
            return
        delay = self.config.sip.answer_delay_ms / 1000
        if delay > 0 and not leg.ended:
            self.endpoint.respond(call, 180, "Ringing", now=self._now())
            self.pump_sip()
            await asyncio.sleep(delay)
        if leg.ended:  # CANCEL arrived while the socket opened or while ringing
            leg.sockets.close()
            return
        host = leg.advertised_host
        codecs = self._codecs(conf)
        if offer is not None:
            try:
                media = answer_offer(offer, codecs, host, port, leg.local_sdp_session, leg.sdp_version)
            except NegotiationError as err:
                self._drop_leg(leg)
                self._reject(call, 488, "Not Acceptable Here", str(err))
                self.pump_sip()
                return
            self._start_media(leg, conf, media)
            self.endpoint.respond(call, 200, "OK", body=media.answer_sdp, now=self._now())
        else:
            leg.pending_offer = build_offer(codecs, host, port, leg.local_sdp_session, leg.sdp_version)
            self.endpoint.respond(call, 200, "OK", body=leg.pending_offer, now=self._now())
        leg.answered_at = self._now()
        self.pump_sip()

    def _on_ack(self, call: Call, answer: bytes | None, initial: bool) -> None:
        leg = self.legs_by_call.get(id(call))
        if leg is None or leg.pending_offer is None:
            return
        offer, leg.pending_offer = leg.pending_offer, None
        conf = self.resolve_dial(leg.conf_id)
        try:
            if not answer or conf is None:
                raise NegotiationError("no answer in the ACK")
            media = accept_answer(offer, answer)
        except NegotiationError as err:
            log.info("%s: answer unusable (%s); hanging up", leg.leg_id, err)
            self.hangup(leg)
            return
        live = self.rooms.get(conf.id)
        if initial or live is None or leg.session is None:
            self._start_media(leg, conf, media)
        else:
            self._update_media(leg, live, media)

    def _start_media(self, leg: Leg, conf: Conference, media: NegotiatedMedia) -> None:
        leg.media = media
        frame_ticks = media.clock_rate * FRAME_MS // 1000
        leg.session = RtpSession(
            local_ssrc=random.getrandbits(32),
            codec_pt=media.payload_type,
            codec_clock=media.clock_rate,
            frame_ticks=frame_ticks,
            dtmf_pt=media.dtmf_pt,
            dtmf_clock=media.dtmf_clock_rate,
            remote_addr=(media.remote_host, media.remote_port) if media.remote_port else None,
            jitter_min_ms=self.config.rtp.jitter_min_ms,
            jitter_max_ms=self.config.rtp.jitter_max_ms,
        )
        live = self.rooms.get(conf.id)
        if live is None:
            live = self.rooms[conf.id] = LiveRoom(conf, self._max_talkers(conf))
            self.on_first_join(conf.id)
        live.legs[leg.leg_id] = leg
        live.room.add_leg(
            leg.leg_id,
            leg.session,
            media.codec,
            media.codec,
            payload_type=media.payload_type,
            encoder_opts=self._encoder_opts(media.codec),
        )
        leg.in_room = True
        if conf.mute_on_entry:
            leg.muted = True
            live.room.set_muted(leg.leg_id, True)
        self._apply_hold(leg, live, media.on_hold)
        log.info(
            "%s joined %s (%s, codec %s/%d, rtp %s:%s)",
            leg.leg_id, conf.id, leg.caller_number, media.codec, media.clock_rate,
            media.remote_host, media.remote_port,
        )

    def _max_talkers(self, conf: Conference) -> int:
        return conf.max_talkers if conf.max_talkers is not None else self.config.media.max_talkers

    def _encoder_opts(self, codec: str) -> dict[str, Any]:
        if codec == "opus":
            return {"bitrate": self.config.media.opus_bitrate, "complexity": self.config.media.opus_complexity}
        return {}

    def _apply_hold(self, leg: Leg, live: LiveRoom, on_hold: bool) -> None:
        if on_hold != leg.on_hold:
            leg.on_hold = on_hold
            live.room.set_on_hold(leg.leg_id, on_hold)
            log.info("%s %s", leg.leg_id, "held" if on_hold else "resumed")

    def _on_reoffer(self, call: Call, offer: bytes | None) -> None:
        leg = self.legs_by_call.get(id(call))
        if leg is None or leg.sockets.port == 0:
            self.endpoint.respond(call, 481, now=self._now())
            return
        live = self.rooms.get(leg.conf_id)
        host = leg.advertised_host
        leg.sdp_version += 1
        codecs = self._codecs(live.conf) if live else list(self.config.media.codecs)
        if offer is None:
            # Offer-less re-INVITE: we offer in the 200 and read the answer in the ACK.
            leg.pending_offer = build_offer(codecs, host, leg.sockets.port, leg.local_sdp_session, leg.sdp_version)
            self.endpoint.respond(call, 200, "OK", body=leg.pending_offer, now=self._now())
            return
        try:
            media = answer_offer(offer, codecs, host, leg.sockets.port, leg.local_sdp_session, leg.sdp_version)
        except NegotiationError as err:
            self._reject(call, 488, "Not Acceptable Here", str(err))
            return
        self.endpoint.respond(call, 200, "OK", body=media.answer_sdp, now=self._now())
        if live is not None and leg.session is not None:
            self._update_media(leg, live, media)

    def _update_media(self, leg: Leg, live: LiveRoom, media: NegotiatedMedia) -> None:
        old = leg.media
        leg.media = media
        assert leg.session is not None
        leg.session.update_remote(
            codec_pt=media.payload_type,
            codec_clock=media.clock_rate,
            frame_ticks=media.clock_rate * FRAME_MS // 1000,
            dtmf_pt=media.dtmf_pt,
            dtmf_clock=media.dtmf_clock_rate,
            remote_addr=(media.remote_host, media.remote_port) if media.remote_port else None,
        )
        if old is None or old.codec != media.codec or old.payload_type != media.payload_type:
            live.room.set_codec(leg.leg_id, media.codec, media.codec, media.payload_type)
        self._apply_hold(leg, live, media.on_hold)

    def _on_info(self, call: Call, content_type: str, body: bytes) -> None:
        leg = self.legs_by_call.get(id(call))
        if leg is None:
            return
        digit = parse_info_dtmf(content_type, body)
        if digit is not None:
            self.on_digit(leg, digit, "info")

    def _on_ended(self, call: Call, reason: str) -> None:
        leg = self.legs_by_call.pop(id(call), None)
        if leg is None:
            return
        log.info("%s left %s (%s)", leg.leg_id, leg.conf_id, reason)
        self._drop_leg(leg)

    def _drop_leg(self, leg: Leg) -> None:
        leg.ended = True
        self.legs_by_call.pop(id(leg.call), None)
        live = self.rooms.get(leg.conf_id)
        if live is not None and live.legs.pop(leg.leg_id, None) is not None:
            live.room.remove_leg(leg.leg_id)
            if not live.legs:
                del self.rooms[leg.conf_id]
        leg.sockets.close()

    # ------------------------------------------------------------------ media

    def _on_rtp(self, leg: Leg, data: bytes, addr: tuple[Any, ...]) -> None:
        session = leg.session
        if session is None:
            return
        for event in session.receive(data, (addr[0], addr[1]), self._now()):
            self.on_digit(leg, event.digit, "rfc4733")

    def _on_rtcp(self, leg: Leg, data: bytes, addr: tuple[Any, ...]) -> None:
        if leg.session is not None:
            leg.session.receive_rtcp(data, (addr[0], addr[1]), self._now())

    def on_digit(self, leg: Leg, digit: str, source: str) -> None:
        log.info("%s DTMF %s (%s)", leg.leg_id, digit, source)

    def tick(self, now: float) -> None:
        """One 20 ms media tick over every live room."""
        for live in list(self.rooms.values()):
            result = live.room.tick(now)
            legs = live.legs
            for leg_id, datagram in result.outgoing:
                leg = legs.get(leg_id)
                if leg is None or leg.session is None or leg.session.remote_addr is None:
                    continue
                leg.sockets.send_rtp(datagram, leg.session.remote_addr)

    def housekeeping(self, now: float) -> None:
        """Once a second: RTCP reports and the RTP inactivity timeout."""
        timeout = self.config.rtp.inactivity_timeout_s
        for live in list(self.rooms.values()):
            for leg in list(live.legs.values()):
                session = leg.session
                if session is None:
                    continue
                if session.remote_addr is not None:
                    report = session.rtcp_report(now)
                    if report:
                        rtcp_addr = (session.remote_addr[0], session.remote_addr[1] + 1)
                        leg.sockets.send_rtcp(report, rtcp_addr)
                last = session.last_received if session.last_received is not None else leg.answered_at
                if not leg.on_hold and now - last > timeout:
                    log.info("%s: no RTP for %.0f s, hanging up", leg.leg_id, now - last)
                    self.hangup(leg)

    # ------------------------------------------------------------------ control

    def hangup(self, leg: Leg) -> None:
        if leg.ended:
            return
        self.endpoint.hangup(leg.call, now=self._now())
        self._drop_leg(leg)
        self.pump_sip()

    def hangup_all(self) -> None:
        for leg in list(self.legs_by_call.values()):
            self.hangup(leg)

    def end_conference(self, conf_id: str) -> None:
        live = self.rooms.get(conf_id)
        if live is not None:
            for leg in list(live.legs.values()):
                self.hangup(leg)

    def participants(self, conf_id: str) -> list[ParticipantView]:
        live = self.rooms.get(conf_id)
        if live is None:
            return []
        states = {s.leg_id: s for s in live.room.participants_snapshot()}
        views = []
        for leg in live.legs.values():
            state = states.get(leg.leg_id)
            views.append(
                ParticipantView(
                    participant_id=leg.leg_id,
                    caller_id_number=leg.caller_number,
                    caller_id_name=leg.caller_name,
                    muted=leg.muted,
                    deaf=leg.deaf,
                    on_hold=leg.on_hold,
                    role=leg.role,
                    joined_at=leg.joined_at,
                    talking=bool(state.talking) if state else False,
                    level_dbov=float(state.level_dbov) if state else -127.0,
                )
            )
        return views

    def act(self, conf_id: str, participant_id: str, action: Literal["mute", "unmute", "deaf", "undeaf", "kick"]) -> bool:
        live = self.rooms.get(conf_id)
        leg = live.legs.get(participant_id) if live else None
        if live is None or leg is None:
            return False
        if action == "kick":
            self.hangup(leg)
        elif action in ("mute", "unmute"):
            leg.muted = action == "mute"
            live.room.set_muted(leg.leg_id, leg.muted)
        else:
            leg.deaf = action == "deaf"
            live.room.set_deaf(leg.leg_id, leg.deaf)
        return True


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
