"""One conference's recording: taps on the room, marks for the sidecar, the domain events.

``LiveConference`` owns one ``ConferenceRecording`` when the bridge has a ``Recorder`` and
tells it about joins, leaves, mute, hold and talking. At most one recording runs per
conference at a time. Starting attaches a mix sink and (multitrack or dual) one sink per
participant present or joining later; stopping detaches them and closes the tap, after which
the writer finishes the files and calls back (``RecordingSaved`` or ``RecordingFailed``).
A failure while recording (unwritable directory, disk full) detaches the taps at once: the
conference goes on unrecorded.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable
from datetime import datetime

from ..control import events as ev
from ..control.errors import ControlError
from ..control.participants import Participant
from ..media.room import Room
from .model import RecordingInfo, RecordingOptions
from .ports import Recorder
from .tap import LegSink, MixSink, Tap

log = logging.getLogger("bridge.recording")

NOT_RECORDING = ControlError(409, "not_recording", "the conference is not being recorded")


@dataclasses.dataclass
class _Active:
    info: RecordingInfo
    tap: Tap
    tracks: dict[str, int]
    paused_at: datetime | None = None
    reported_drops: int = 0


class ConferenceRecording:
    def __init__(self, conf_id: str, account_id: str | None, room: Room, recorder: Recorder,
                 bus: ev.EventBus, wall: Callable[[], datetime], max_queue_ticks: int = 250) -> None:
        self.conf_id = conf_id
        self.account_id = account_id
        self.room = room
        self.recorder = recorder
        self.bus = bus
        self.wall = wall
        self.max_queue_ticks = max_queue_ticks
        self.active: _Active | None = None
        self.finished: list[RecordingInfo] = []      # this conference's recordings since it opened

    @property
    def sink_id(self) -> str:
        assert self.active is not None
        return f"rec-{self.active.info.id}"

    def current(self, recording_id: str | None = None) -> _Active:
        """The running recording (``recording_id`` must match when given), or 409/404."""
        active = self.active
        if active is None:
            raise NOT_RECORDING
        if recording_id not in (None, "", active.info.id):
            raise ControlError(404, "not_found", "no such recording in progress")
        return active

    # ------------------------------------------------------------------ commands

    def start(self, options: RecordingOptions, members: list[Participant], started_by: str | None = None
              ) -> RecordingInfo:
        if self.active is not None:
            raise ControlError(409, "already_recording", f"recording {self.active.info.id} is in progress")
        info = RecordingInfo(id="rec_" + secrets.token_hex(10), conference_id=self.conf_id,
                             account_id=self.account_id, options=options, state="recording",
                             started_at=self.wall(), rate=self.room.rate)
        tap = Tap(self.max_queue_ticks)
        tap.skip = options.pause_behavior == "skip"
        self.active = _Active(info, tap, {})
        self.room.add_mix_sink(self.sink_id, MixSink(tap))
        for p in members:
            self.joined(p)
        self.recorder.begin(info, tap, self._finished)
        self.bus.publish(ev.RecordingStarted(self.conf_id, recording_id=info.id, format=options.format,
                                             channels=options.channels, multitrack=options.multitrack,
                                             started_by=started_by))
        log.info("%s: recording %s started (%s, %s%s)", self.conf_id, info.id, options.format, options.channels,
                 ", multitrack" if options.multitrack else "")
        return info

    def pause(self, recording_id: str | None = None) -> RecordingInfo:
        active = self.current(recording_id)
        if active.info.state == "recording":
            active.tap.paused, active.paused_at = True, self.wall()
            active.tap.mark("pause")
            active.info.state = "paused"
            self.bus.publish(ev.RecordingPaused(self.conf_id, recording_id=active.info.id))
        return active.info

    def resume(self, recording_id: str | None = None) -> RecordingInfo:
        active = self.current(recording_id)
        if active.info.state == "paused":
            paused_for = (self.wall() - active.paused_at).total_seconds() if active.paused_at else 0.0
            active.tap.mark("resume", wall_s=round(paused_for, 3))
            active.tap.paused, active.paused_at = False, None
            active.info.state = "recording"
            self.bus.publish(ev.RecordingResumed(self.conf_id, recording_id=active.info.id))
        return active.info

    def stop(self, reason: str = "api", recording_id: str | None = None) -> RecordingInfo:
        active = self.current(recording_id)
        self._detach(active)
        active.info.state = "stopped"
        active.info.ended_at = self.wall()
        self.bus.publish(ev.RecordingStopped(self.conf_id, recording_id=active.info.id, reason=reason))
        log.info("%s: recording %s stopped (%s)", self.conf_id, active.info.id, reason)
        return active.info

    def _detach(self, active: _Active) -> None:
        sink_id = f"rec-{active.info.id}"
        self.room.remove_mix_sink(sink_id)
        for pid in active.tracks:
            try:
                self.room.remove_leg_sink(pid, sink_id)
            except KeyError:
                pass                   # the leg is gone, its sinks with it
        active.tap.close()
        self.active = None

    # ------------------------------------------------------------------ what happens in the room

    def joined(self, p: Participant) -> None:
        active = self.active
        if active is None or not (active.info.options.multitrack or active.info.options.channels == "dual"):
            return
        pid = p.participant_id
        if pid in active.tracks:
            return
        track = len(active.tracks) + 1
        active.tracks[pid] = track
        active.tap.legs += 1
        active.info.participants.append(pid)
        active.info.tracks = len(active.tracks) + 1
        active.tap.mark("join", track, participant_id=pid, label=p.caller_name or p.caller_number, role=p.role,
                        caller_number=p.caller_number, muted=p.muted, on_hold=p.on_hold)
        self.room.add_leg_sink(pid, self.sink_id, LegSink(active.tap, track))

    def left(self, pid: str) -> None:
        active = self.active
        if active is not None and pid in active.tracks:
            active.tap.mark("leave", active.tracks.pop(pid))
            active.tap.legs = max(0, active.tap.legs - 1)

    def flag(self, pid: str, kind: str, on: bool) -> None:
        """``muted``, ``on_hold`` or ``talking`` changed (for the sidecar)."""
        active = self.active
        if active is not None and pid in active.tracks:
            active.tap.mark(kind, active.tracks[pid], on=on)

    def housekeeping(self) -> None:
        """Report audio the writer could not keep up with (at most once a housekeeping round)."""
        active = self.active
        if active is not None and active.tap.dropped > active.reported_drops:
            frames = active.tap.dropped - active.reported_drops
            active.reported_drops = active.tap.dropped
            active.info.dropped_frames = active.tap.dropped
            self.bus.publish(ev.RecordingAudioDropped(self.conf_id, recording_id=active.info.id, frames=frames))

    # ------------------------------------------------------------------ the writer's answer

    def _finished(self, info: RecordingInfo) -> None:
        if self.active is not None and self.active.info.id == info.id:
            self._detach(self.active)      # failed while recording: the room lets go of the taps
        self.finished.append(info)
        if info.state == "failed":
            log.warning("%s: recording %s failed: %s", self.conf_id, info.id, info.error)
            self.bus.publish(ev.RecordingFailed(self.conf_id, recording_id=info.id, error=info.error or ""))
        else:
            self.bus.publish(saved_event(info))


def saved_event(info: RecordingInfo) -> ev.RecordingSaved:
    return ev.RecordingSaved(
        info.conference_id, recording_id=info.id, account_id=info.account_id, format=info.options.format,
        channels=info.options.channels, started_at=info.started_at, ended_at=info.ended_at or info.started_at,
        duration_s=info.duration_s, recovered=info.recovered, files=tuple(sorted(info.files)))


@dataclasses.dataclass(frozen=True)
class RecordingSetup:
    """What the composition root gives each live conference: the writer and the config's defaults."""

    recorder: Recorder
    defaults: RecordingOptions
    announcement: str | None = "recording_started"   # a prompt name heard by everyone at start
    max_queue_ticks: int = 250
