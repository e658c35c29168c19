"""Turning a recording's raw ``.part`` tracks into the finished files (PyAV), and back to audio.

While recording, every track is appended as raw 16-bit PCM (``mix.pcm.part``,
``rest.pcm.part``, ``track-NNN.fSTART.pcm.part``, where START is the frame the participant
joined at): the cheapest write there is, and crash-safe by construction (what reached the OS
is playable). Finishing, or recovering after a crash, encodes them: the mix as WAV/MP3/Ogg
Opus, ``dual`` as a two-channel file (creator left, everyone else right), and the multitrack
Matroska file with the mix and one Opus track per participant, each padded with silence from
frame 0 to the end so all tracks share one time zero and one length. Each output is written
as ``<name>.part``, fsynced, then renamed.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np

CHUNK_S = 2                       # seconds encoded per step (bounds memory for long recordings)
TRACK_PART = re.compile(r"^track-(\d{3,})\.f(\d+)\.pcm\.part$")
MKA_MAX_TRACKS = 500              # participant tracks per Matroska file (see finish_files)
MIX_CODECS = {"wav": ("wav", "pcm_s16le"), "mp3": ("mp3", "libmp3lame"), "ogg": ("ogg", "libopus")}


def track_parts(directory: Path) -> dict[int, tuple[Path, int]]:
    """Participant track files: track number -> (path, start frame)."""
    out = {}
    for path in directory.iterdir():
        m = TRACK_PART.match(path.name)
        if m:
            out[int(m.group(1))] = (path, int(m.group(2)))
    return out


def fsync_rename(part: Path, final: Path) -> None:
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(part, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def wav_header(rate: int, channels: int, data_bytes: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16) +
            b"data" + struct.pack("<I", data_bytes))


class _Padded:
    """A raw track read as frames from 0: silence before ``start`` samples and after its end."""

    def __init__(self, path: Path | None, start: int) -> None:
        self.f: BinaryIO | None = open(path, "rb") if path is not None else None
        self.start = start
        self.pos = 0

    def read(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.int16)
        lead = max(0, min(n, self.start - self.pos))
        if self.f is not None and lead < n:
            data = self.f.read((n - lead) * 2)
            got = np.frombuffer(data[: len(data) // 2 * 2], np.int16)
            out[lead:lead + got.size] = got
        self.pos += n
        return out

    def close(self) -> None:
        if self.f is not None:
            self.f.close()


def _encode(path: Path, fmt: str, codec: str, rate: int, sources: list[list[_Padded]], total: int,
            titles: list[str], options: dict[str, str] | None = None) -> None:
    """One stream per entry of ``sources`` (one source: mono, two: stereo), ``total`` samples each."""
    out = av.open(str(path), "w", format=fmt, options=options or {})
    try:
        streams = []
        for chans, title in zip(sources, titles):
            stream: Any = out.add_stream(codec, rate=rate, layout="mono" if len(chans) == 1 else "stereo")
            if codec == "libopus":
                stream.bit_rate = 32000
            stream.metadata["title"] = title
            streams.append(stream)
        step = rate * CHUNK_S
        for pos in range(0, total, step):
            n = min(step, total - pos)
            for stream, chans in zip(streams, sources):
                data = np.stack([c.read(n) for c in chans], axis=1).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(data, format="s16", layout=stream.layout.name)
                frame.rate, frame.pts = rate, pos
                out.mux(stream.encode(frame))
        for stream in streams:
            out.mux(stream.encode(None))
    finally:
        out.close()


def write_wav(path: Path, rate: int, sources: list[_Padded], total: int) -> None:
    with open(path, "wb") as f:
        f.write(wav_header(rate, len(sources), total * 2 * len(sources)))
        step = rate * CHUNK_S
        for pos in range(0, total, step):
            n = min(step, total - pos)
            f.write(np.stack([s.read(n) for s in sources], axis=1).tobytes())


def finish_files(directory: Path, stem: str, rate: int, fmt: str, dual: bool, multitrack: bool,
                 creator: int | None, people: dict[int, str], multitrack_codec: str = "libopus") -> dict[str, str]:
    """Encode the parts in ``directory`` into the finished files; returns kind -> file name."""
    mix = directory / "mix.pcm.part"
    total = mix.stat().st_size // 2 if mix.exists() else 0
    tracks = track_parts(directory)
    files: dict[str, str] = {}

    def produce(kind: str, name: str, make: Any) -> None:
        part = directory / (name + ".part")
        make(part)
        fsync_rename(part, directory / name)
        files[kind] = name

    def mix_file(part: Path) -> None:
        src = [_Padded(mix, 0)]
        try:
            if fmt == "wav":
                write_wav(part, rate, src, total)
            else:
                container, codec = MIX_CODECS[fmt]
                _encode(part, container, codec, rate, [src], total, ["mix"])
        finally:
            src[0].close()
    produce("mix", f"{stem}.{fmt}", mix_file)

    if dual:
        def dual_file(part: Path) -> None:
            first = tracks.get(creator) if creator is not None else None
            src = [_Padded(first[0], first[1] * rate // 50) if first else _Padded(None, 0),
                   _Padded(directory / "rest.pcm.part" if (directory / "rest.pcm.part").exists() else None, 0)]
            try:
                if fmt == "mp3":
                    _encode(part, "mp3", "libmp3lame", rate, [src], total, ["dual"])
                else:       # Telnyx dual is wav or mp3; an ogg request gets a two-channel WAV
                    write_wav(part, rate, src, total)
            finally:
                for s in src:
                    s.close()
        produce("dual", f"{stem}.dual.{'mp3' if fmt == 'mp3' else 'wav'}", dual_file)

    if multitrack:
        order = sorted(tracks)
        # FFmpeg refuses (PyAV crashes) past 1,000 streams in one file: large rooms get several
        # files, each with the mix as track 0 so every file keeps the common time zero.
        groups = [order[i:i + MKA_MAX_TRACKS] for i in range(0, len(order), MKA_MAX_TRACKS)] or [[]]
        for number, group in enumerate(groups, start=1):
            def mka_file(part: Path, group: list[int] = group) -> None:
                src = [[_Padded(mix, 0)]] + [[_Padded(tracks[t][0], tracks[t][1] * rate // 50)] for t in group]
                titles = ["mix"] + [people.get(t, f"track {t}") for t in group]
                try:
                    _encode(part, "matroska", multitrack_codec, rate, src, total, titles)
                finally:
                    for chans in src:
                        chans[0].close()
            suffix = "" if number == 1 else f".{number}"
            produce(f"multitrack{suffix}", f"{stem}{suffix}.mka", mka_file)
    return files


def decoded_seconds(path: Path) -> float:
    """How much audio PyAV decodes from ``path`` (first audio stream)."""
    samples = 0
    rate = 0
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        for frame in c.decode(stream):
            samples += frame.samples
            rate = frame.sample_rate
    return samples / rate if rate else 0.0
