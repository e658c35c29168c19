"""The call core: SIP events, key presses and media ticks in; answers, rooms and events out.

Sans-IO like the SIP endpoint it drives: every entry point takes ``now`` (the media clock's
seconds) and the wall clock is injected, so a unit test runs whole call flows with a fake clock
and no sockets. What it needs from the world comes through the small interfaces in
``bridge/call/ports.py`` (media transports, prompts, the conference directory); SIP messages
it produces wait in the endpoint until the adapter transmits them, domain events in the bus.

Flow of one inbound call: INVITE -> bind media (503 when no port is free) -> ring for
``sip.answer_delay_ms`` -> 200 with the SDP answer -> ACK -> RTP may flow -> the lobby
(IVR for a code or PIN) or straight into the conference -> BYE from either side.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bridge_codecs import make_decoder

from bridge.call.browser import BrowserSeats
from bridge.call.callcontrol import CallControl
from bridge.call.cascade import Cascade
from bridge.call.dialout import DialOut, DialOutError
from bridge.call.leg import Leg, advertised_host, inband_digits, leg_housekeeping, parse_info_dtmf, rtp_remote
from bridge.call.leg import check_unconfirmed, encoder_options, jitter_min_ms, loss_depth, negotiate, our_offer
from bridge.call.leg import take_rtcp, usable, warning_header
from bridge.call.live import LiveConference, is_scheduled_later
from bridge.call.lobby import Lobby
from bridge.call.ports import Datagram, Directory, MediaFactory, NoMediaPorts, Prompts
from bridge.config import Config, TrunkConfig
from bridge.control import events as ev
from bridge.control import ivr as ivrmod
from bridge.control.model import Action, Conference, ParticipantView
from bridge.control.participants import Participant, ParticipantBook
from bridge.media.dtmf_detect import InbandDtmfDetector
from bridge.media.room import LegFailed, Room
from bridge.recording.control import RecordingSetup
from bridge.rtp.session import RtpSession
from bridge.sdp.negotiate import NegotiatedMedia, NegotiationError, accept_answer
from bridge.sip import endpoint as sipev
from bridge.sip.endpoint import Call, SipEndpoint
from bridge.sip.events import CallAnswered, CallFailed, CallProgress

log = logging.getLogger("bridge.calls")


class CallCore:
    def __init__(self, config: Config, endpoint: SipEndpoint, directory: Directory, media: MediaFactory,
                 prompts: Prompts, bus: ev.EventBus, wall_clock: Callable[[], datetime],
                 recording: RecordingSetup | None = None) -> None:
        self.config = config
        self.recording = recording           # None: no recorder wired (unit tests)
        self.endpoint = endpoint
        self.directory = directory
        self.media = media
        self.prompts = prompts
        self.bus = bus
        self.wall = wall_clock
        self.now = 0.0                       # the media clock at the last entry point
        self.rooms: dict[str, LiveConference] = {}
        self.legs_by_call: dict[int, Leg] = {}
        self.book = ParticipantBook()
        self.lobby = Lobby(prompts, self._join_by_id, self.hangup, self._leg_failed)
        self.dialout = DialOut(self)
        self.parked = CallControl(self)                 # Telnyx call control
        self.browsers = BrowserSeats(self)              # WebRTC participants (no SIP leg)
        self.cascade = Cascade(self)                    # one room across nodes
        self._digits: list[tuple[Leg, str, str]] = []   # key presses read from RTP, not yet acted on
        self._ringing: dict[str, Leg] = {}              # answered after sip.answer_delay_ms
        self._unconfirmed: dict[str, Leg] = {}          # sending to an address not heard from yet
        self._faulted: list[tuple[Leg, str, str]] = []  # legs whose input broke something
        self.leg_faults = 0
        self._ticks = 0

    # ------------------------------------------------------------------ SIP events

    def handle_sip_events(self, now: float) -> None:
        self.now = now
        while (event := self.endpoint.next_event()) is not None:
            try:
                self._dispatch(event)
            except Exception:  # one bad call must never take the others down
                log.exception("error handling %s", type(event).__name__)

    def _dispatch(self, event: Any) -> None:
        if isinstance(event, sipev.IncomingCall):
            self._on_invite(event.call, event.request, event.offer)
        elif isinstance(event, sipev.CallConfirmed):
            self._on_ack(event.call, event.answer, event.initial)
        elif isinstance(event, (sipev.ReInvite, sipev.Update)):
            self._on_reoffer(event.call, event.offer)
        elif isinstance(event, sipev.Info):
            leg = self.legs_by_call.get(id(event.call))
            digit = parse_info_dtmf(event.content_type, event.body)
            if leg is not None and digit is not None:
                self.on_digit(leg, digit, "info")
        elif isinstance(event, (CallProgress, CallAnswered, CallFailed)):
            leg = self.legs_by_call.get(id(event.call))
            if leg is not None:
                self.dialout.on_event(leg, event)
        elif isinstance(event, sipev.CallEnded):
            leg = self.legs_by_call.get(id(event.call))
            if leg is not None:
                log.info("%s left %s (%s)", leg.leg_id, leg.conf_id or "lobby", event.reason,
                         extra=leg.log_extra)
                self._drop_leg(leg, "hangup")

    def _reject(self, call: Call, status: int, reason: str | None = None, warning: str | None = None,
                warn_code: int = 399) -> None:
        log.info("rejected call to %r: %d %s (%s)", call.room, status, reason or "", warning or "",
                 extra={"call_id": call.call_id})
        headers = [warning_header(warning, warn_code)] if warning else []
        self.endpoint.respond(call, status, reason, headers=headers, now=self.now)

    def _codecs(self, conf: Conference | None) -> list[str]:
        return list((conf.codecs if conf else None) or self.config.media.codecs)

    def _on_invite(self, call: Call, request: sipev.SipRequest, offer: bytes | None) -> None:
        user, request_host = call.room or "", request.uri.host
        access = bool(user) and user == self.config.sip.access_user
        app = None if access else self.parked.app_for(user)
        conf = None if access or app else self.directory.resolve_dial(user)
        if conf is None and not access and app is None:
            self._reject(call, 404, "Not Found", f"no conference {user!r}")
            return
        kind = self.cascade.admit(call, request, conf.id) if conf is not None else "plain"
        if kind is None:      # answered: 302 to a part node, 403 to an untrusted one
            return
        if conf is not None and kind != "trunk":
            live = self.rooms.get(conf.id)
            moved = None if live is not None or kind == "part" else self.directory.redirect(conf.id, user)
            if moved is not None:   # another node mixes the room (README "Shared state in Redis")
                self.endpoint.respond(call, 302, "Moved Temporarily", headers=[("Contact", moved)], now=self.now)
                return
            # Refuse before answering what we already know; a PIN-protected room checks again at join.
            if live is not None and live.refuses("member") == "room_full" and not conf.moderator_pins:
                self._reject(call, 486, "Busy Here", "conference is full")
                return
        participant = Participant("part_" + secrets.token_hex(8), "sip_inbound", call.caller_user or "",
                                  call.caller_display or "", self.wall(), conf.id if conf else "")
        leg = Leg(participant, call, advertised_host(self.config, request_host), self._codecs(conf), offer=offer,
                  access=access, trunk=kind == "trunk", srtp=conf.srtp if conf else None)
        try:
            leg.transport = self.media.open(leg.leg_id, self._rtp_receiver_for(leg),
                                            lambda data, addr: self._on_rtcp(leg, data, addr))
        except NoMediaPorts:
            self._reject(call, 503, "Service Unavailable", "no free RTP ports")
            return
        self.legs_by_call[id(call)] = leg
        if app is not None:
            return self.parked.park(leg, app)   # rings until the application answers it
        delay = self.config.sip.answer_delay_ms / 1000
        if delay > 0:
            self.endpoint.respond(call, 180, "Ringing", now=self.now)
            leg.answer_due = self.now + delay
            self._ringing[leg.leg_id] = leg
        else:
            self._answer(leg)

    def _answer(self, leg: Leg) -> None:
        assert leg.transport is not None
        call = leg.call
        leg.answer_due = None
        if leg.offer is not None:
            try:
                media = negotiate(leg, leg.offer, leg.codecs, leg.srtp or self.config.sip.srtp)
            except NegotiationError as err:
                self._drop_leg(leg, "hangup")
                self._reject(call, 488, "Not Acceptable Here", err.reason, err.warn_code)
                return
            self.endpoint.respond(call, 200, "OK", body=media.answer_sdp, now=self.now)
            self._start_media(leg, media, confirmed=False)
        else:
            leg.pending_offer = our_offer(leg, leg.codecs, leg.srtp or self.config.sip.srtp)
            self.endpoint.respond(call, 200, "OK", body=leg.pending_offer, now=self.now)
        leg.answered_at = self.now

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
            media = usable(accept_answer(offer, answer))
        except NegotiationError as err:
            log.info("%s: answer unusable (%s); hanging up", leg.leg_id, err, extra=leg.log_extra)
            self.hangup(leg, "hangup")
            return
        if initial or leg.session is None:
            self._start_media(leg, media)
        else:
            self._update_media(leg, media)

    # ------------------------------------------------------------------ getting into a room

    def _setup_media(self, leg: Leg, media: NegotiatedMedia, confirmed: bool) -> None:
        """Media for a negotiated leg. ``confirmed``: the ACK has come (late offer); else
        nothing is sent until it does (a spoofed INVITE is never ACKed: no reflection)."""
        assert leg.transport is not None
        leg.media = media
        leg.participant.on_hold = media.on_hold
        leg.encoder_opts = encoder_options(self.config, media.codec, media.fmtp)
        rtp = self.config.rtp
        leg.session = RtpSession(local_ssrc=random.getrandbits(32),
                                 jitter_min_ms=jitter_min_ms(self.config, media.codec),
                                 jitter_max_ms=rtp.jitter_max_ms, learning_s=rtp.learning_window_s,
                                 loss_depth=loss_depth(self.config, media.codec), **rtp_remote(media))
        leg.session.open_learning(self.now)
        if confirmed:
            self._allow_sending(leg)
        else:
            leg.session.hold_sending()
        if media.dtmf_pt is None and media.codec in ("PCMU", "PCMA"):
            leg.inband = InbandDtmfDetector(8000)
            leg.inband_decoder = make_decoder(media.codec)
        # In-band DTMF detection reads every packet in on_rtp, which a receive lane bypasses.
        leg.room_port = leg.transport.room_port(leg.session, steady_rx=leg.inband is None, srtp=media.srtp)
        log.info("%s answered (%s, codec %s/%d, rtp %s:%s)", leg.leg_id, leg.participant.caller_number,
                 media.codec, media.clock_rate, media.remote_host, media.remote_port, extra=leg.log_extra)

    def _start_media(self, leg: Leg, media: NegotiatedMedia, confirmed: bool = True) -> None:
        """An incoming call's media is up: the IVR, or straight into its conference."""
        self._setup_media(leg, media, confirmed)
        if leg.trunk:
            return self.cascade.seat(leg)
        if self.parked.holds(leg):      # answered over the API: waits for a conference
            return
        if leg.access:
            self.lobby.start_ivr(leg, ivrmod.Ivr(lookup_code=self._lookup_code), self.now)
            return
        conf = self.directory.resolve_dial(leg.conf_id)
        if conf is not None and conf.require_pin and self._not_open(conf) is None:
            target = ivrmod.RoomTarget(conf.id, tuple(conf.member_pins), tuple(conf.moderator_pins))
            self.lobby.start_ivr(leg, ivrmod.Ivr(room=target), self.now)
        else:
            self._join_by_id(leg, leg.conf_id, "member")

    def start_answered(self, leg: Leg, media: NegotiatedMedia, role: str) -> None:
        """A dialled participant answered: media, then their conference (no IVR)."""
        self._setup_media(leg, media, confirmed=True)
        self.cascade.seat(leg) if leg.trunk else self._join_by_id(leg, leg.conf_id, role)

    def rtp_handlers(self, leg: Leg) -> tuple[Datagram, Datagram]:
        return self._rtp_receiver_for(leg), lambda data, addr: self._on_rtcp(leg, data, addr)

    def release(self, leg: Leg) -> None:  # a dial-out that never got anywhere
        self._drop_leg(leg, "hangup")

    def dial_out(self, conf: Conference, number: str, name: str, role: str, muted: bool, now: float,
                 timeout_s: float | None = None, trunk: TrunkConfig | None = None) -> ParticipantView:
        """Call ``number`` into ``conf`` (through ``trunk``, else the account's); raises DialOutError."""
        self.now = now
        trunk = trunk or self.config.trunk_for(conf.account_id)
        if trunk is None:
            raise DialOutError("no trunk configured for this account (config.yaml: trunks, dial_out.default_trunk)",
                               "dial_out_not_configured")
        p = self.dialout.dial(conf.id, number, name, role, muted, trunk, advertised_host(self.config, ""),
                              self._codecs(conf), timeout_s or self.config.dial_out.no_answer_timeout_s)
        return p.view()

    def _not_open(self, conf: Conference | None) -> str | None:
        """The prompt for a conference that cannot be joined now, or None when it can."""
        if conf is None:
            return "ended"
        if is_scheduled_later(conf, self.wall()):
            return "not_started"
        return None

    def _lookup_code(self, code: str) -> ivrmod.RoomTarget | None:
        conf = self.directory.resolve_dial(code)
        if conf is None or not code.isdigit() or conf.dial_in_code != code:
            return None
        return ivrmod.RoomTarget(conf.id, tuple(conf.member_pins), tuple(conf.moderator_pins))

    def _join_by_id(self, leg: Leg, conf_id: str, role: str) -> None:
        conf = self.directory.resolve_dial(conf_id)
        refusal = self._not_open(conf) or leg.srtp_refusal(conf)
        if refusal is not None or conf is None:
            self.lobby.refuse(leg, refusal or "ended")
            return
        live = self.rooms.get(conf.id)
        refusal = live.refuses(role) if live is not None else None
        if refusal is not None:
            self.lobby.refuse(leg, refusal)
            return
        self.lobby.leave(leg)
        live = live or self.open_room(conf)
        self.cascade.joining(live)
        leg.participant.conference_id = conf.id
        self.book.seat(leg.participant)
        live.join(leg.participant, leg, role, self.wall())
        leg.in_room = True

    def open_room(self, conf: Conference) -> LiveConference:
        live = self.rooms[conf.id] = LiveConference(
            conf, self._max_talkers, self.prompts, self.bus, lambda pid, why: self._hangup_id(conf.id, pid, why),
            lambda pid, e: self._leg_failed_id(conf.id, pid, e), recording=self.recording, wall=self.wall,
            skip_inactive_opus=self.config.media.opus_skip_inactive,
            passthrough=self.config.media.sole_talker_passthrough)
        return live

    def _max_talkers(self, conf: Conference) -> int:
        return conf.max_talkers if conf.max_talkers is not None else self.config.media.max_talkers

    # ------------------------------------------------------------------ mid-call changes

    def _on_reoffer(self, call: Call, offer: bytes | None) -> None:
        leg = self.legs_by_call.get(id(call))
        if leg is None or leg.transport is None or leg.answer_due is not None:
            self.endpoint.respond(call, 481 if leg is None else 491, now=self.now)
            return
        live = self.rooms.get(leg.conf_id)
        leg.sdp_version += 1
        codecs = self._codecs(live.conf if live else None)
        if offer is None:
            # Offer-less re-INVITE: we offer in the 200 and read the answer in the ACK.
            leg.pending_offer = our_offer(leg, codecs, leg.srtp or self.config.sip.srtp)
            self.endpoint.respond(call, 200, "OK", body=leg.pending_offer, now=self.now)
            return
        try:
            media = negotiate(leg, offer, codecs, leg.srtp or self.config.sip.srtp)
        except NegotiationError as err:
            self._reject(call, 488, "Not Acceptable Here", err.reason, err.warn_code)
            return
        self.endpoint.respond(call, 200, "OK", body=media.answer_sdp, now=self.now)
        if leg.session is not None:
            self._update_media(leg, media)

    def _update_media(self, leg: Leg, media: NegotiatedMedia) -> None:
        old = leg.media
        leg.media = media
        assert leg.session is not None and leg.transport is not None
        leg.transport.set_srtp(media.srtp)      # a re-offer may bring new keys (RFC 4568 7.1.4)
        if leg.session.update_remote(**rtp_remote(media), now=self.now,
                                     loss_depth=loss_depth(self.config, media.codec)):
            self._allow_sending(leg)        # a new address: the reflection bound starts over
        room = self._room_of(leg)
        codec_of = (media.codec, media.payload_type, media.fmtp)    # fmtp: maxaveragebitrate
        if room is not None and (old is None or (old.codec, old.payload_type, old.fmtp) != codec_of):
            leg.encoder_opts = encoder_options(self.config, media.codec, media.fmtp)
            room.set_codec(leg.leg_id, media.codec, media.codec, media.payload_type,
                           encoder_opts=leg.encoder_opts)
        if media.on_hold != leg.participant.on_hold:
            log.info("%s %s", leg.leg_id, "held" if media.on_hold else "resumed", extra=leg.log_extra)
            live = self.rooms.get(leg.conf_id)
            if live is not None and leg.in_room:
                live.set_on_hold(leg.leg_id, media.on_hold)
            else:
                leg.participant.on_hold = media.on_hold

    # ------------------------------------------------------------------ leaving

    def hangup(self, leg: Leg, reason: ev.LeaveReason) -> None:
        """We end the call: BYE (or a final response to an unanswered INVITE)."""
        if leg.ended:
            return
        self.endpoint.hangup(leg.call, now=self.now)
        self._drop_leg(leg, reason)

    def _hangup_id(self, conf_id: str, pid: str, reason: ev.LeaveReason) -> None:
        leg = self._leg_of(conf_id, pid)
        self.hangup(leg, reason) if leg is not None else self.browsers.leave(pid, reason)  # no leg: a browser

    def _leg_of(self, conf_id: str, pid: str) -> Leg | None:
        # Legs by participant id, for the (rare) control paths; the hot paths hold the leg.
        for leg in self.legs_by_call.values():
            if leg.leg_id == pid and leg.conf_id == conf_id:
                return leg
        return None

    def _drop_leg(self, leg: Leg, reason: ev.LeaveReason) -> None:
        leg.ended = True
        self.dialout.dropped(leg)
        self.parked.dropped(leg, reason)
        self._unconfirmed.pop(leg.leg_id, None)
        self._ringing.pop(leg.leg_id, None)
        self.legs_by_call.pop(id(leg.call), None)
        self.lobby.leave(leg)
        live = self.rooms.get(leg.conf_id)
        if live is not None and leg.in_room:
            leg.in_room = False
            live.leave(leg.leg_id, reason, self.wall())     # a cascade trunk: out of the mix, no event
            self.book.left(leg.participant)
            if not live.members and not live.trunks and self.rooms.pop(leg.conf_id, None) is live:
                self.bus.publish(ev.ConferenceEnded(leg.conf_id, reason=live.end_reason))
        self.cascade.dropped(leg, live)    # a part node's last caller takes the trunk along
        if leg.transport is not None:
            leg.transport.close()

    def hangup_all(self, now: float) -> None:
        self.now = now
        for leg in list(self.legs_by_call.values()):
            self.hangup(leg, "shutdown")

    # ------------------------------------------------------------------ media input

    def _rtp_receiver_for(self, leg: Leg) -> Callable[[bytes, tuple[Any, ...]], None]:
        """The leg's RTP datagram handler (runs once per packet: kept to one call deep).
        Leg sockets are IPv4, so the source address is already the (host, port) pair.
        It runs inside a room's tick, so key presses are queued and acted on once the tick
        is over; its time is the tick's (the playout has 20 ms resolution anyway)."""
        digits = self._digits

        def on_rtp(data: bytes, addr: tuple[Any, ...]) -> None:
            session = leg.session
            if session is None:
                return
            try:
                events = session.receive(data, addr, self.now)   # type: ignore[arg-type]
                if events:
                    for event in events:
                        digits.append((leg, event.digit, "rfc4733"))
                if leg.inband is not None:
                    for digit in inband_digits(leg, data):
                        digits.append((leg, digit, "inband"))
            except Exception as exc:    # contained: this leg ends after the tick, nobody else notices
                self._leg_fault(leg, "receive", exc)

        return on_rtp

    def _on_rtcp(self, leg: Leg, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            take_rtcp(leg, self._room_of(leg), data, (addr[0], addr[1]), self.now)
        except Exception as exc:
            self._leg_fault(leg, "rtcp", exc)
            self._end_faulted()

    def _room_of(self, leg: Leg) -> Room | None:
        live = self.rooms.get(leg.conf_id) if leg.in_room else None
        return self.lobby.room if leg.in_lobby else live.room if live is not None else None

    def on_digit(self, leg: Leg, digit: str, source: str) -> None:
        log.debug("%s DTMF %s (%s)", leg.leg_id, "*" if leg.ivr is not None else digit, source,
                 extra=leg.log_extra)
        if self.lobby.on_digit(leg, digit, self.now):
            return              # PIN digits stay in the IVR: never logged, never published
        live = self.rooms.get(leg.conf_id)
        if live is not None and leg.in_room:
            live.on_digit(leg.leg_id, digit, source, self.now)

    # ------------------------------------------------------------------ fault containment

    def _leg_fault(self, leg: Leg, phase: str, cause: BaseException | str) -> None:
        """Something this leg's input caused raised: end this leg (after the current tick),
        with one log line and a counter; every other leg and room goes on."""
        text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        if not isinstance(cause, str):
            log.debug("%s: %s fault", leg.leg_id, phase, exc_info=cause, extra=leg.log_extra)
        self._faulted.append((leg, phase, text[:200]))

    def _end_faulted(self) -> None:
        faulted, self._faulted = self._faulted, []
        for leg, phase, text in faulted:
            if leg.ended:
                continue
            self.leg_faults += 1
            log.warning("%s: ended after a %s fault: %s", leg.leg_id, phase, text, extra=leg.log_extra)
            self.hangup(leg, "fault")

    def _leg_failed(self, leg: Leg, event: LegFailed) -> None:
        """A room (a conference's or the lobby) took this leg out after its port raised."""
        self._leg_fault(leg, event.phase, event.error)

    def _leg_failed_id(self, conf_id: str, pid: str, event: LegFailed) -> None:
        leg = self._leg_of(conf_id, pid)
        if leg is not None:
            self._leg_failed(leg, event)

    # ------------------------------------------------------------------ reflection bound

    def _allow_sending(self, leg: Leg) -> None:
        assert leg.session is not None
        leg.session.allow_sending(self.now, self.config.rtp.unconfirmed_send_s)
        if not leg.session.confirmed:
            self._unconfirmed[leg.leg_id] = leg

    # ------------------------------------------------------------------ clock

    def tick(self, now: float) -> None:
        """One 20 ms media tick over every live room and the lobby, then what it caused:
        faulted legs ended, key presses acted on, due answers sent, control timers."""
        self.now = now
        for live in list(self.rooms.values()):
            try:
                live.tick(now)
            except Exception:   # a bug in one room must not silence the others
                log.exception("room %s: tick failed", live.conf.id)
        try:
            self.lobby.tick(now)
        except Exception:
            log.exception("lobby tick failed")

    def after_tick(self, now: float) -> None:
        """What the tick's input caused, once the adapter has read what no room pulled."""
        if self._faulted:
            self._end_faulted()
        if self._digits:
            digits = self._digits[:]
            self._digits.clear()        # the same list: the RTP handlers hold it
            for leg, digit, source in digits:
                if not leg.ended:
                    self.on_digit(leg, digit, source)
        self._ticks += 1
        if self._unconfirmed:     # the reflection bound, to the tick (usually an empty dict)
            check_unconfirmed(self._unconfirmed, now)
        if self.dialout.ringing:
            self.dialout.timers(now)
        if self._ringing:
            for leg in [leg for leg in self._ringing.values() if leg.answer_due is not None
                        and now >= leg.answer_due]:
                del self._ringing[leg.leg_id]
                if not leg.ended:
                    self._answer(leg)
        if self._ticks % 5 == 0:  # control timers at 100 ms resolution
            try:
                self._control_timers(now)
            except Exception:
                log.exception("control timers failed")

    def _control_timers(self, now: float) -> None:
        self.lobby.timers(now)
        # A key press whose RFC 4733 end packets were all lost is reported after a timeout.
        for leg in list(self.legs_by_call.values()):
            if leg.session is not None and leg.session.dtmf.pending:
                for event in leg.session.poll(now):
                    self.on_digit(leg, event.digit, "rfc4733")

    def housekeeping(self, now: float) -> None:
        """Once a second: RTCP reports, the RTP inactivity timeout, closing prompts. Legs and
        rooms one by one: one that raises is ended (legs) or logged (rooms), the rest go on."""
        self.now = now
        self.parked.timers(now)
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
        if leg_housekeeping(leg, now, self.config.rtp.inactivity_timeout_s):
            log.info("%s: no RTP for over %.0f s, hanging up", leg.leg_id, self.config.rtp.inactivity_timeout_s,
                     extra=leg.log_extra)
            self.hangup(leg, "rtp_timeout")

    # ------------------------------------------------------------------ control (REST)

    def conference_changed(self, conf: Conference) -> None:
        live = self.rooms.get(conf.id)
        if live is not None:
            live.apply_settings(conf)

    def end_conference(self, conf_id: str, reason: ev.EndReason, now: float) -> None:
        """Closing prompt, then BYE; ``ConferenceEnded`` when the room is empty (now if nobody is in)."""
        self.now = now
        live = self.rooms.get(conf_id)
        if live is not None:
            live.close("ended", reason, now)
        else:
            self.bus.publish(ev.ConferenceEnded(conf_id, reason=reason))

    def participants(self, conf_id: str) -> list[ParticipantView]:
        """Everyone seated in the conference since the bridge started, those who left last."""
        live = self.rooms.get(conf_id)
        legs = {s.leg_id: s for s in live.room.participants_snapshot()} if live else {}
        people = self.book.listing(conf_id)
        people.sort(key=lambda p: not p.connected)
        return [p.view() if (s := legs.get(p.participant_id)) is None
                else p.view(float(s.level_dbov), s.frames_fec, s.frames_concealed, s.send_expected_loss)
                for p in people]

    def act(self, conf_id: str, pid: str, action: Action, now: float, music: str | None = None) -> bool:
        self.now = now
        if action == "kick" and pid in self.dialout.ringing:
            return self.dialout.cancel(pid, "canceled")
        live = self.rooms.get(conf_id)
        if live is None or pid not in live.members:
            return False
        if action == "kick":
            self._hangup_id(conf_id, pid, "kicked")
        else:
            live.control(pid, action, music)
        return True
