"""The writer, timeline and recovery with real files and PyAV, without SIP (fast)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from bridge.recording.adapters.encode import decoded_seconds
from bridge.recording.adapters.writer import Writer, recover
from bridge.recording.model import RecordingInfo, RecordingOptions, info_to_dict
from bridge.recording.tap import LegSink, MixSink, Tap
from tests.recording.helpers import decode_streams, offset, onset, tone_level, window

RATE = 16000
N = RATE // 50
FREQS = {1: 440.0, 2: 660.0, 3: 880.0}


def _tone(freq: float, tick: int) -> np.ndarray:
    t = (np.arange(N) + tick * N) / RATE
    return (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)


def _info(options: RecordingOptions) -> RecordingInfo:
    return RecordingInfo(id="rec_test", conference_id="conf_x", account_id="acct1", options=options,
                         state="recording", started_at=datetime(2026, 1, 1, tzinfo=timezone.utc), rate=RATE)


class Script:
    """Drives a tap like a room and a LiveConference would: joins, leaves, pause, per-tick writes."""

    def __init__(self, tap: Tap) -> None:
        self.tap = tap
        self.mix = MixSink(tap)
        self.legs: dict[int, LegSink] = {}
        self.tick = 0

    def join(self, track: int) -> None:
        self.tap.legs += 1
        self.tap.mark("join", track, participant_id=f"p{track}", label="", role="member", muted=False, on_hold=False)
        self.legs[track] = LegSink(self.tap, track)

    def leave(self, track: int) -> None:
        self.tap.mark("leave", track)
        self.legs.pop(track)

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            frames = {t: _tone(FREQS[t], self.tick) for t in self.legs}
            mix = np.clip(sum((f.astype(np.int32) for f in frames.values()), np.zeros(N, np.int32)), -32768, 32767)
            self.mix.write(mix.astype(np.int16), RATE)
            for t, sink in self.legs.items():
                sink.write(frames[t], RATE)
            self.tick += 1


def _write(tmp_path: Path, options: RecordingOptions, body: object) -> tuple[RecordingInfo, Path]:
    tap = Tap()
    tap.skip = options.pause_behavior == "skip"
    results: list[RecordingInfo] = []
    directory = tmp_path / "rec_test"
    writer = Writer(directory, _info(options), tap, "libopus", results.append)
    thread = threading.Thread(target=writer.run)
    thread.start()
    script = Script(tap)
    body(script)          # type: ignore[operator]
    tap.close()
    thread.join(30)
    assert not thread.is_alive() and len(results) == 1
    assert results[0].state == "saved", results[0].error
    return results[0], directory


def test_tracks_aligned_on_one_zero(tmp_path: Path) -> None:
    def body(s: Script) -> None:
        s.join(1)
        s.run(50)          # 0-1 s: only 1
        s.join(2)
        s.run(50)          # 1-2 s: 1 and 2
        s.join(3)
        s.run(50)          # 2-3 s: all three
        s.leave(1)
        s.run(50)          # 3-4 s: 2 and 3

    info, directory = _write(tmp_path, RecordingOptions(format="mp3", channels="dual"), body)
    assert set(info.files) == {"mix", "dual", "multitrack", "sidecar"}
    sidecar = json.loads((directory / info.files["sidecar"]).read_text())
    assert sidecar["duration_s"] == 4.0
    people = {p["track"]: p for p in sidecar["participants"]}
    assert [(people[t]["joined_at_s"], people[t]["left_at_s"]) for t in (1, 2, 3)] == [
        (0.0, 3.0), (1.0, None), (2.0, None)]
    streams, rate, titles = decode_streams(directory / info.files["multitrack"])
    assert titles == ["mix", "p1", "p2", "p3"]
    lengths = {round(x.size / rate, 1) for x in streams}
    assert lengths == {4.0}, lengths                 # one length: continuous, padded
    mix = streams[0]
    for f in FREQS.values():
        assert tone_level(window(mix, rate, 2.1, 2.9), rate, f) > 0.1
    for track, f in FREQS.items():
        x = streams[track]
        joined, left = people[track]["joined_at_s"], people[track]["left_at_s"] or 4.0
        # Only its own tone, from its join to its leave (+-40 ms), silence outside.
        start, end = onset(x, rate), offset(x, rate)
        assert start is not None and end is not None
        assert abs(start - joined) <= 0.04 and abs(end - left) <= 0.04
        inside = window(x, rate, joined + 0.1, left - 0.1)
        assert tone_level(inside, rate, f) > 0.1
        for other in FREQS.values():
            if other != f:
                assert tone_level(inside, rate, other) < 0.01
    dual, rate_d, _ = decode_streams(directory / info.files["dual"])
    assert rate_d == RATE


@pytest.mark.parametrize("behavior", ["silence", "skip"])
def test_pause_is_silence_or_skipped_in_every_track(tmp_path: Path, behavior: str) -> None:
    def body(s: Script) -> None:
        s.join(1)
        s.join(2)
        s.run(50)
        s.tap.paused = True
        s.tap.mark("pause")
        s.run(75)          # 1.5 s paused
        s.tap.mark("resume", wall_s=1.5)
        s.tap.paused = False
        s.run(50)

    info, directory = _write(tmp_path, RecordingOptions(format="wav", pause_behavior=behavior), body)  # type: ignore[arg-type]
    streams, rate, _ = decode_streams(directory / info.files["multitrack"])
    sidecar = json.loads((directory / info.files["sidecar"]).read_text())
    if behavior == "silence":
        assert sidecar["duration_s"] == 3.5
        assert sidecar["pauses"] == [{"start_s": 1.0, "end_s": 2.5, "wall_s": 1.5}]
        for x in streams:
            assert abs(x.size / rate - 3.5) < 0.03
            paused = window(x, rate, 1.04, 2.46)
            assert np.sqrt(np.mean(paused ** 2)) < 0.005          # silence of the right length
            assert np.sqrt(np.mean(window(x, rate, 2.6, 3.4) ** 2)) > 0.05
            assert np.sqrt(np.mean(window(x, rate, 0.1, 0.9) ** 2)) > 0.05
    else:
        assert sidecar["duration_s"] == 2.0
        assert sidecar["pauses"] == [{"start_s": 1.0, "end_s": 1.0, "wall_s": 1.5}]
        for x in streams:
            assert abs(x.size / rate - 2.0) < 0.03
    mix, mix_rate, _ = decode_streams(directory / info.files["mix"])
    assert abs(mix[0].size / mix_rate - sidecar["duration_s"]) < 0.01


def test_crash_recovery_from_parts(tmp_path: Path) -> None:
    """What a kill -9 leaves (parts, flushed; no end marker) is finished at the next start."""
    tap = Tap()
    directory = tmp_path / "rec_test"
    info = _info(RecordingOptions(format="ogg"))
    writer = Writer(directory, info, tap, "libopus", lambda r: None)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    s = Script(tap)
    s.join(1)
    s.run(150)
    deadline = 0
    while (directory / "mix.pcm.part").exists() is False or (directory / "mix.pcm.part").stat().st_size < 149 * N * 2:
        deadline += 1
        assert deadline < 500
        threading.Event().wait(0.01)
    writer.abandon = True             # as if killed: the thread stops without finishing
    thread.join(5)
    meta = json.loads((directory / "recording.json").read_text())
    assert meta["state"] == "recording"
    recovered = recover(directory, "libopus", meta)
    assert recovered.state == "saved" and recovered.recovered
    assert not list(directory.glob("*.part"))
    assert decoded_seconds(directory / recovered.files["mix"]) >= 3.0 - 0.1
    assert decoded_seconds(directory / recovered.files["multitrack"]) >= 3.0 - 0.1


def test_unwritable_directory_fails_the_recording(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")          # a file where the directory should be: fails even as root
    results: list[RecordingInfo] = []
    tap = Tap()
    Writer(blocker / "rec_test", _info(RecordingOptions()), tap, "libopus", results.append).run()
    assert results[0].state == "failed" and "NotADirectory" in (results[0].error or "")
    assert tap.closed
    assert info_to_dict(results[0])["error"]
