"""The writer thread of one recording: tap in, raw ``.part`` tracks out, then the finished files.

It polls the tap every 20 ms, feeds the ``Timeline`` (which keeps the tracks continuous and
aligned) and appends each track's frames to its raw ``.part`` file. At least once a second
it flushes every file to the OS and rewrites ``sidecar.json.part``, so a ``kill -9`` loses at
most about a second. When the tap closes it encodes the finished files (``encode.py``),
writes the sidecar and ``recording.json``, each fsynced and renamed, removes the parts and
reports back on the event loop. Any error stops the recording as failed; the call is never
touched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from ...media.ports import Pcm
from ..model import RecordingInfo, info_from_dict, info_to_dict
from ..tap import Tap
from ..timeline import Timeline, TrackKey
from .encode import finish_files, fsync_rename, track_parts

log = logging.getLogger("bridge.recording")

FLUSH_EVERY_S = 0.5
POLL_S = 0.02


def write_json(path: Path, data: dict[str, Any], durable: bool = True) -> None:
    part = path.with_name(path.name + ".tmp")
    part.write_text(json.dumps(data, indent=1, sort_keys=True))
    if durable:
        fsync_rename(part, path)
    else:
        os.replace(part, path)


def file_stem(info: RecordingInfo) -> str:
    name = info.options.custom_file_name
    # Telnyx appends a Unix timestamp to custom_file_name; so do we.
    return f"{name}-{int(info.started_at.timestamp())}" if name else info.id


class PartFiles:
    """``TrackOutput`` writing raw PCM to ``.part`` files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[TrackKey, BinaryIO] = {}

    def open(self, track: TrackKey, start_frame: int) -> None:
        name = f"{track}.pcm.part" if isinstance(track, str) else f"track-{track:03d}.f{start_frame}.pcm.part"
        self.files[track] = open(self.directory / name, "ab")

    def write(self, track: TrackKey, pcm: Pcm) -> None:
        self.files[track].write(pcm.tobytes())

    def flush(self) -> None:
        for f in self.files.values():
            f.flush()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()


def finish(directory: Path, info: RecordingInfo, sidecar: dict[str, Any], multitrack_codec: str) -> RecordingInfo:
    """Encode, write the sidecar and ``recording.json``, drop the parts (also used by recovery)."""
    opts = info.options
    stem = file_stem(info)
    people = {p["track"]: str(p.get("participant_id") or f"track {p['track']}") for p in sidecar["participants"]}
    files = finish_files(directory, stem, info.rate, opts.format, opts.channels == "dual", opts.multitrack,
                         sidecar.get("creator_track"), people, multitrack_codec)
    sidecar = {**sidecar, "recording_id": info.id, "conference_id": info.conference_id,
               "started_at": info.started_at.isoformat(), "recovered": info.recovered,
               "pause_behavior": opts.pause_behavior, "files": files}
    write_json(directory / f"{stem}.json", sidecar)
    files["sidecar"] = f"{stem}.json"
    for part in list(directory.glob("*.part")):
        part.unlink()
    info.files = files
    info.sizes = {kind: (directory / name).stat().st_size for kind, name in files.items()}
    info.duration_s = float(sidecar["duration_s"])
    if info.ended_at is None or info.recovered:
        info.ended_at = info.started_at + timedelta(seconds=info.duration_s)
    info.tracks = 1 + len(sidecar["participants"])
    info.state = "saved"
    write_json(directory / "recording.json", info_to_dict(info))
    return info


class Writer:
    def __init__(self, directory: Path, info: RecordingInfo, tap: Tap, multitrack_codec: str,
                 report: Callable[[RecordingInfo], None]) -> None:
        self.directory = directory
        self.info = RecordingInfo(**{**info.__dict__, "participants": []})   # the thread's own copy
        self.tap = tap
        self.multitrack_codec = multitrack_codec
        self.report = report
        self.abandon = False    # stop at once and leave the parts as a crash would (the crash tests)

    def run(self) -> None:
        info = self.info
        parts: PartFiles | None = None
        try:
            self.directory.mkdir(parents=True)
            write_json(self.directory / "recording.json", info_to_dict(info))
            parts = PartFiles(self.directory)
            timeline = Timeline(info.rate, parts, dual=info.options.channels == "dual")
            sidecar_part = self.directory / "sidecar.json.part"
            next_flush = time.monotonic() + FLUSH_EVERY_S
            while not timeline.ended and not self.abandon:
                items = self.tap.take()
                if items:
                    timeline.feed(items)
                if time.monotonic() >= next_flush or timeline.ended:
                    parts.flush()
                    write_json(sidecar_part, timeline.sidecar(), durable=False)
                    next_flush = time.monotonic() + FLUSH_EVERY_S
                if not items:
                    time.sleep(POLL_S)
            parts.close()
            if self.abandon:
                return
            info.ended_at = None
            self.report(finish(self.directory, info, timeline.sidecar(), self.multitrack_codec))
        except Exception as exc:        # disk full, permission, encoder: this recording fails, calls go on
            log.warning("recording %s failed: %r", info.id, exc)
            if parts is not None:
                try:
                    parts.close()
                except OSError:
                    pass
            self.tap.close()
            info.state, info.error = "failed", f"{type(exc).__name__}: {exc}"
            try:
                write_json(self.directory / "recording.json", info_to_dict(info))
            except OSError:
                pass                    # the directory itself is what failed
            self.report(info)


def recover(directory: Path, multitrack_codec: str, meta: dict[str, Any]) -> RecordingInfo:
    """Finish what a crash left behind in ``directory``: playable up to the last flush."""
    info = info_from_dict(meta)
    info.recovered = True
    sidecar_path = directory / "sidecar.json.part"
    sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.exists() else None
    mix = directory / "mix.pcm.part"
    frames = (mix.stat().st_size // 2 // (info.rate // 50)) if mix.exists() else 0
    if sidecar is None:
        sidecar = {"rate": info.rate, "frame_ms": 20, "creator_track": None, "participants": [], "pauses": []}
    # The parts may hold a little more than the last sidecar said: the files are the truth.
    sidecar["duration_s"] = round(frames * 0.02, 3)
    known = {p["track"] for p in sidecar["participants"]}
    for track, (_path, start) in track_parts(directory).items():
        if track not in known:
            sidecar["participants"].append({"track": track, "participant_id": None, "joined_at_s": start * 0.02,
                                            "left_at_s": None, "muted": [], "on_hold": [], "talk_spans": []})
    sidecar["tracks"] = [{"track": 0, "kind": "mix"}] + [
        {"track": p["track"], "kind": "participant", "participant_id": p.get("participant_id")}
        for p in sidecar["participants"]]
    return finish(directory, info, sidecar, multitrack_codec)


def remove_tree(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
