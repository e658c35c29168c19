"""The lobby: where answered callers wait before a conference takes them.

Callers entering a conference code or PIN (the IVR), and callers hearing why they are
refused, sit in one isolated room here: each hears only their own prompts and nobody
hears them. The lobby decides nothing about conferences: when the IVR picks a room it
hands the leg back through ``on_join``; when a caller must go, through ``hangup``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from bridge.call.leg import Leg
from bridge.call.ports import Prompts
from bridge.control import ivr as ivrmod
from bridge.control.events import DomainEvent, LeaveReason, PinRejected
from bridge.control.pin_guard import PinFailure, PinGuard, SourcePinCheck
from bridge.media.room import LegFailed, Room, SourceFinished

log = logging.getLogger("bridge.calls")

LOBBY_RATE = 16000


class Lobby:
    def __init__(
        self,
        prompts: Prompts,
        on_join: Callable[[Leg, str, str], None],           # leg, conference id, role
        hangup: Callable[[Leg, LeaveReason], None],
        on_leg_failed: Callable[[Leg, LegFailed], None],
    ) -> None:
        self.prompts = prompts
        self.on_join = on_join
        self.hangup = hangup
        self.on_leg_failed = on_leg_failed
        self.room = Room("lobby", LOBBY_RATE)
        self.legs: dict[str, Leg] = {}
        # Set by the app (security.pin_*): wrong PINs count across calls per address and conference.
        self.pin_guard: PinGuard | None = None
        self.publish: Callable[[DomainEvent], object] = lambda event: None

    def enter(self, leg: Leg) -> None:
        if leg.in_lobby:
            return
        self.room.add_leg(leg.leg_id, leg.room_port, leg.codec, leg.codec,
                          payload_type=leg.payload_type, encoder_opts=leg.encoder_opts)
        self.room.set_isolated(leg.leg_id, True)
        self.legs[leg.leg_id] = leg
        leg.in_lobby = True

    def leave(self, leg: Leg) -> None:
        if leg.in_lobby:
            self.room.remove_leg(leg.leg_id)
            self.legs.pop(leg.leg_id, None)
            leg.in_lobby = False

    def refuse(self, leg: Leg, prompt: str) -> None:
        """Answered, but not let in: the caller hears why, then gets a BYE."""
        log.info("%s refused: %s", leg.leg_id, prompt, extra=leg.log_extra)
        self.enter(leg)
        leg.lobby_then_hangup = True
        self.room.set_leg_source(leg.leg_id, self.prompts.prompt([prompt], LOBBY_RATE))

    def start_ivr(self, leg: Leg, ivr: ivrmod.Ivr, now: float) -> None:
        leg.ivr = ivr
        if self.pin_guard is not None:
            ivr.pin_check = SourcePinCheck(self.pin_guard, leg.call.flow.remote[0],
                                           lambda room, failure: self._pin_failed(leg, room, failure))
        self.enter(leg)
        self.run_ivr(leg, ivr.start(now))

    def run_ivr(self, leg: Leg, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, ivrmod.PlayPrompt):
                leg.ivr_token = action.token
                self.room.set_leg_source(leg.leg_id, self.prompts.prompt(action.names, LOBBY_RATE))
            elif isinstance(action, ivrmod.StopPrompt):
                self.room.set_leg_source(leg.leg_id, None)
            elif isinstance(action, ivrmod.Hangup):
                log.info("%s: IVR ends the call (%s)", leg.leg_id, action.reason, extra=leg.log_extra)
                self.hangup(leg, "hangup")
            elif isinstance(action, ivrmod.Join):
                leg.ivr = None
                self.on_join(leg, action.room, action.role)

    def _pin_failed(self, leg: Leg, room: str, failure: PinFailure) -> None:
        source = leg.call.flow.remote[0]
        if failure.locked:
            log.warning("%s: wrong PIN for %s from %s: address locked out of it", leg.leg_id, room, source,
                        extra=leg.log_extra)
        else:
            log.info("%s: wrong PIN for %s from %s (%d in a row, next in %.0f s)", leg.leg_id, room, source,
                     failure.failures, failure.delay, extra=leg.log_extra)
        self.publish(PinRejected(room, participant_id=leg.participant.participant_id, source=source,
                                 failures=failure.failures,
                                 retry_after_s=-1.0 if math.isinf(failure.delay) else failure.delay,
                                 locked_out=failure.locked))

    def on_digit(self, leg: Leg, digit: str, now: float) -> bool:
        """A key press for the IVR; False when this leg is not in one."""
        if leg.ivr is None:
            return False
        self.run_ivr(leg, leg.ivr.on_digit(digit, now))
        return True

    def tick(self, now: float) -> None:
        if not self.legs:
            return
        result = self.room.tick(now)
        for event in result.events:
            if isinstance(event, SourceFinished) and event.leg_id is not None:
                self._prompt_finished(event.leg_id, now)
            elif isinstance(event, LegFailed) and event.leg_id in self.legs:
                self.on_leg_failed(self.legs[event.leg_id], event)

    def timers(self, now: float) -> None:
        for leg in list(self.legs.values()):
            if leg.ivr is not None:
                self.run_ivr(leg, leg.ivr.on_timer(now))

    def _prompt_finished(self, leg_id: str, now: float) -> None:
        leg = self.legs.get(leg_id)
        if leg is None:
            return
        if leg.lobby_then_hangup:
            self.hangup(leg, "hangup")
        elif leg.ivr is not None:
            self.run_ivr(leg, leg.ivr.on_prompt_finished(now, leg.ivr_token))
