"""The in-call experience of one live conference: who hears what, and why.

A ``LiveConference`` owns the room mixer of a conference that has participants in it
and applies the conference's rules on top of it:

- roles and their permissions (``bridge/control/roles.py``), ``mute_on_entry``, the
  webinar profile (members are seated as listeners);
- waiting for the host: with ``wait_for_moderator`` members are isolated (hear and are
  heard by nobody) with hold music until a host is in the room, or the API starts it;
- hold music for a participant who is alone; entry/exit beeps by the room's beep mode;
- the in-call keypad (lock, mute all listeners, self mute, volume, leave, kick last);
- foreground prompts (keypad feedback, closing announcements) over the background;
- live settings (``apply_settings``): a change made over the API reaches the room at its
  next tick.

It is the one writer of its participants' mute, deaf, hold, talking and waiting state,
and publishes a domain event for every change. It drives the pure ``Room`` through its
queued ops, so every change lands at the start of the next 20 ms tick. It never touches
SIP: hang-ups go through the ``hangup`` callback given by the call core.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bridge.call.ports import Prompts, RoomConnection
from bridge.control import events as ev
from bridge.control import keypad as kp
from bridge.control.ivr import PlayPrompt
from bridge.control.model import Conference
from bridge.control.participants import Participant
from bridge.control.roles import permissions
from bridge.media.comfort import comfort_noise
from bridge.media.room import (
    DominantSpeakerChanged,
    LegFailed,
    Room,
    SinkFailed,
    SourceFinished,
    TalkingStarted,
    TalkingStopped,
)
from bridge.media.tones import confirm_tone, entry_tone, exit_tone
from bridge.recording.control import ConferenceRecording, RecordingSetup
from bridge.recording.model import RecordingInfo, RecordingOptions

log = logging.getLogger("bridge.conference")

Background = Literal["none", "alone", "waiting", "held"]
Hangup = Callable[[str, ev.LeaveReason], None]
# How long a closing prompt may take before the BYE goes anyway.
CLOSING_PROMPT_LIMIT = 8.0


@dataclass
class Member:
    """A participant's seat in this conference."""

    participant: Participant
    keypad: kp.Keypad
    background: Background = "none"
    heard_alone_prompt: bool = False
    foreground: str | None = None  # "info" | "leave" | "closing": a prompt over the background
    foreground_media: str = ""
    closing_deadline: float | None = None
    hold_music: str | None = None   # what an API hold plays (None: the conference's hold music)

    @property
    def pid(self) -> str:
        return self.participant.participant_id


class LiveConference:
    def __init__(
        self,
        conf: Conference,
        max_talkers: Callable[[Conference], int],    # the talker cap a conference's settings give
        prompts: Prompts,
        bus: ev.EventBus,
        hangup: Hangup,
        on_leg_failed: Callable[[str, LegFailed], None] | None = None,
        recording: RecordingSetup | None = None,
        wall: Callable[[], datetime] | None = None,
        skip_inactive_opus: bool = True,     # media.opus_skip_inactive
        passthrough: bool = True,            # media.sole_talker_passthrough
    ) -> None:
        self.conf = conf
        self.bus = bus
        self.on_leg_failed = on_leg_failed
        self._talkers = max_talkers
        self.room = Room(conf.id, conf.rate, max_talkers=self._talkers(conf), skip_inactive=skip_inactive_opus,
                         passthrough=passthrough)
        self.prompts = prompts
        self.hangup = hangup
        self.members: dict[str, Member] = {}
        self.whispers: dict[str, list[str]] = {}   # supervisor -> the legs that hear it (Telnyx whisper)
        self.join_order: list[str] = []
        # Cascade trunks (bridge/call/cascade.py): in the mix, never members; and on a part node a
        # trunk on its way, so the first local caller does not hear the "alone" prompt.
        self.trunks: set[str] = set()
        self.trunk_expected = False
        self.locked = False
        self.listeners_muted = False
        self._beeps = 0
        self.started = False
        self.ending = False
        self.end_reason: ev.EndReason = "all_left"
        self._floor_holder: str | None = None
        if conf.comfort_noise:
            self.room.add_room_source("comfort-noise", comfort_noise(conf.rate))
        self.recording_setup = recording
        self.recording: ConferenceRecording | None = None
        if recording is not None and wall is not None:
            self.recording = ConferenceRecording(conf.id, conf.account_id, self.room, recording.recorder, bus,
                                                 wall, recording.max_queue_ticks)

    def _publish(self, event: ev.DomainEvent) -> None:
        self.bus.publish(event)

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

    def hosts(self) -> int:
        return sum(1 for m in self.members.values() if permissions(m.participant.role).host)

    def refuses(self, role: str) -> str | None:
        """Why a new participant with ``role`` cannot come in (a prompt name), or None."""
        allowed = permissions(role)
        if len(self.members) >= self.conf.max_participants and not allowed.bypass_cap:
            return "room_full"
        if self.locked and not allowed.bypass_lock:
            return "room_locked"
        return None

    # ------------------------------------------------------------------ join / leave

    def join(self, p: Participant, conn: RoomConnection, role: str, when: datetime) -> None:
        conf = self.conf
        if conf.profile == "webinar" and role == "member":
            role = "listener"
        allowed = permissions(role)
        p.role, p.conference_id, p.status, p.joined_at = role, conf.id, "connected", when
        member = Member(p, kp.Keypad(p.participant_id))
        self.members[p.participant_id] = member
        self.join_order.append(p.participant_id)
        self.room.add_leg(p.participant_id, conn.room_port, conn.codec, conn.codec,
                          payload_type=conn.payload_type, encoder_opts=conn.encoder_opts)
        if not allowed.speak:
            self.room.set_listen_only(p.participant_id, True)
        if p.muted or (allowed.muted_on_entry and (conf.mute_on_entry or self.listeners_muted)):
            p.muted = True          # muted on entry, or added muted over the API
            self.room.set_muted(p.participant_id, True)
        if p.on_hold:
            p.status = "held"
            self.room.set_on_hold(p.participant_id, True)
        if conf.wait_for_moderator and not allowed.host and self.hosts() == 0:
            p.waiting = True
            self.room.set_isolated(p.participant_id, True)
        self._publish(ev.ParticipantJoined(
            conf.id, participant_id=p.participant_id, kind=p.kind, role=role, caller_number=p.caller_number,
            caller_name=p.caller_name, muted=p.muted, waiting=p.waiting))
        log.info("%s joined %s as %s%s", p.participant_id, conf.id, role,
                 " (waiting for a moderator)" if p.waiting else "")
        if self.recording is not None:
            self.recording.joined(p)
        if allowed.host:
            self._release_waiting()
        elif not p.waiting:
            self._mark_started()
        if conf.beep in ("always", "on_enter") and not p.waiting:
            self._beep(entry_tone())
        self.refresh_backgrounds()

    def _mark_started(self) -> None:
        if not self.started:
            self.started = True
            self._publish(ev.ConferenceStarted(self.conf.id))
            if self.conf.record and self.recording is not None and self.recording.active is None:
                self._auto_record()

    def leave(self, pid: str, reason: ev.LeaveReason, when: datetime) -> Participant | None:
        if pid in self.trunks:
            self.remove_trunk(pid)
            return None
        member = self.members.pop(pid, None)
        if member is None:
            return None
        p = member.participant
        self.join_order.remove(pid)
        self.room.remove_leg(pid)
        p.status, p.left_at, p.leave_reason, p.talking = "disconnected", when, reason, False
        if self.recording is not None:
            self.recording.left(pid)
            if not self.members and self.recording.active is not None:
                self.recording.stop("conference_ended")
        joined = p.joined_at or when
        self._publish(ev.ParticipantLeft(self.conf.id, participant_id=pid, reason=reason,
                                         duration_s=round((when - joined).total_seconds(), 3)))
        if self.members and self.conf.beep in ("always", "on_exit") and not p.waiting:
            self._beep(exit_tone())
        if (
            permissions(p.role).host
            and self.hosts() == 0
            and self.conf.end_when_moderator_leaves
            and self.members
            and not self.ending
        ):
            log.info("%s: last moderator left; ending", self.conf.id)
            self.close("ended", "host_left")
        self.refresh_backgrounds()
        return p

    def add_trunk(self, pid: str, conn: RoomConnection) -> None:
        """A cascade trunk: mixed both ways and never evicted by the talker cap, but no member (no
        events, prompts, beeps, keypad, cap or recording track: README "One room across nodes")."""
        self.room.add_leg(pid, conn.room_port, conn.codec, conn.codec, payload_type=conn.payload_type,
                          encoder_opts=conn.encoder_opts)
        self.room.set_always_mixed(pid)
        self.trunks.add(pid)
        self.refresh_backgrounds()

    def remove_trunk(self, pid: str) -> None:
        if pid in self.trunks:
            self.trunks.discard(pid)
            self.room.remove_leg(pid)
            self.refresh_backgrounds()

    def _release_waiting(self) -> None:
        for m in self.members.values():
            if m.participant.waiting:
                m.participant.waiting = False
                self.room.set_isolated(m.pid, False)
        if self.members:
            self._mark_started()

    def _beep(self, tone: object) -> None:
        self._beeps += 1
        self.room.add_room_source(f"beep-{self._beeps}", tone)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ what each one hears

    def _lone(self) -> Member | None:
        """The only member not waiting, if there is exactly one (who then hears "alone")."""
        # A participant on hold is still in the conference: the other one is not "alone".
        lone = None
        for x in self.members.values():
            if not x.participant.waiting:
                if lone is not None:
                    return None
                lone = x
        return lone

    def _wanted_background(self, m: Member, lone: Member | None) -> Background:
        if m.participant.held_by_api:
            return "held"
        if m.participant.waiting:
            return "waiting"
        if lone is m and not self.trunks and not self.trunk_expected:
            return "alone"
        return "none"

    def refresh_backgrounds(self) -> None:
        # The lone member once per refresh, not once per member: every join refreshes, and
        # a scan per member made placing N calls O(N^3) (1,000 callers stalled the media clock).
        lone = self._lone()
        for m in self.members.values():
            if m.foreground is not None:
                continue  # a prompt is playing; its end calls refresh again
            wanted = self._wanted_background(m, lone)
            if wanted == m.background:
                continue
            m.background = wanted
            rate = self.conf.rate
            music_at = self.conf.hold_music_path or self.conf.hold_music_url or self.conf.hold_music_id
            if wanted == "none":
                self.room.set_leg_source(m.pid, None)
            elif wanted == "held":
                self.room.set_leg_source(m.pid, self.prompts.music(m.hold_music or music_at, rate))
            elif wanted == "waiting":
                self.room.set_leg_source(
                    m.pid, self.prompts.then(self.prompts.prompt(["wait_moderator"], rate),
                                             self.prompts.music(music_at, rate)))
            else:
                music = self.prompts.music(music_at, rate)
                if not m.heard_alone_prompt:
                    m.heard_alone_prompt = True
                    music = self.prompts.then(self.prompts.prompt(["alone"], rate), music)
                self.room.set_leg_source(m.pid, music)

    def play(self, pid: str, names: list[str], kind: str = "info") -> None:
        """A prompt to one participant over whatever they hear (keypad feedback, closing words)."""
        m = self.members.get(pid)
        if m is None:
            return
        m.foreground, m.foreground_media = kind, "+".join(names)
        m.background = "none"
        # While alone or waiting the prompt replaces the music; otherwise it plays over the mix.
        replace = m.participant.waiting or self._wanted_background(m, self._lone()) != "none" or kind == "closing"
        self.room.set_leg_source(pid, self.prompts.prompt(names, self.conf.rate), "replace" if replace else "mix")
        self._publish(ev.PlaybackStarted(self.conf.id, participant_id=pid, media=m.foreground_media))

    def close(self, prompt: str, reason: ev.EndReason, now: float | None = None) -> None:
        """Everyone hears ``prompt`` and then gets a BYE (bounded by CLOSING_PROMPT_LIMIT)."""
        self.ending = True
        self.end_reason = reason
        for m in self.members.values():
            self.play(m.pid, [prompt], kind="closing")
            m.closing_deadline = None if now is None else now + CLOSING_PROMPT_LIMIT

    # ------------------------------------------------------------------ media tick

    def tick(self, now: float) -> None:
        """The room's tick; its packets went out through each participant's port."""
        result = self.room.tick(now)
        for event in result.events:
            if isinstance(event, SourceFinished) and event.leg_id is not None:
                self._prompt_finished(event.leg_id)
            elif isinstance(event, (TalkingStarted, TalkingStopped)):
                self._talking(event.leg_id, isinstance(event, TalkingStarted))
            elif isinstance(event, DominantSpeakerChanged):
                self._floor(event.leg_id)
            elif isinstance(event, LegFailed) and event.leg_id in self.members:
                if self.on_leg_failed is not None:
                    self.on_leg_failed(event.leg_id, event)   # the call core logs, counts and hangs up
                else:
                    self.hangup(event.leg_id, "fault")
            elif isinstance(event, SinkFailed):
                log.warning("%s: sink %s detached: %s", self.conf.id, event.sink_id, event.error)

    def _talking(self, pid: str, talking: bool) -> None:
        m = self.members.get(pid)
        if m is None or m.participant.talking == talking:
            return
        m.participant.talking = talking
        if self.recording is not None:
            self.recording.flag(pid, "talking", talking)
        kind = ev.TalkingStarted if talking else ev.TalkingStopped
        self._publish(kind(self.conf.id, participant_id=pid))

    def _floor(self, pid: str | None) -> None:
        if pid == self._floor_holder:
            return
        previous, self._floor_holder = self._floor_holder, pid
        self._publish(ev.FloorChanged(self.conf.id, participant_id=pid, previous_id=previous))

    def _prompt_finished(self, pid: str) -> None:
        m = self.members.get(pid)
        if m is None:
            return
        kind, m.foreground = m.foreground, None
        if kind is not None:
            self._publish(ev.PlaybackEnded(self.conf.id, participant_id=pid, media=m.foreground_media))
        if kind == "closing":
            self.hangup(pid, "conference_ended")
            return
        if kind == "leave":
            self.hangup(pid, "left_by_keypad")
            return
        m.background = "none"
        self.refresh_backgrounds()

    def housekeeping(self, now: float) -> None:
        for m in list(self.members.values()):
            if m.foreground == "closing":
                if m.closing_deadline is None:
                    m.closing_deadline = now + CLOSING_PROMPT_LIMIT
                elif now > m.closing_deadline:
                    self.hangup(m.pid, "conference_ended")
            m.keypad.on_timer(now)
        if self.recording is not None:
            self.recording.housekeeping()

    # ------------------------------------------------------------------ control

    def set_muted(self, pid: str, muted: bool) -> bool:
        m = self.members.get(pid)
        if m is None:
            return False
        if m.participant.muted != muted:
            m.participant.muted = muted
            self.room.set_muted(pid, muted)
            if self.recording is not None:
                self.recording.flag(pid, "muted", muted)
            self._publish(ev.ParticipantMuteChanged(self.conf.id, participant_id=pid, muted=muted))
        return True

    def set_deaf(self, pid: str, deaf: bool) -> bool:
        m = self.members.get(pid)
        if m is None:
            return False
        if m.participant.deaf != deaf:
            m.participant.deaf = deaf
            self.room.set_deaf(pid, deaf)
            self._publish(ev.ParticipantDeafChanged(self.conf.id, participant_id=pid, deaf=deaf))
        return True

    def set_on_hold(self, pid: str, on_hold: bool) -> None:
        m = self.members.get(pid)
        if m is None:
            return
        m.participant.on_hold = on_hold
        m.participant.status = "held" if on_hold or m.participant.held_by_api else "connected"
        self.room.set_on_hold(pid, on_hold)
        if self.recording is not None:
            self.recording.flag(pid, "on_hold", on_hold)
        self._publish(ev.ParticipantHoldChanged(self.conf.id, participant_id=pid, on_hold=on_hold))
        self.refresh_backgrounds()

    def control(self, pid: str, action: str, music: str | None = None) -> None:
        """mute/unmute, deaf/undeaf, hold/unhold (``music``: what the held participant hears)."""
        if action in ("mute", "unmute"):
            self.set_muted(pid, action == "mute")
        elif action in ("deaf", "undeaf"):
            self.set_deaf(pid, action == "deaf")
        elif action in ("hold", "unhold"):
            self.set_api_hold(pid, action == "hold", music)

    def set_whisper(self, pid: str, targets: list[str] | None) -> bool:
        """Only ``targets`` hear ``pid`` (who hears everyone); None or [] ends the whisper."""
        if pid not in self.members:
            return False
        heard_by = [t for t in targets or () if t in self.members and t != pid]
        if heard_by:
            self.whispers[pid] = heard_by
        else:
            self.whispers.pop(pid, None)
        self.room.set_whisper(pid, heard_by or None)
        return True

    def _hold_media(self, music: str | None) -> str:
        """How hold audio is named in events: its URL, an uploaded file's id (never a path)."""
        music = music or self.conf.hold_music_url
        if music is None or music.startswith(("http://", "https://")):
            return music or "hold_music"
        return music.rsplit("/", 1)[-1].rsplit(".", 1)[0]

    def set_api_hold(self, pid: str, held: bool, music: str | None) -> None:
        """API hold: the participant hears hold music and is cut off from the room both ways."""
        m = self.members.get(pid)
        if m is None or (m.participant.held_by_api == held and m.hold_music == music):
            return
        p = m.participant
        was = p.on_hold or p.held_by_api
        # What the hold plays is reported as the participant's playback (Telnyx's webhook for it).
        if p.held_by_api and (not held or m.hold_music != music):
            self._publish(ev.PlaybackEnded(self.conf.id, participant_id=pid, media=self._hold_media(m.hold_music)))
        playing = self._hold_media(music)
        p.held_by_api, m.hold_music = held, music if held else None
        p.status = "held" if p.on_hold or held else "connected"
        self.room.set_isolated(pid, held or p.waiting)
        m.background = "none"   # refresh_backgrounds starts (or restarts) the right one
        if not held:
            self.room.set_leg_source(pid, None)
        if was != (p.on_hold or held):
            self._publish(ev.ParticipantHoldChanged(self.conf.id, participant_id=pid, on_hold=held))
        if held:
            self._publish(ev.PlaybackStarted(self.conf.id, participant_id=pid, media=playing))
        self.refresh_backgrounds()

    def on_digit(self, pid: str, digit: str, source: str, now: float) -> None:
        m = self.members.get(pid)
        if m is None or m.foreground == "closing":
            return
        self._publish(ev.KeyPressed(self.conf.id, participant_id=pid, digit=digit,
                                    source=source))  # type: ignore[arg-type]
        allowed = permissions(m.participant.role)
        state = kp.CallState(
            is_moderator=allowed.control,
            muted=m.participant.muted,
            room_locked=self.locked,
            listeners_muted=self.listeners_muted,
            participants=len(self.members),
            recording=self.recording is not None and self.recording.active is not None,
            may_record=self.recording is not None and (allowed.control or self.conf.allow_recording_by_participant),
        )
        for action in m.keypad.on_digit(digit, now, state):
            self._keypad_action(m, action)

    def _keypad_action(self, m: Member, action: object) -> None:
        p = m.participant
        if isinstance(action, kp.ToggleMute):
            if permissions(p.role).unmute_self or not p.muted:
                self.set_muted(m.pid, not p.muted)
        elif isinstance(action, kp.SetLocked):
            self.locked = action.locked
            log.info("%s %s by %s", self.conf.id, "locked" if action.locked else "unlocked", m.pid)
        elif isinstance(action, kp.MuteAllNonModerators):
            self.listeners_muted = action.muted
            for other in self.members.values():
                if not permissions(other.participant.role).control:
                    self.set_muted(other.pid, action.muted)
        elif isinstance(action, kp.SetListenGain):
            self.room.set_output_gain(m.pid, action.gain_db)
        elif isinstance(action, kp.Leave):
            self.play(m.pid, ["goodbye"], kind="leave")
        elif isinstance(action, kp.KickLast):
            for pid in reversed(self.join_order):
                if pid != action.requested_by:
                    self.hangup(pid, "kicked")
                    break
        elif isinstance(action, kp.ToggleRecording) and self.recording is not None:
            if self.recording.active is None:
                self.start_recording(None, started_by=m.pid)
            else:
                self.recording.stop("keypad")
        elif isinstance(action, PlayPrompt):
            self.play(m.pid, list(action.names))

    # ------------------------------------------------------------------ recording

    def start_recording(self, options: RecordingOptions | None, started_by: str | None = None) -> RecordingInfo:
        """Start recording (the REST/vendor APIs, the keypad, ``record: true``); everyone hears the
        configured announcement (and a beep with ``play_beep``), which is in the recording too."""
        if self.recording is None or self.recording_setup is None:
            raise RuntimeError("recording is not available")   # the service checks first
        setup = self.recording_setup
        opts = options or setup.defaults
        members = [self.members[pid].participant for pid in self.join_order]
        info = self.recording.start(opts, members, started_by)
        if opts.play_beep:
            self._beep(confirm_tone())
        if setup.announcement:
            self.room.add_room_source(f"rec-announce-{info.id}",
                                      self.prompts.prompt([setup.announcement], self.conf.rate))
        return info

    def _auto_record(self) -> None:
        try:
            self.start_recording(None)
        except Exception:       # a recording that cannot start must not keep callers out
            log.exception("%s: record=true but recording could not start", self.conf.id)


def is_scheduled_later(conf: Conference, now: datetime) -> bool:
    return conf.scheduled_for is not None and conf.scheduled_for > now
