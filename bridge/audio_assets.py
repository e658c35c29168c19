"""What callers hear besides each other: prompts, beeps and hold music, as room sources.

File decoding happens here, off the media clock: prompts are decoded once per
rate and cached; hold music files are decoded in a worker thread the first time
a room needs them (until then the built-in music plays).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bridge_codecs.base import Pcm

from bridge.media.comfort import COMFORT_NOISE_DBOV, comfort_noise
from bridge.media.playback import (
    DECODE_MAX_SECONDS,
    DecodedAudio,
    DecodedAudioCache,
    FilePlayback,
    PromptSequence,
    url_cache_name,
)
from bridge.media.ports import AudioSource
from bridge.media.prompts import prompt_path
from bridge.media.tones import ToneSource, tone_sequence

if TYPE_CHECKING:
    from bridge.adapters.media_fetch import MediaFetcher

log = logging.getLogger("bridge.audio")

__all__ = ["AudioAssets", "COMFORT_NOISE_DBOV", "builtin_music", "comfort_noise"]

# Built-in hold music: a slow D-minor arpeggio, quiet (-26 dBov), looping forever.
# The notes avoid the 500/1000/1500 Hz tones the test-suite speakers use.
_ARPEGGIO = [(294.0, 400), (349.0, 400), (440.0, 400), (587.0, 400), (440.0, 400), (349.0, 400), (0.0, 300)]


def builtin_music() -> ToneSource:
    return tone_sequence(_ARPEGGIO, dbov=-26.0, repeat=True)


class _MusicWhenDecoded:
    """Built-in music until the worker thread has decoded the file, then the file (looped)."""

    def __init__(self, cache: DecodedAudioCache, path: Path, rate: int) -> None:
        self.cache = cache
        self.key = (str(path), rate)
        self.current: AudioSource = builtin_music()
        self.switched = False

    def read(self, samples: int, rate: int) -> Pcm | None:
        if not self.switched and self.key in self.cache:
            self.current = FilePlayback(self.cache.get(self.key[0], self.key[1]), loop=True)
            self.switched = True
        return self.current.read(samples, rate)


class AudioAssets:
    def __init__(self, cache_dir: Path, loop: asyncio.AbstractEventLoop,
                 fetcher: MediaFetcher | None = None, decode_max_seconds: float = DECODE_MAX_SECONDS) -> None:
        """``fetcher``: downloads http(s) audio under the media-fetch rules; without one a URL
        plays the built-in music. Files longer than ``decode_max_seconds`` are refused."""
        self.cache = DecodedAudioCache(max_seconds=decode_max_seconds)
        self.cache_dir = cache_dir
        self.loop = loop
        self.fetcher = fetcher
        self._loading: set[tuple[str, int]] = set()

    def prompt(self, names: Sequence[str], rate: int) -> AudioSource:
        """The named prompts back to back (decoded once per rate, then served from memory)."""
        return PromptSequence([FilePlayback(self.cache.get(prompt_path(n), rate)) for n in names])

    def then(self, first: AudioSource, second: AudioSource) -> AudioSource:
        return PromptSequence([first, second])

    def music(self, location: str | None, rate: int) -> AudioSource:
        """Looping hold music from a file path or a cached http(s) download; built-in otherwise."""
        path = self._local_path(location)
        if path is None:
            return builtin_music()
        if (str(path), rate) in self.cache:
            return FilePlayback(self.cache.get(path, rate), loop=True)
        self._load_later(path, rate)
        return _MusicWhenDecoded(self.cache, path, rate)

    def _local_path(self, location: str | None) -> Path | None:
        if not location:
            return None
        if location.startswith(("http://", "https://")):
            cached = self.cache_dir / url_cache_name(location)
            if cached.exists():
                return cached
            # Until it is fetched (checked, capped, decoded once) the built-in music plays.
            self.loop.create_task(self._download(location, cached))
            return None
        path = Path(location)
        return path if path.is_file() else None

    def _load_later(self, path: Path, rate: int) -> None:
        key = (str(path), rate)
        if key in self._loading:
            return
        self._loading.add(key)

        def decode() -> DecodedAudio | None:
            try:
                return self.cache.get(path, rate)
            except Exception as exc:  # a broken file must not break the room
                log.warning("cannot decode hold music %s: %s", path, exc)
                return None

        future = self.loop.run_in_executor(None, decode)
        future.add_done_callback(lambda _f: self._loading.discard(key))

    async def _download(self, url: str, target: Path) -> None:
        if self.fetcher is None:
            return
        from bridge.adapters.media_fetch import MediaFetchError

        try:
            await self.fetcher.fetch(url)
        except MediaFetchError as err:
            log.warning("cannot fetch hold music %s: %s", url, err)
