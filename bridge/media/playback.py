"""Playback sources: decoded audio files (prompts, hold music), silence, and sequences of sources.

Files are decoded once into memory (PCM at the room rate) and then served in
``read(samples, rate)`` slices: the media tick never touches a decoder or a disk.

IO note: ``decode_file`` (and so ``DecodedAudioCache.get`` and ``FilePlayback``
built from a path) opens and decodes the file with PyAV. That is the one piece of
IO in this module; callers in the media path should decode ahead of time (the
adapter can run ``cache.get`` in an executor and hand ``FilePlayback`` the
``DecodedAudio``). Everything else here is pure.

Hold music from an http(s) URL: the download is an adapter's job. The pure part is
``url_cache_name``, which maps the URL to a stable file name inside the media cache
directory; the adapter downloads there once and then plays the local file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import numpy as np
from bridge_codecs.base import Pcm
from bridge_codecs.resample import SUPPORTED_RATES, Resampler, design_lowpass

from bridge.media.ports import AudioSource


@dataclass(frozen=True)
class DecodedAudio:
    """Mono int16 PCM at ``rate``, decoded once and shared (treat ``pcm`` as read-only)."""

    pcm: Pcm
    rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.rate

    def at_rate(self, rate: int) -> DecodedAudio:
        """The same audio at ``rate`` (polyphase resampling; itself when the rate matches)."""
        if rate == self.rate:
            return self
        high, low = max(self.rate, rate), min(self.rate, rate)
        taps = len(design_lowpass(high, low))
        step = max(self.rate // rate, 1)
        # Zeros after the end flush the filter; align to whole input blocks.
        flush = taps + (-(len(self.pcm) + taps)) % step
        out = Resampler(self.rate, rate).process(
            np.concatenate((self.pcm, np.zeros(flush, dtype=np.int16))))
        # Linear-phase FIR: constant group delay of (taps-1)/2 high-rate samples; the
        # decimator's first output sits step-1 input samples in.
        lag = round(((taps - 1) / 2 - (step - 1)) * rate / high)
        want = len(self.pcm) * rate // self.rate
        return DecodedAudio(np.ascontiguousarray(out[lag:lag + want]), rate)


# Default for media.decode_max_seconds: 15 minutes is 28.8 MB of PCM at 16 kHz.
DECODE_MAX_SECONDS = 900.0


def decode_file(path: str | os.PathLike[str], rate: int,
                max_seconds: float = DECODE_MAX_SECONDS) -> DecodedAudio:
    """Decode the first audio stream of ``path`` (WAV, MP3, Ogg/Opus, ...) to mono int16 at ``rate``.

    Refused (ValueError) as soon as the output passes ``max_seconds`` (``media.decode_max_seconds``):
    a small file that expands to hours (a decompression bomb) costs at most that much memory,
    and the container's declared duration is never trusted. Only local files are opened, so no
    protocol or playlist demuxer can reach the network."""
    import av  # imported here: only file decoding needs it, the rest of the module stays light

    if rate not in SUPPORTED_RATES:
        raise ValueError(f"unsupported rate {rate}")
    chunks: list[Pcm] = []
    limit = int(max_seconds * rate)
    total = 0
    with av.open(os.fspath(path), options={"protocol_whitelist": "file"}) as container:
        if not container.streams.audio:
            raise ValueError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
                total += len(chunks[-1])
            if total > limit:
                raise ValueError(f"{path}: longer than {max_seconds:g} s (media.decode_max_seconds)")
        for out in resampler.resample(None):          # flush what the resampler holds
            chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    pcm.setflags(write=False)
    return DecodedAudio(pcm, rate)


class DecodedAudioCache:
    """Decoded PCM keyed by (path, rate), least recently used dropped beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_seconds: float = DECODE_MAX_SECONDS) -> None:
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._items: OrderedDict[tuple[str, int], DecodedAudio] = OrderedDict()
        self._bytes = 0

    def get(self, path: str | os.PathLike[str], rate: int) -> DecodedAudio:
        key = (os.path.abspath(os.fspath(path)), rate)
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        audio = decode_file(key[0], rate, self.max_seconds)
        self._items[key] = audio
        self._bytes += audio.pcm.nbytes
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.pcm.nbytes
        return audio

    def __contains__(self, key: tuple[str, int]) -> bool:
        return (os.path.abspath(key[0]), key[1]) in self._items

    def __len__(self) -> int:
        return len(self._items)


default_cache = DecodedAudioCache()


class FilePlayback:
    """Serves decoded audio; with ``loop`` it wraps inside a read, so there is no gap at the seam.

    ``source`` is a path (decoded at ``rate`` now, through ``cache``) or a ``DecodedAudio``.
    Pass the room's rate: a read at another rate converts the whole file once, inside that read.
    """

    def __init__(self, source: str | os.PathLike[str] | DecodedAudio, loop: bool = False,
                 rate: int = 16000, cache: DecodedAudioCache | None = None) -> None:
        self.loop = loop
        self._path = None if isinstance(source, DecodedAudio) else source
        self._cache = cache if cache is not None else default_cache   # an empty cache is falsy
        self._audio = source if isinstance(source, DecodedAudio) else self._cache.get(source, rate)
        self._pos = 0
        self._done = False

    def _audio_at(self, rate: int) -> DecodedAudio:
        if rate != self._audio.rate:
            old = self._audio.rate
            self._audio = (self._cache.get(self._path, rate) if self._path is not None
                           else self._audio.at_rate(rate))
            self._pos = self._pos * rate // old
        return self._audio

    def read(self, samples: int, rate: int) -> Pcm | None:
        if self._done:
            return None
        pcm = self._audio_at(rate).pcm
        n = len(pcm)
        if n == 0 or (self._pos >= n and not self.loop):
            self._done = True
            return None
        if self.loop:
            idx = (self._pos + np.arange(samples)) % n
            self._pos = (self._pos + samples) % n
            return pcm[idx]
        out = np.zeros(samples, dtype=np.int16)
        chunk = pcm[self._pos:self._pos + samples]
        out[:len(chunk)] = chunk
        self._pos += samples
        return out

    def rewind(self) -> None:
        self._pos, self._done = 0, False


class SilenceSource:
    """``ms`` milliseconds of digital silence, then finished (a pause between prompts)."""

    def __init__(self, ms: int) -> None:
        self.ms = ms
        self._played_ms = 0.0

    def read(self, samples: int, rate: int) -> Pcm | None:
        if self._played_ms >= self.ms:
            return None
        self._played_ms += samples * 1000 / rate
        return np.zeros(samples, dtype=np.int16)


class PromptSequence:
    """Plays ``sources`` one after another within the same reads, then finishes."""

    def __init__(self, sources: Sequence[AudioSource]) -> None:
        self._sources = list(sources)
        self._index = 0

    @property
    def finished(self) -> bool:
        return self._index >= len(self._sources)

    def read(self, samples: int, rate: int) -> Pcm | None:
        while self._index < len(self._sources):
            frame = self._sources[self._index].read(samples, rate)
            if frame is not None:
                return frame
            self._index += 1           # that one is done: take the next in this same tick
        return None


_AUDIO_EXT = re.compile(r"^\.(wav|mp3|ogg|opus|oga|flac|m4a|aac)$", re.IGNORECASE)


def url_cache_name(url: str) -> str:
    """Stable, filesystem-safe cache file name for a media URL (hash + the URL's audio extension).

    Same URL -> same name, different URLs -> different names; the extension is kept
    (when it is a known audio one) so the decoder can guess the container.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
    ext = PurePosixPath(parts.path).suffix
    return f"{digest}{ext.lower() if _AUDIO_EXT.match(ext) else '.bin'}"
