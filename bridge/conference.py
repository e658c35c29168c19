"""The in-call experience of one live conference: who hears what, and why.

A ``LiveConference`` owns the room mixer of a conference that has callers in it
and applies the conference's rules on top of it:

- roles: moderators, members, webinar listeners (listen-only), ``mute_on_entry``;
- waiting for the host: with ``wait_for_moderator`` members are isolated (hear and
  are heard by nobody) with hold music until a moderator is in the room;
- hold music for a caller who is alone; entry/exit beeps by the room's beep mode;
- the in-call keypad (lock, mute all listeners, self mute, volume, leave, kick last);
- foreground prompts (keypad feedback, closing announcements) over the background
  (hold music), restoring the background when a prompt ends;
- live settings (``apply_settings``): a change made over the API reaches the room at its
  next tick. The cap, mute on entry, beeps, PINs and end-with-moderator apply to the next
  caller and the next leave; hold music and the talker cap change at once; turning
  ``wait_for_moderator`` off releases the callers waiting for the host.

It drives the pure ``Room`` through its queued ops, so every change lands at the
start of the next 20 ms tick. It never touches SIP: hang-ups go through the
``hangup`` callback given by the call controller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from bridge.audio_assets import AudioAssets, comfort_noise
from bridge.control import keypad as kp
from bridge.control.ivr import PlayPrompt
from bridge.control.model import Conference
from bridge.media.room import (
    DominantSpeakerChanged,
    LegFailed,
    Room,
    SinkFailed,
    SourceFinished,
    TalkingStarted,
    TalkingStopped,
)
from bridge.media.tones import entry_tone, exit_tone

if TYPE_CHECKING:
    from bridge.calls import Leg

log = logging.getLogger("bridge.conference")

Background = Literal["none", "alone", "waiting"]
# How long a closing prompt may take before the BYE goes anyway.
CLOSING_PROMPT_LIMIT = 8.0


@dataclass
class Member:
    """A leg's state inside this conference."""

    leg: "Leg"
    role: str  # "moderator" | "member" | "listener"
    keypad: kp.Keypad
    waiting: bool = False
    background: Background = "none"
    heard_alone_prompt: bool = False
    foreground: str | None = None  # "info" | "closing": a prompt is playing over the background
    closing_deadline: float | None = None


class LiveConference:
    def __init__(
        self,
        conf: Conference,
        max_talkers: Callable[[Conference], int],    # the talker cap a conference's settings give
        assets: AudioAssets,
        hangup: Callable[["Leg"], None],
        on_leg_failed: Callable[["Leg", LegFailed], None] | None = None,
    ) -> None:
        self.conf = conf
        self.on_leg_failed = on_leg_failed
        self._talkers = max_talkers
        self.room = Room(conf.id, conf.rate, max_talkers=self._talkers(conf))
        self.assets = assets
        self.hangup = hangup
        self.members: dict[str, Member] = {}
        # The same legs by id, kept alongside ``members`` because the media tick looks legs up
        # for every packet it sends (building this per tick would be O(N) work every 20 ms).
        self.legs: dict[str, "Leg"] = {}
        self.join_order: list[str] = []
        self.locked = False
        self.listeners_muted = False
        self._beeps = 0
        self.ending = False
        if conf.comfort_noise:
            self.room.add_room_source("comfort-noise", comfort_noise(conf.rate))

    # ------------------------------------------------------------------ live settings

    def apply_settings(self, conf: Conference) -> None:
        """The conference's settings changed (API): make the room follow them."""
        old, self.conf = self.conf, conf
        if self._talkers(conf) != self._talkers(old):
            self.room.set_max_talkers(self._talkers(conf))
        if conf.comfort_noise != old.comfort_noise:
            if conf.comfort_noise:
                self.room.add_room_source("comfort-noise", comfort_noise(conf.rate))
            else:
                self.room.remove_room_source("comfort-noise")
        if old.wait_for_moderator and not conf.wait_for_moderator:
            self._release_waiting()
        music = (conf.hold_music_path, conf.hold_music_url, conf.hold_music_id)
        if music != (old.hold_music_path, old.hold_music_url, old.hold_music_id):
            for m in self.members.values():
                if m.background != "none":
                    m.background = "none"      # refresh_backgrounds starts the new music
        self.refresh_backgrounds()
        log.info("%s: settings applied to the live room", conf.id)

    # ------------------------------------------------------------------ queries

    def moderators(self) -> int:
        return sum(1 for m in self.members.values() if m.role == "moderator")

    def refuses(self, role: str) -> str | None:
        """Why a new caller with ``role`` cannot come in (a prompt name), or None."""
        if len(self.members) >= self.conf.max_participants:
            return "room_full"
        if self.locked and role != "moderator":
            return "room_locked"
        return None

    # ------------------------------------------------------------------ join / leave

    def join(self, leg: "Leg", role: str) -> None:
        conf = self.conf
        if conf.profile == "webinar" and role == "member":
            role = "listener"
        member = Member(leg, role, kp.Keypad(leg.leg_id))
        self.members[leg.leg_id] = member
        self.legs[leg.leg_id] = leg
        self.join_order.append(leg.leg_id)
        leg.role = role
        add_leg_to(self.room, leg)
        if role == "listener":
            self.room.set_listen_only(leg.leg_id, True)
        if role != "moderator" and (conf.mute_on_entry or self.listeners_muted):
            self._set_muted(member, True)
        if leg.on_hold:
            self.room.set_on_hold(leg.leg_id, True)
        if conf.wait_for_moderator and role != "moderator" and self.moderators() == 0:
            member.waiting = True
            self.room.set_isolated(leg.leg_id, True)
        elif role == "moderator":
            self._release_waiting()
        if conf.beep in ("always", "on_enter") and not member.waiting:
            self._beep(entry_tone())
        self.refresh_backgrounds()
        log.info("%s joined %s as %s%s", leg.leg_id, conf.id, role, " (waiting for a moderator)" if member.waiting else "")

    def leave(self, leg_id: str) -> "Leg | None":
        member = self.members.pop(leg_id, None)
        if member is None:
            return None
        del self.legs[leg_id]
        self.join_order.remove(leg_id)
        self.room.remove_leg(leg_id)
        if self.members and self.conf.beep in ("always", "on_exit") and not member.waiting:
            self._beep(exit_tone())
        if (
            member.role == "moderator"
            and self.moderators() == 0
            and self.conf.end_when_moderator_leaves
            and self.members
        ):
            log.info("%s: last moderator left; ending", self.conf.id)
            self.close("ended")
        self.refresh_backgrounds()
        return member.leg

    def _release_waiting(self) -> None:
        for m in self.members.values():
            if m.waiting:
                m.waiting = False
                self.room.set_isolated(m.leg.leg_id, False)

    def _beep(self, tone: object) -> None:
        self._beeps += 1
        self.room.add_room_source(f"beep-{self._beeps}", tone)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ what each leg hears

    def _wanted_background(self, m: Member) -> Background:
        if m.waiting:
            return "waiting"
        # A caller on hold is still in the conference: the other one is not "alone".
        present = [x for x in self.members.values() if not x.waiting]
        if len(present) == 1 and present[0] is m:
            return "alone"
        return "none"

    def refresh_backgrounds(self) -> None:
        for m in self.members.values():
            if m.foreground is not None:
                continue  # a prompt is playing; its end calls refresh again
            wanted = self._wanted_background(m)
            if wanted == m.background:
                continue
            m.background = wanted
            rate = self.conf.rate
            music_at = self.conf.hold_music_path or self.conf.hold_music_url or self.conf.hold_music_id
            if wanted == "none":
                self.room.set_leg_source(m.leg.leg_id, None)
            elif wanted == "waiting":
                self.room.set_leg_source(
                    m.leg.leg_id,
                    self.assets.then(self.assets.prompt(["wait_moderator"], rate), self.assets.music(music_at, rate)),
                )
            else:
                music = self.assets.music(music_at, rate)
                if not m.heard_alone_prompt:
                    m.heard_alone_prompt = True
                    music = self.assets.then(self.assets.prompt(["alone"], rate), music)
                self.room.set_leg_source(m.leg.leg_id, music)

    def play(self, leg_id: str, names: list[str], kind: str = "info") -> None:
        """A prompt to one caller over whatever they hear (keypad feedback, closing words)."""
        m = self.members.get(leg_id)
        if m is None:
            return
        m.foreground = kind
        m.background = "none"
        # While alone or waiting the prompt replaces the music; otherwise it plays over the mix.
        replace = m.waiting or self._wanted_background(m) != "none" or kind == "closing"
        self.room.set_leg_source(leg_id, self.assets.prompt(names, self.conf.rate), "replace" if replace else "mix")

    def close(self, prompt: str, now: float | None = None) -> None:
        """Everyone hears ``prompt`` and then gets a BYE (bounded by CLOSING_PROMPT_LIMIT)."""
        self.ending = True
        for m in self.members.values():
            self.play(m.leg.leg_id, [prompt], kind="closing")
            m.closing_deadline = None if now is None else now + CLOSING_PROMPT_LIMIT

    # ------------------------------------------------------------------ media tick

    def tick(self, now: float) -> None:
        """The room's tick; its packets went out through each leg's ``LegPort``."""
        result = self.room.tick(now)
        for event in result.events:
            if isinstance(event, SourceFinished) and event.leg_id is not None:
                self._prompt_finished(event.leg_id)
            elif isinstance(event, DominantSpeakerChanged):
                log.debug("%s: floor -> %s", self.conf.id, event.leg_id)
            elif isinstance(event, (TalkingStarted, TalkingStopped)):
                log.debug("%s: %s %s", self.conf.id, type(event).__name__, event.leg_id)
            elif isinstance(event, LegFailed) and event.leg_id in self.members:
                leg = self.members[event.leg_id].leg
                if self.on_leg_failed is not None:
                    self.on_leg_failed(leg, event)     # the call layer logs, counts and hangs up
                else:
                    self.hangup(leg)
            elif isinstance(event, SinkFailed):
                log.warning("%s: sink %s detached: %s", self.conf.id, event.sink_id, event.error)

    def _prompt_finished(self, leg_id: str) -> None:
        m = self.members.get(leg_id)
        if m is None:
            return
        kind, m.foreground = m.foreground, None
        if kind == "closing" or kind == "leave":
            self.hangup(m.leg)
            return
        m.background = "none"
        self.refresh_backgrounds()

    def housekeeping(self, now: float) -> None:
        for m in list(self.members.values()):
            if m.foreground == "closing":
                if m.closing_deadline is None:
                    m.closing_deadline = now + CLOSING_PROMPT_LIMIT
                elif now > m.closing_deadline:
                    self.hangup(m.leg)
            m.keypad.on_timer(now)

    # ------------------------------------------------------------------ control

    def _set_muted(self, m: Member, muted: bool) -> None:
        m.leg.muted = muted
        self.room.set_muted(m.leg.leg_id, muted)

    def set_muted(self, leg_id: str, muted: bool) -> bool:
        m = self.members.get(leg_id)
        if m is None:
            return False
        self._set_muted(m, muted)
        return True

    def set_deaf(self, leg_id: str, deaf: bool) -> bool:
        m = self.members.get(leg_id)
        if m is None:
            return False
        m.leg.deaf = deaf
        self.room.set_deaf(leg_id, deaf)
        return True

    def set_on_hold(self, leg_id: str, on_hold: bool) -> None:
        if leg_id in self.members:
            self.room.set_on_hold(leg_id, on_hold)
            self.refresh_backgrounds()

    def on_digit(self, leg_id: str, digit: str, now: float) -> None:
        m = self.members.get(leg_id)
        if m is None or m.foreground == "closing":
            return
        state = kp.CallState(
            is_moderator=m.role == "moderator",
            muted=m.leg.muted,
            room_locked=self.locked,
            listeners_muted=self.listeners_muted,
            participants=len(self.members),
        )
        for action in m.keypad.on_digit(digit, now, state):
            self._keypad_action(m, action)

    def _keypad_action(self, m: Member, action: object) -> None:
        if isinstance(action, kp.ToggleMute):
            self._set_muted(m, not m.leg.muted)
        elif isinstance(action, kp.SetLocked):
            self.locked = action.locked
            log.info("%s %s by %s", self.conf.id, "locked" if action.locked else "unlocked", m.leg.leg_id)
        elif isinstance(action, kp.MuteAllNonModerators):
            self.listeners_muted = action.muted
            for other in self.members.values():
                if other.role != "moderator":
                    self._set_muted(other, action.muted)
        elif isinstance(action, kp.SetListenGain):
            self.room.set_output_gain(m.leg.leg_id, action.gain_db)
        elif isinstance(action, kp.Leave):
            self.play(m.leg.leg_id, ["goodbye"], kind="leave")
        elif isinstance(action, kp.KickLast):
            for leg_id in reversed(self.join_order):
                if leg_id != action.requested_by:
                    self.hangup(self.members[leg_id].leg)
                    break
        elif isinstance(action, PlayPrompt):
            self.play(m.leg.leg_id, list(action.names))


def add_leg_to(room: Room, leg: "Leg") -> None:
    """Put a negotiated leg into a room's mix (through its ``LegPort``: session + socket)."""
    assert leg.port is not None and leg.media is not None
    room.add_leg(leg.leg_id, leg.port, leg.media.codec, leg.media.codec,
                 payload_type=leg.media.payload_type, encoder_opts=leg.encoder_opts)


def is_scheduled_later(conf: Conference, now: datetime) -> bool:
    return conf.scheduled_for is not None and conf.scheduled_for > now
