"""Recording options (with Telnyx's ``record_start`` semantics) and the metadata of a recording."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..control.errors import ControlError

MixFormat = Literal["wav", "mp3", "ogg"]
Channels = Literal["single", "dual"]
PauseBehavior = Literal["silence", "skip"]
State = Literal["recording", "paused", "stopped", "saved", "failed"]
FILE_KINDS = ("mix", "dual", "multitrack", "sidecar")   # + multitrack.2, .3 ... past 500 participants
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _invalid(field_name: str, detail: str) -> ControlError:
    return ControlError(422, "invalid_parameters", f"{field_name}: {detail}")


@dataclass(frozen=True)
class RecordingOptions:
    format: MixFormat = "wav"
    channels: Channels = "single"
    multitrack: bool = True
    custom_file_name: str | None = None
    play_beep: bool = False
    pause_behavior: PauseBehavior = "silence"

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "channels": self.channels, "multitrack": self.multitrack,
                "custom_file_name": self.custom_file_name, "play_beep": self.play_beep,
                "pause_behavior": self.pause_behavior}


def parse_options(body: dict[str, Any], defaults: RecordingOptions) -> RecordingOptions:
    """A start request's body (Audian REST or Telnyx ``record_start``) over the config's defaults.

    ``format``: wav | mp3 | ogg (Telnyx allows wav | mp3); ``channels``: single | dual (dual =
    the conference creator on the first channel, everyone else on the second);
    ``custom_file_name``: the download's file name stem (a Unix timestamp is appended, as
    Telnyx does); ``play_beep``: a beep to the room when recording starts; ``multitrack`` and
    ``pause_behavior`` (silence | skip) are ours. Unknown fields are refused."""
    known = {"format", "channels", "multitrack", "custom_file_name", "play_beep", "pause_behavior",
             "command_id", "trim"}
    extra = set(body) - known
    if extra:
        raise _invalid(sorted(extra)[0], "unknown field")
    out: dict[str, Any] = defaults.to_dict()
    choices = {"format": ("wav", "mp3", "ogg"), "channels": ("single", "dual"),
               "pause_behavior": ("silence", "skip")}
    for key, allowed in choices.items():
        if key in body:
            if body[key] not in allowed:
                raise _invalid(key, f"must be one of {', '.join(allowed)}")
            out[key] = body[key]
    for key in ("multitrack", "play_beep"):
        if key in body:
            if not isinstance(body[key], bool):
                raise _invalid(key, "must be a boolean")
            out[key] = body[key]
    if body.get("trim") not in (None, ""):
        raise _invalid("trim", "trim-silence is not supported (it would break the tracks' alignment)")
    name: Any = body.get("custom_file_name")
    if name is not None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise _invalid("custom_file_name", "1-100 letters, digits, '.', '_' or '-'")
        out["custom_file_name"] = name
    return RecordingOptions(**out)


@dataclass
class RecordingInfo:
    """A recording resource: what the API lists and the catalog keeps next to the files."""

    id: str
    conference_id: str
    account_id: str | None
    options: RecordingOptions
    state: State
    started_at: datetime
    ended_at: datetime | None = None
    duration_s: float = 0.0
    rate: int = 16000
    files: dict[str, str] = field(default_factory=dict)    # kind -> file name in its directory
    sizes: dict[str, int] = field(default_factory=dict)
    tracks: int = 0
    participants: list[str] = field(default_factory=list)
    recovered: bool = False
    error: str | None = None
    dropped_frames: int = 0


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def info_to_dict(info: RecordingInfo) -> dict[str, Any]:
    """The catalog's form (``recording.json`` next to the files)."""
    return {
        "id": info.id, "conference_id": info.conference_id, "account_id": info.account_id,
        "options": info.options.to_dict(), "state": info.state, "started_at": _iso(info.started_at),
        "ended_at": _iso(info.ended_at), "duration_s": info.duration_s, "rate": info.rate,
        "files": dict(info.files), "sizes": dict(info.sizes), "tracks": info.tracks,
        "participants": list(info.participants), "recovered": info.recovered, "error": info.error,
        "dropped_frames": info.dropped_frames,
    }


def info_from_dict(d: dict[str, Any]) -> RecordingInfo:
    ended = d.get("ended_at")
    return RecordingInfo(
        id=str(d["id"]), conference_id=str(d["conference_id"]), account_id=d.get("account_id"),
        options=RecordingOptions(**d.get("options", {})), state=d.get("state", "failed"),
        started_at=datetime.fromisoformat(d["started_at"]),
        ended_at=datetime.fromisoformat(ended) if ended else None, duration_s=float(d.get("duration_s", 0.0)),
        rate=int(d.get("rate", 16000)), files=dict(d.get("files", {})), sizes=dict(d.get("sizes", {})),
        tracks=int(d.get("tracks", 0)), participants=list(d.get("participants", [])),
        recovered=bool(d.get("recovered", False)), error=d.get("error"),
        dropped_frames=int(d.get("dropped_frames", 0)),
    )


def info_view(info: RecordingInfo, urls: dict[str, str]) -> dict[str, Any]:
    """The API's form of a recording (``urls``: kind -> download URL)."""
    d = info_to_dict(info)
    d.pop("options")
    opts = info.options
    return {**d, "record_type": "recording", "status": info.state, "format": opts.format,
            "channels": opts.channels, "multitrack": opts.multitrack, "pause_behavior": opts.pause_behavior,
            "custom_file_name": opts.custom_file_name, "size_bytes": sum(info.sizes.values()),
            "download_urls": urls}
