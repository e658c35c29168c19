"""Fetching audio named by URL in an API request (hold music, playback), safely.

The URL must be http(s); its host must be public unless ``media_fetch.allow_networks`` says
otherwise (the webhooks' SSRF rules, checked on the literal and on every resolved address, so a
name that resolves inward is refused too); redirects are not followed (a redirect could lead
inward); the body is read up to ``max_bytes`` within ``timeout_s``; what arrives must decode
as audio (PyAV). Only then is it stored in the media cache under the URL's cache name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from bridge.config import MediaFetchConfig
from bridge.control.errors import ControlError
from bridge.media.playback import url_cache_name
from bridge.webhooks.adapters.sender import GuardedResolver
from bridge.webhooks.urls import (
    AddressPolicy,
    ForbiddenDestination,
    check_address,
    literal_address,
    validate_url,
)

log = logging.getLogger("bridge.audio")


class MediaFetchError(Exception):
    """The URL cannot give us audio; the message says why (safe to show the API client)."""


class MediaFetcher:
    def __init__(self, config: MediaFetchConfig, cache_dir: Path,
                 check_audio: Callable[[Path], None]) -> None:
        """``check_audio(path)`` raises when the file does not decode as audio."""
        self.config = config
        self.cache_dir = cache_dir
        self.policy = AddressPolicy.from_config(config.allow_networks)
        self.check_audio = check_audio
        self._inflight: dict[str, asyncio.Future[Path]] = {}

    def cached(self, url: str) -> Path | None:
        path = self.cache_dir / url_cache_name(url)
        return path if path.exists() else None

    def check_url(self, url: str) -> None:
        """Cheap checks without the network (scheme, literal address)."""
        try:
            validate_url("audio_url", url, self.policy)
        except ControlError as err:
            raise MediaFetchError(err.message) from None
        literal = literal_address(urlsplit(url).hostname or "")
        if literal is not None:
            try:
                check_address(str(literal), self.policy)
            except ForbiddenDestination as err:
                raise MediaFetchError(f"audio_url: {err}") from None

    async def fetch(self, url: str) -> Path:
        """The URL's audio in the cache (downloaded once; concurrent callers share one fetch)."""
        self.check_url(url)
        done = self.cached(url)
        if done is not None:
            return done
        pending = self._inflight.get(url)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(url))
            self._inflight[url] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(url, None))
        return await asyncio.shield(pending)

    async def _fetch(self, url: str) -> Path:
        target = self.cache_dir / url_cache_name(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        cap = self.config.max_bytes
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.policy))
        try:
            limit = aiohttp.ClientTimeout(total=self.config.timeout_s)
            async with aiohttp.ClientSession(connector=connector, trust_env=False, timeout=limit) as session, \
                    session.get(url, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise MediaFetchError(f"audio_url answered HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > cap:
                    raise MediaFetchError(f"audio_url is larger than {cap} bytes")
                size = 0
                with tmp.open("wb") as out:
                    async for chunk in resp.content.iter_chunked(64 * 1024):
                        size += len(chunk)
                        if size > cap:
                            raise MediaFetchError(f"audio_url is larger than {cap} bytes")
                        out.write(chunk)
        except MediaFetchError:
            tmp.unlink(missing_ok=True)
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            tmp.unlink(missing_ok=True)
            raise MediaFetchError(f"audio_url could not be fetched ({type(err).__name__}: {err})"[:300]) from None
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.check_audio, tmp)
        except Exception as err:  # noqa: BLE001  (a decoder fails in many ways; all mean "not audio")
            tmp.unlink(missing_ok=True)
            raise MediaFetchError(f"audio_url is not audio we can decode ({type(err).__name__})") from None
        tmp.replace(target)
        log.info("cached audio %s (%d bytes)", url, size)
        return target
