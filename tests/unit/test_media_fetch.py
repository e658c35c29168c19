"""Audio named by URL is fetched under rules: public addresses only unless allowed, no redirects,
a size cap, and it must decode as audio (PyAV) before it lands in the media cache."""

from __future__ import annotations

import asyncio
import gzip
import io
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from bridge.adapters.call_io import _check_audio
from bridge.adapters.media_fetch import MediaFetcher, MediaFetchError
from bridge.config import MediaFetchConfig


def _wav(seconds: float = 0.5) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


@pytest.fixture
async def server(unused_tcp_port: int) -> AsyncIterator[str]:
    def serve(make: Callable[[], web.Response]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(_request: web.Request) -> web.Response:
            return make()
        return handler

    app = web.Application()
    app.router.add_get("/tone.wav", serve(lambda: web.Response(body=_wav(), content_type="audio/wav")))
    app.router.add_get("/big.wav", serve(lambda: web.Response(body=_wav(5.0), content_type="audio/wav")))
    app.router.add_get("/page.wav", serve(lambda: web.Response(text="<html>not audio</html>" * 20)))
    app.router.add_get("/moved.wav", serve(lambda: web.Response(status=302, headers={"Location": "/tone.wav"})))
    app.router.add_get("/gone.wav", serve(lambda: web.Response(status=404)))
    # ~20 KB on the wire, 5 MB once inflated: the byte cap must count what aiohttp inflates.
    app.router.add_get("/bomb.wav", serve(lambda: web.Response(
        body=gzip.compress(_wav(1.0)[:44] + b"\0" * (5 * 1024 * 1024)),
        headers={"Content-Type": "audio/wav", "Content-Encoding": "gzip"})))

    async def drip(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        await resp.prepare(request)
        for _ in range(50):                      # one byte every 0.2 s, at most 10 s
            await resp.write(b"\0")
            await asyncio.sleep(0.2)
        return resp

    app.router.add_get("/drip.wav", drip)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    yield f"http://127.0.0.1:{unused_tcp_port}"
    await runner.cleanup()


def _fetcher(tmp_path: Path, **cfg: object) -> MediaFetcher:
    return MediaFetcher(MediaFetchConfig(**cfg), tmp_path / "cache", _check_audio)  # type: ignore[arg-type]


async def test_loopback_is_refused_unless_allowed(server: str, tmp_path: Path) -> None:
    with pytest.raises(MediaFetchError, match="audio_url"):
        await _fetcher(tmp_path).fetch(server + "/tone.wav")
    allowed = _fetcher(tmp_path, allow_networks=["127.0.0.1/32"])
    path = await allowed.fetch(server + "/tone.wav")
    assert path.exists() and allowed.cached(server + "/tone.wav") == path
    assert not list((tmp_path / "cache").glob("*.part"))


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data.wav", "ftp://example.com/a.wav",
                                 "http://localhost/a.wav", "http://[::ffff:127.0.0.1]/a.wav",
                                 "http://[::ffff:a9fe:a9fe]/latest.wav", "http://[2002:7f00:1::1]/a.wav",
                                 "http://[64:ff9b::a9fe:a9fe]/a.wav"])
async def test_internal_or_odd_urls_are_refused_without_a_request(url: str, tmp_path: Path) -> None:
    with pytest.raises(MediaFetchError):
        await _fetcher(tmp_path).fetch(url)


@pytest.mark.parametrize("name,why", [("/big.wav", "larger than"), ("/page.wav", "not audio"),
                                      ("/moved.wav", "HTTP 302"), ("/gone.wav", "HTTP 404")])
async def test_what_is_too_big_redirected_missing_or_not_audio_is_refused(
    server: str, tmp_path: Path, name: str, why: str,
) -> None:
    fetcher = _fetcher(tmp_path, allow_networks=["127.0.0.1/32"], max_bytes=20_000)
    with pytest.raises(MediaFetchError, match=why):
        await fetcher.fetch(server + name)
    assert not list((tmp_path / "cache").glob("*"))


async def test_gzip_body_is_capped_after_inflating(server: str, tmp_path: Path) -> None:
    fetcher = _fetcher(tmp_path, allow_networks=["127.0.0.1/32"], max_bytes=1024 * 1024)
    with pytest.raises(MediaFetchError, match="larger than"):
        await fetcher.fetch(server + "/bomb.wav")
    assert not list((tmp_path / "cache").glob("*"))


async def test_a_dripping_server_is_cut_at_the_time_limit(server: str, tmp_path: Path) -> None:
    fetcher = _fetcher(tmp_path, allow_networks=["127.0.0.1/32"], timeout_s=1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(MediaFetchError, match="Timeout"):
        await fetcher.fetch(server + "/drip.wav")
    assert loop.time() - start < 9             # cut well before the drip's 10 s end
    assert not list((tmp_path / "cache").glob("*"))
