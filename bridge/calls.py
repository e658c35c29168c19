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
from pathlib import Path
from time import perf_counter
from typing import Any, Literal

from bridge_codecs import make_decoder
from bridge_codecs.base import Decoder

from bridge.adapters.rtp_transport import BatchReceiver, LegPort, LegSockets, PortAllocator, PortRangeExhausted
from bridge.audio_assets import AudioAssets
from bridge.conference import LiveConference, add_leg_to, is_scheduled_later
from bridge.config import Config
from bridge.control import ivr as ivrmod
from bridge.control.model import Conference, ParticipantView
from bridge.media.dtmf_detect import InbandDtmfDetector
from bridge.media.room import LegFailed, Room, SourceFinished
from bridge.rtp.packet import RtpError, RtpPacket
from bridge.rtp.session import RtpSession
from bridge.sdp.negotiate import NegotiatedMedia, NegotiationError, accept_answer, answer_offer, build_offer
from bridge.sip import endpoint as sipev
from bridge.sip.endpoint import Call, SipEndpoint

log = logging.getLogger("bridge.calls")

FRAME_MS = 20
LOBBY_RATE = 16000


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
    port: LegPort | None = None       # what the rooms pop from and packetise into
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
    access: bool = False  # dialled the access number: the IVR asks for the conference code
    encoder_opts: dict[str, Any] = field(default_factory=dict)
    ivr: ivrmod.Ivr | None = None
    ivr_token: int = 0
    lobby_then_hangup: bool = False  # a refusal prompt is playing in the lobby
    in_lobby: bool = False
    inband: InbandDtmfDetector | None = None  # G.711 callers without telephone-event
    inband_decoder: Decoder | None = None


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
        on_empty: Callable[[str], None] = lambda conf_id: None,
    ) -> None:
        self.config = config
        self.endpoint = endpoint
        self.resolve_dial = resolve_dial
        self.on_first_join = on_first_join   # a room got its first caller: status "active"
        self.on_empty = on_empty             # its last caller left: status "empty"
        self.allocator = allocator
        self.rtp_receiver = BatchReceiver()   # every leg's RTP, read once per media tick
        self.tick_stats = TickStats()
        self._digits: list[tuple[Leg, str, str]] = []   # key presses read from RTP, not yet acted on
        self.loop = loop
        self.pump_sip = pump_sip
        self.rooms: dict[str, LiveConference] = {}
        self.legs_by_call: dict[int, Leg] = {}
        self.assets = AudioAssets(Path(config.data_dir) / "media-cache", loop)
        # Callers still entering a code or PIN, or hearing a refusal, are heard by nobody here.
        self.lobby = Room("lobby", LOBBY_RATE)
        self.lobby_legs: dict[str, Leg] = {}
        self._ticks = 0
        # Fault containment: legs whose input broke something, ended after the tick.
        self._faulted: list[tuple[Leg, str, str]] = []
        self.leg_faults = 0
        self._unconfirmed: dict[str, Leg] = {}   # sending to an address not heard from yet

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

    def _reject(self, call: Call, status: int, reason: str | None = None, warning: str | None = None,
                warn_code: int = 399) -> None:
        log.info("rejected call to %r: %d %s (%s)", call.room, status, reason or "", warning or "")
        headers = []
        if warning:
            text = "".join(ch if ch.isprintable() and ch not in '"\\' else "?" for ch in warning)[:200]
            headers.append(("Warning", f'{warn_code} tutti-bridge "{text}"'))
        self.endpoint.respond(call, status, reason, headers=headers, now=self._now())

    def _codecs(self, conf: Conference | None) -> list[str]:
        return list((conf.codecs if conf else None) or self.config.media.codecs)

    def _on_invite(self, call: Call, request_host: str, offer: bytes | None) -> None:
        user = call.room or ""
        access = bool(user) and user == self.config.sip.access_user
        conf = None if access else self.resolve_dial(user)
        if conf is None and not access:
            self._reject(call, 404, "Not Found", f"no conference {user!r}")
            return
        if conf is not None:
            live = self.rooms.get(conf.id)
            # Refuse before answering what we already know; a PIN-protected room checks again at join.
            if live is not None and live.refuses("member") == "room_full" and not conf.moderator_pins:
                self._reject(call, 486, "Busy Here", "conference is full")
                return
        leg = Leg(
            leg_id="part_" + secrets.token_hex(8),
            call=call,
            conf_id=conf.id if conf else "",
            sockets=LegSockets(self.allocator, self.rtp_receiver),
            caller_number=call.caller_user or "",
            caller_name=call.caller_display or "",
            joined_at=datetime.now(timezone.utc),
            advertised_host=self._advertised_host(request_host),
            access=access,
        )
        self.legs_by_call[id(call)] = leg
        self.loop.create_task(self._answer(leg, self._codecs(conf), offer))

    async def _answer(self, leg: Leg, codecs: list[str], offer: bytes | None) -> None:
        call = leg.call
        try:
            port = await leg.sockets.open(
                self.loop,
                self._rtp_receiver_for(leg),
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
        if offer is not None:
            try:
                media = _usable(answer_offer(offer, codecs, host, port, leg.local_sdp_session, leg.sdp_version))
            except NegotiationError as err:
                self._drop_leg(leg)
                self._reject(call, 488, "Not Acceptable Here", err.reason, err.warn_code)
                self.pump_sip()
                return
            self.endpoint.respond(call, 200, "OK", body=media.answer_sdp, now=self._now())
            self._start_media(leg, media, confirmed=False)
        else:
            leg.pending_offer = build_offer(codecs, host, port, leg.local_sdp_session, leg.sdp_version)
            self.endpoint.respond(call, 200, "OK", body=leg.pending_offer, now=self._now())
        leg.answered_at = self._now()
        self.pump_sip()

    def _on_ack(self, call: Call, answer: bytes | None, initial: bool) -> None:
        leg = self.legs_by_call.get(id(call))
        if leg is None:
            return
        if leg.pending_offer is None:
            if initial and leg.session is not None:
                self._allow_sending(leg)     # the call is confirmed: media may go out now
            return
        offer, leg.pending_offer = leg.pending_offer, None
        try:
            if not answer:
                raise NegotiationError("no answer in the ACK")
            media = _usable(accept_answer(offer, answer))
        except NegotiationError as err:
            log.info("%s: answer unusable (%s); hanging up", leg.leg_id, err)
            self.hangup(leg)
            return
        if initial or leg.session is None:
            self._start_media(leg, media)
        else:
            self._update_media(leg, media)

    # ------------------------------------------------------------------ getting into a room

    def _start_media(self, leg: Leg, media: NegotiatedMedia, confirmed: bool = True) -> None:
        """Media for a negotiated leg. ``confirmed``: the ACK has come (late offer); else
        nothing is sent until it does (a spoofed INVITE is never ACKed: no reflection)."""
        leg.media = media
        leg.on_hold = media.on_hold
        leg.encoder_opts = self._encoder_opts(media.codec)
        leg.session = RtpSession(
            local_ssrc=random.getrandbits(32),
            jitter_min_ms=self.config.rtp.jitter_min_ms,
            jitter_max_ms=self.config.rtp.jitter_max_ms,
            learning_s=self.config.rtp.learning_window_s,
            **rtp_remote(media),
        )
        leg.session.open_learning(self._now())
        if confirmed:
            self._allow_sending(leg)
        else:
            leg.session.hold_sending()
        if media.dtmf_pt is None and media.codec in ("PCMU", "PCMA"):
            leg.inband = InbandDtmfDetector(8000)
            leg.inband_decoder = make_decoder(media.codec)
        # In-band DTMF detection reads every packet in on_rtp, which a receive lane bypasses.
        leg.port = LegPort(leg.session, leg.sockets, rx_lane=leg.inband is None)
        log.info(
            "%s answered (%s, codec %s/%d, rtp %s:%s)",
            leg.leg_id, leg.caller_number, media.codec, media.clock_rate, media.remote_host, media.remote_port,
        )
        if leg.access:
            self._start_ivr(leg, ivrmod.Ivr(lookup_code=self._lookup_code))
            return
        conf = self.resolve_dial(leg.conf_id)
        refusal = self._not_open(conf)
        if refusal is not None or conf is None:
            self._refuse(leg, refusal or "ended")
        elif conf.member_pins or conf.moderator_pins:
            target = ivrmod.RoomTarget(conf.id, tuple(conf.member_pins), tuple(conf.moderator_pins))
            self._start_ivr(leg, ivrmod.Ivr(room=target))
        else:
            self._join(leg, conf, "member")

    @staticmethod
    def _not_open(conf: Conference | None) -> str | None:
        """The prompt for a conference that cannot be joined now, or None when it can."""
        if conf is None:
            return "ended"
        if is_scheduled_later(conf, datetime.now(timezone.utc)):
            return "not_started"
        return None

    def _lookup_code(self, code: str) -> ivrmod.RoomTarget | None:
        conf = self.resolve_dial(code)
        if conf is None or not code.isdigit() or conf.dial_in_code != code:
            return None
        return ivrmod.RoomTarget(conf.id, tuple(conf.member_pins), tuple(conf.moderator_pins))

    def _to_lobby(self, leg: Leg) -> None:
        if leg.in_lobby:
            return
        add_leg_to(self.lobby, leg)
        self.lobby.set_isolated(leg.leg_id, True)
        self.lobby_legs[leg.leg_id] = leg
        leg.in_lobby = True

    def _leave_lobby(self, leg: Leg) -> None:
        if leg.in_lobby:
            self.lobby.remove_leg(leg.leg_id)
            self.lobby_legs.pop(leg.leg_id, None)
            leg.in_lobby = False

    def _refuse(self, leg: Leg, prompt: str) -> None:
        """Answered, but not let in: the caller hears why, then gets a BYE."""
        log.info("%s refused: %s", leg.leg_id, prompt)
        self._to_lobby(leg)
        leg.lobby_then_hangup = True
        self.lobby.set_leg_source(leg.leg_id, self.assets.prompt([prompt], LOBBY_RATE))

    def _start_ivr(self, leg: Leg, ivr: ivrmod.Ivr) -> None:
        leg.ivr = ivr
        self._to_lobby(leg)
        self._run_ivr(leg, ivr.start(self._now()))

    def _run_ivr(self, leg: Leg, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, ivrmod.PlayPrompt):
                leg.ivr_token = action.token
                self.lobby.set_leg_source(leg.leg_id, self.assets.prompt(action.names, LOBBY_RATE))
            elif isinstance(action, ivrmod.StopPrompt):
                self.lobby.set_leg_source(leg.leg_id, None)
            elif isinstance(action, ivrmod.Hangup):
                log.info("%s: IVR ends the call (%s)", leg.leg_id, action.reason)
                self.hangup(leg)
            elif isinstance(action, ivrmod.Join):
                leg.ivr = None
                conf = self.resolve_dial(action.room)
                refusal = self._not_open(conf)
                if refusal is not None or conf is None:
                    self._refuse(leg, refusal or "ended")
                else:
                    self._join(leg, conf, action.role)

    def _join(self, leg: Leg, conf: Conference, role: str) -> None:
        leg.conf_id = conf.id
        live = self.rooms.get(conf.id)
        refusal = live.refuses(role) if live is not None else None
        if refusal is not None:
            self._refuse(leg, refusal)
            return
        self._leave_lobby(leg)
        if live is None:
            live = self.rooms[conf.id] = LiveConference(conf, self._max_talkers, self.assets, self.hangup,
                                                          self._leg_failed)
            self.on_first_join(conf.id)
        live.join(leg, role)
        leg.in_room = True

    def _max_talkers(self, conf: Conference) -> int:
        return conf.max_talkers if conf.max_talkers is not None else self.config.media.max_talkers

    def _encoder_opts(self, codec: str) -> dict[str, Any]:
        if codec == "opus":
            return {"bitrate": self.config.media.opus_bitrate, "complexity": self.config.media.opus_complexity}
        return {}

    # ------------------------------------------------------------------ mid-call changes

    def _on_reoffer(self, call: Call, offer: bytes | None) -> None:
        leg = self.legs_by_call.get(id(call))
        if leg is None or leg.sockets.port == 0:
            self.endpoint.respond(call, 481, now=self._now())
            return
        live = self.rooms.get(leg.conf_id)
        host = leg.advertised_host
        leg.sdp_version += 1
        codecs = self._codecs(live.conf if live else None)
        if offer is None:
            # Offer-less re-INVITE: we offer in the 200 and read the answer in the ACK.
            leg.pending_offer = build_offer(codecs, host, leg.sockets.port, leg.local_sdp_session, leg.sdp_version)
            self.endpoint.respond(call, 200, "OK", body=leg.pending_offer, now=self._now())
            return
        try:
            media = _usable(answer_offer(offer, codecs, host, leg.sockets.port, leg.local_sdp_session,
                                         leg.sdp_version))
        except NegotiationError as err:
            self._reject(call, 488, "Not Acceptable Here", err.reason, err.warn_code)
            return
        self.endpoint.respond(call, 200, "OK", body=media.answer_sdp, now=self._now())
        if leg.session is not None:
            self._update_media(leg, media)

    def _update_media(self, leg: Leg, media: NegotiatedMedia) -> None:
        old = leg.media
        leg.media = media
        assert leg.session is not None
        if leg.session.update_remote(**rtp_remote(media), now=self._now()):
            self._allow_sending(leg)        # a new address: the reflection bound starts over
        room = self._room_of(leg)
        if room is not None and (old is None or old.codec != media.codec or old.payload_type != media.payload_type):
            leg.encoder_opts = self._encoder_opts(media.codec)
            room.set_codec(leg.leg_id, media.codec, media.codec, media.payload_type,
                           encoder_opts=leg.encoder_opts)
        if media.on_hold != leg.on_hold:
            leg.on_hold = media.on_hold
            log.info("%s %s", leg.leg_id, "held" if media.on_hold else "resumed")
            live = self.rooms.get(leg.conf_id)
            if live is not None and leg.in_room:
                live.set_on_hold(leg.leg_id, media.on_hold)

    def _room_of(self, leg: Leg) -> Room | None:
        if leg.in_lobby:
            return self.lobby
        live = self.rooms.get(leg.conf_id)
        return live.room if live is not None and leg.in_room else None

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
        log.info("%s left %s (%s)", leg.leg_id, leg.conf_id or "lobby", reason)
        self._drop_leg(leg)

    def _drop_leg(self, leg: Leg) -> None:
        leg.ended = True
        self._unconfirmed.pop(leg.leg_id, None)
        self.legs_by_call.pop(id(leg.call), None)
        self._leave_lobby(leg)
        live = self.rooms.get(leg.conf_id)
        if live is not None and leg.in_room:
            leg.in_room = False
            live.leave(leg.leg_id)
            if not live.members:
                del self.rooms[leg.conf_id]
                self.on_empty(leg.conf_id)
        leg.sockets.close()

    # ------------------------------------------------------------------ media

    def _rtp_receiver_for(self, leg: Leg) -> Callable[[bytes, tuple[Any, ...]], None]:
        """The leg's RTP datagram handler (runs once per packet: kept to one call deep).
        Leg sockets are IPv4, so the source address is already the (host, port) pair.
        It may run inside a room's tick (``LegPort.pop_frame``), so key presses are queued
        and acted on once the tick is over."""
        clock = self.loop.time
        digits = self._digits

        def on_rtp(data: bytes, addr: tuple[Any, ...]) -> None:
            session = leg.session
            if session is None:
                return
            try:
                events = session.receive(data, addr, clock())   # type: ignore[arg-type]
                if events:
                    for event in events:
                        digits.append((leg, event.digit, "rfc4733"))
                if leg.inband is not None:
                    self._detect_inband(leg, data)
            except Exception as exc:    # contained: this leg ends after the tick, nobody else notices
                self._leg_fault(leg, "receive", exc)

        return on_rtp

    def _detect_inband(self, leg: Leg, data: bytes) -> None:
        """In-band DTMF for G.711 callers that offered no telephone-event."""
        assert leg.media is not None and leg.inband is not None and leg.inband_decoder is not None
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return  # the session has already counted it as garbage
        if packet.payload_type == leg.media.payload_type and packet.payload:
            for digit in leg.inband.process(leg.inband_decoder.decode(packet.payload)):
                self._digits.append((leg, digit, "inband"))

    def _on_rtcp(self, leg: Leg, data: bytes, addr: tuple[Any, ...]) -> None:
        if leg.session is not None:
            try:
                leg.session.receive_rtcp(data, (addr[0], addr[1]), self._now())
            except Exception as exc:
                self._leg_fault(leg, "rtcp", exc)
                self._end_faulted()

    # ------------------------------------------------------------------ fault containment

    def _leg_fault(self, leg: Leg, phase: str, cause: BaseException | str) -> None:
        """Something this leg's input caused raised: end this leg (after the current tick),
        with one log line and a counter; every other leg and room goes on."""
        text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        if not isinstance(cause, str):
            log.debug("%s: %s fault", leg.leg_id, phase, exc_info=cause)
        self._faulted.append((leg, phase, text[:200]))

    def _end_faulted(self) -> None:
        faulted, self._faulted = self._faulted, []
        for leg, phase, text in faulted:
            if leg.ended:
                continue
            self.leg_faults += 1
            log.warning("%s: ended after a %s fault: %s", leg.leg_id, phase, text)
            self.hangup(leg)

    def _leg_failed(self, leg: Leg, event: LegFailed) -> None:
        """A room (a conference's or the lobby) took this leg out after its port raised."""
        self._leg_fault(leg, event.phase, event.error)

    # ------------------------------------------------------------------ reflection bound

    def _allow_sending(self, leg: Leg) -> None:
        assert leg.session is not None
        leg.session.allow_sending(self._now(), self.config.rtp.unconfirmed_send_s)
        if not leg.session.confirmed:
            self._unconfirmed[leg.leg_id] = leg

    def _check_unconfirmed(self, now: float) -> None:
        for leg in list(self._unconfirmed.values()):
            session = leg.session
            if session is None or session.confirmed:
                self._unconfirmed.pop(leg.leg_id, None)
            elif session.check_unconfirmed(now):
                self._unconfirmed.pop(leg.leg_id, None)
                log.info("%s: nothing received from %s:%s; RTP paused until it answers",
                         leg.leg_id, leg.media.remote_host if leg.media else "?",
                         leg.media.remote_port if leg.media else "?")

    def on_digit(self, leg: Leg, digit: str, source: str) -> None:
        log.info("%s DTMF %s (%s)", leg.leg_id, digit, source)
        now = self._now()
        if leg.ivr is not None:
            self._run_ivr(leg, leg.ivr.on_digit(digit, now))
        elif leg.in_room:
            live = self.rooms.get(leg.conf_id)
            if live is not None:
                live.on_digit(leg.leg_id, digit, now)

    def tick(self, now: float) -> None:
        """One 20 ms media tick over every live room and the lobby.

        Which legs have RTP queued is asked once; each room reads a leg's datagram as it
        pops that leg's jitter buffer and sends each packet as it builds it (``LegPort``);
        what no room read (legs in no room, a second queued datagram) is read last."""
        t0 = perf_counter()
        receiver = self.rtp_receiver
        receiver.mark_ready()
        t1 = perf_counter()
        for live in list(self.rooms.values()):
            try:
                live.tick(now)
            except Exception:   # a bug in one room must not silence the others
                log.exception("room %s: tick failed", live.conf.id)
        if self.lobby_legs:
            try:
                result = self.lobby.tick(now)
            except Exception:
                log.exception("lobby tick failed")
            else:
                for event in result.events:
                    if isinstance(event, SourceFinished) and event.leg_id is not None:
                        self._lobby_prompt_finished(event.leg_id, now)
                    elif isinstance(event, LegFailed) and event.leg_id in self.lobby_legs:
                        self._leg_failed(self.lobby_legs[event.leg_id], event)
        t2 = perf_counter()
        receiver.drain()
        if self._faulted:
            self._end_faulted()
        if self._digits:
            digits = self._digits[:]
            self._digits.clear()        # the same list: the RTP handlers hold it
            for leg, digit, source in digits:
                if not leg.ended:
                    self.on_digit(leg, digit, source)
        self.tick_stats.add(receive_s=(t1 - t0) + (perf_counter() - t2), rooms_s=t2 - t1)
        self._ticks += 1
        if self._unconfirmed:     # the reflection bound, to the tick (usually an empty dict)
            self._check_unconfirmed(now)
        if self._ticks % 5 == 0:  # control timers at 100 ms resolution
            try:
                self._control_timers(now)
            except Exception:
                log.exception("control timers failed")

    def _control_timers(self, now: float) -> None:
        for leg in list(self.lobby_legs.values()):
            if leg.ivr is not None:
                self._run_ivr(leg, leg.ivr.on_timer(now))
        # A key press whose RFC 4733 end packets were all lost is reported after a timeout.
        for leg in list(self.legs_by_call.values()):
            if leg.session is not None and leg.session.dtmf.pending:
                for event in leg.session.poll(now):
                    self.on_digit(leg, event.digit, "rfc4733")

    def _lobby_prompt_finished(self, leg_id: str, now: float) -> None:
        leg = self.lobby_legs.get(leg_id)
        if leg is None:
            return
        if leg.lobby_then_hangup:
            self.hangup(leg)
        elif leg.ivr is not None:
            self._run_ivr(leg, leg.ivr.on_prompt_finished(now, leg.ivr_token))

    def housekeeping(self, now: float) -> None:
        """Once a second: RTCP reports, the RTP inactivity timeout, closing prompts. Legs and
        rooms one by one: one that raises is ended (legs) or logged (rooms), the rest go on."""
        for leg in list(self.legs_by_call.values()):
            try:
                self._housekeep_leg(leg, now)
            except Exception as exc:
                self._leg_fault(leg, "housekeeping", exc)
        for live in list(self.rooms.values()):
            try:
                live.housekeeping(now)
            except Exception:
                log.exception("room %s: housekeeping failed", live.conf.id)
        self._end_faulted()

    def _housekeep_leg(self, leg: Leg, now: float) -> None:
        session = leg.session
        if session is None:
            return
        if session.remote_addr is not None:
            report = session.rtcp_report(now)
            if report:
                host, port = session.remote_addr
                # remote_rtcp_port is in range: the SDP check refuses RTP ports above 65534.
                leg.sockets.send_rtcp(report, (host, leg.media.remote_rtcp_port if leg.media else port + 1))
        last = session.last_received if session.last_received is not None else leg.answered_at
        if not leg.on_hold and now - last > self.config.rtp.inactivity_timeout_s:
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

    def conference_changed(self, conf: Conference) -> None:
        live = self.rooms.get(conf.id)
        if live is not None:
            live.apply_settings(conf)

    def end_conference(self, conf_id: str) -> None:
        """Everyone hears the closing prompt, then gets a BYE."""
        live = self.rooms.get(conf_id)
        if live is not None:
            live.close("ended", self._now())

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
            live.set_muted(participant_id, action == "mute")
        else:
            live.set_deaf(participant_id, action == "deaf")
        return True


@dataclass
class TickStats:
    """Where the media ticks' time went (logged every few seconds; read by the benchmarks)."""
    ticks: int = 0
    receive_s: float = 0.0    # asking which sockets have RTP, reading what rooms did not pull
    rooms_s: float = 0.0      # room ticks: pull + jitter pop, decode, mix, encode, packetise, send

    def add(self, receive_s: float, rooms_s: float) -> None:
        self.ticks += 1
        self.receive_s += receive_s
        self.rooms_s += rooms_s

    def summary(self) -> str:
        per_tick = 1e6 / max(1, self.ticks)
        return (f"media ticks: {self.ticks} ticks, per tick receive {self.receive_s * per_tick:.0f} us, "
                f"rooms {self.rooms_s * per_tick:.0f} us")


def _usable(media: NegotiatedMedia) -> NegotiatedMedia:
    """What the negotiator accepts but these sockets cannot use (they are IPv4)."""
    if ":" in media.remote_host:
        raise NegotiationError("IPv6 media addresses are not supported by this bridge", 301)
    return media


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
