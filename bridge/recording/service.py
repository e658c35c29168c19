"""RecordingService: start/stop/pause/resume, list, get and delete recordings, per account.

The Audian REST routes call it today (``bridge/recording/adapters/routes.py``); a Telnyx
call-control API calls the same methods with its ``record_start`` body (``format``,
``channels``, ``custom_file_name``, ``play_beep``) and ``record_stop``/``record_pause``/
``record_resume`` with an optional ``recording_id`` (None: the one in progress). Every
lookup is scoped to the caller's account: another account's conference or recording is a
404, never revealing that it exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..control.errors import ControlError, not_found
from ..control.model import Conference
from .control import ConferenceRecording
from .model import RecordingInfo, RecordingOptions, parse_options

NOT_LIVE = ControlError(409, "conference_not_live", "nobody is in the conference: there is nothing to record")
DISABLED = ControlError(409, "recording_disabled", "recording is disabled in config.yaml")


class Conferences(Protocol):
    def get_owned(self, account_id: str, conf_id: str) -> Conference: ...


class LiveRecording(Protocol):
    """The part of ``LiveConference`` recording needs."""

    recording: ConferenceRecording | None

    def start_recording(self, options: RecordingOptions | None, started_by: str | None = None
                        ) -> RecordingInfo: ...


class Catalog(Protocol):
    catalog: dict[str, RecordingInfo]

    def get(self, recording_id: str) -> RecordingInfo | None: ...

    def delete(self, info: RecordingInfo) -> None: ...


class RecordingService:
    def __init__(self, conferences: Conferences, live: Callable[[str], LiveRecording | None],
                 catalog: Catalog | None, defaults: RecordingOptions) -> None:
        self.conferences = conferences
        self.live = live
        self.catalog = catalog
        self.defaults = defaults

    def _recording(self, account: str, conf_id: str) -> tuple[LiveRecording, ConferenceRecording]:
        conf = self.conferences.get_owned(account, conf_id)
        if self.catalog is None:
            raise DISABLED
        live = self.live(conf.id)
        if live is None or live.recording is None:
            raise NOT_LIVE
        return live, live.recording

    def start(self, account: str, conf_id: str, body: dict[str, Any]) -> RecordingInfo:
        options = parse_options(body, self.defaults)
        live, _rec = self._recording(account, conf_id)
        return live.start_recording(options)

    def stop(self, account: str, conf_id: str, recording_id: str | None = None) -> RecordingInfo:
        return self._recording(account, conf_id)[1].stop("api", recording_id)

    def pause(self, account: str, conf_id: str, recording_id: str | None = None) -> RecordingInfo:
        return self._recording(account, conf_id)[1].pause(recording_id)

    def resume(self, account: str, conf_id: str, recording_id: str | None = None) -> RecordingInfo:
        return self._recording(account, conf_id)[1].resume(recording_id)

    def list(self, account: str, conf_id: str | None = None) -> list[RecordingInfo]:
        if conf_id is not None:
            self.conferences.get_owned(account, conf_id)
        items = self.catalog.catalog.values() if self.catalog is not None else []
        mine = [i for i in items if i.account_id == account and (conf_id is None or i.conference_id == conf_id)]
        return sorted(mine, key=lambda i: i.started_at)

    def get(self, account: str, recording_id: str) -> RecordingInfo:
        info = self.catalog.get(recording_id) if self.catalog is not None else None
        if info is None or info.account_id is None or info.account_id != account:
            raise not_found("recording not found")
        return info

    def delete(self, account: str, recording_id: str) -> RecordingInfo:
        info = self.get(account, recording_id)
        if info.state in ("recording", "paused", "stopped"):
            raise ControlError(409, "recording_in_progress", "stop the recording (and let it save) first")
        assert self.catalog is not None
        self.catalog.delete(info)
        return info
