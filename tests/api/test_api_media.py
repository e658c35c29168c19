"""Media uploads (/v2/media) over real HTTP, and hold music that names uploaded media."""

from __future__ import annotations

import asyncio
import io
import threading
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest

from bridge.adapters import media_upload
from bridge.adapters.media_upload import MAX_MEDIA_BYTES, sniff

from .conftest import TOKEN_A, TOKEN_B, Clock, Env, start_env


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def encoded_bytes(tmp_path: Path, fmt: str, codec: str, rate: int, seconds: float = 1.0) -> bytes:
    """A sine tone encoded with PyAV (``mp3``/libmp3lame or ``ogg``/libopus)."""
    path = tmp_path / f"tone.{fmt}"
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    with av.open(str(path), "w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        step = 1152
        for start in range(0, len(pcm), step):
            frame = av.AudioFrame.from_ndarray(pcm[start:start + step].reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path.read_bytes()


async def upload(env: Env, data: bytes | AsyncIterator[bytes], *, multipart: bool = True,
                 media_name: str | None = None, content_type: str = "audio/wav", token: str = TOKEN_A,
                 query: str = "") -> tuple[int, Any]:
    headers = {"X-Auth-Token": token}
    body: Any
    if multipart:
        form = aiohttp.FormData()
        form.add_field("file", data, filename="hold.bin", content_type="application/octet-stream")
        if media_name is not None:
            form.add_field("media_name", media_name)
        body = form
    else:
        body = data
        headers["Content-Type"] = content_type
        if media_name is not None:
            query = f"?media_name={media_name}"
    async with env.http.post(env.base + "/v2/media" + query, data=body, headers=headers) as r:
        assert r.content_type == "application/json", (r.status, await r.text())
        return r.status, await r.json()


def media_files(env: Env) -> list[str]:
    media_dir = Path(env.config.data_dir) / "media"
    return sorted(p.name for p in media_dir.iterdir()) if media_dir.exists() else []


async def test_upload_wav_multipart_then_get_list_and_delete(env: Env) -> None:
    data = wav_bytes(1.0)
    status, body = await upload(env, data, media_name="lobby tune")
    assert status == 201, body
    assert body["id"].startswith("media_") and len(body["id"]) == len("media_") + 16
    int(body["id"][6:], 16)
    assert body["media_name"] == "lobby tune"
    assert body["content_type"] == "audio/wav"
    assert body["size"] == len(data)
    assert body["duration_s"] == pytest.approx(1.0, abs=0.01)
    assert body["created_at"] == "2030-01-01T12:00:00Z"
    stored = Path(env.config.data_dir) / "media" / f"{body['id']}.wav"
    assert stored.read_bytes() == data
    assert media_files(env) == [stored.name]  # no temporary file left behind

    assert await env.call("GET", f"/v2/media/{body['id']}") == (200, body)
    assert await env.call("GET", "/v2/media/lobby tune") == (200, body)  # Telnyx addresses media by name
    assert await env.call("GET", "/v2/media") == (200, {"data": [body], "total": 1})
    assert env.service.media_path("acct_a", body["id"]) == str(stored)
    assert env.service.media_path("acct_a", "lobby tune") == str(stored)

    assert await env.call("DELETE", f"/v2/media/{body['id']}") == (204, None)
    assert not stored.exists()
    status, err = await env.call("GET", f"/v2/media/{body['id']}")
    assert status == 404 and err["error"] == "not_found"
    assert (await env.call("DELETE", f"/v2/media/{body['id']}"))[0] == 404
    assert await env.call("GET", "/v2/media") == (200, {"data": [], "total": 0})
    assert env.service.media_path("acct_a", body["id"]) is None


async def test_raw_uploads_wav_mp3_and_ogg(env: Env, tmp_path: Path) -> None:
    status, wav = await upload(env, wav_bytes(0.5, 16000), multipart=False, content_type="audio/x-wav",
                               media_name="raw")
    assert status == 201 and wav["media_name"] == "raw" and wav["duration_s"] == pytest.approx(0.5, abs=0.01)

    mp3 = encoded_bytes(tmp_path, "mp3", "libmp3lame", 16000)
    assert sniff(mp3[:16]) == (".mp3", "audio/mpeg")
    status, body = await upload(env, mp3, multipart=False, content_type="audio/mpeg")
    assert status == 201, body
    assert body["content_type"] == "audio/mpeg" and body["media_name"] is None and body["size"] == len(mp3)
    assert body["duration_s"] == pytest.approx(1.0, abs=0.15)  # the encoder pads a little
    assert f"{body['id']}.mp3" in media_files(env)

    ogg = encoded_bytes(tmp_path, "ogg", "libopus", 48000)
    status, body = await upload(env, ogg, multipart=True)
    assert status == 201, body
    assert body["content_type"] == "audio/ogg" and body["duration_s"] == pytest.approx(1.0, abs=0.1)
    assert f"{body['id']}.ogg" in media_files(env)

    status, body = await upload(env, wav_bytes(0.2), multipart=False, content_type="application/octet-stream")
    assert status == 201 and body["content_type"] == "audio/wav"  # the content decides, not the header
    assert (await env.call("GET", "/v2/media"))[1]["total"] == 4


@pytest.mark.parametrize("junk", [
    b"", b"hello, this is not audio", b"RIFF\x10\x00\x00\x00WAVEfmt garbage after a WAV header",
    b"OggS" + bytes(200), b"ID3" + bytes(300), bytes(range(256)) * 8,
])
@pytest.mark.parametrize("multipart", [True, False])
async def test_junk_is_refused_as_invalid_media(env: Env, junk: bytes, multipart: bool) -> None:
    status, body = await upload(env, junk, multipart=multipart)
    assert (status, body["error"]) == (400, "invalid_media"), body
    assert media_files(env) == []
    assert await env.call("GET", "/v2/media") == (200, {"data": [], "total": 0})


async def test_too_big_is_413(env: Env) -> None:
    big = b"RIFF\x00\x00\x00\x00WAVE" + bytes(MAX_MEDIA_BYTES)
    for multipart in (False, True):
        status, body = await upload(env, big, multipart=multipart)
        assert (status, body["error"]) == (413, "payload_too_large")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        yield big[:12]
        for _ in range(MAX_MEDIA_BYTES // 65536 + 2):
            yield bytes(65536)

    status, body = await upload(env, chunked(), multipart=False)
    assert (status, body["error"]) == (413, "payload_too_large")
    assert media_files(env) == []


async def test_bad_requests(env: Env) -> None:
    status, body = await upload(env, wav_bytes(0.1), multipart=False, content_type="text/plain")
    assert (status, body["error"]) == (415, "unsupported_media_type")
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("media_name", "only a name")
    async with env.http.post(env.base + "/v2/media", data=form, headers={"X-Auth-Token": TOKEN_A}) as r:
        assert r.status == 400 and (await r.json())["error"] == "missing_file"
    headers = {"X-Auth-Token": TOKEN_A, "Content-Type": "multipart/form-data; boundary=xyz"}
    async with env.http.post(env.base + "/v2/media", data=b"--nope\r\n", headers=headers) as r:
        assert r.status == 400 and (await r.json())["error"] in ("invalid_multipart", "missing_file")
    status, body = await upload(env, wav_bytes(0.1), media_name="media_0123456789abcdef")
    assert (status, body["error"]) == (400, "invalid_media_name")
    status, body = await upload(env, wav_bytes(0.1), media_name="   ")
    assert (status, body["error"]) == (400, "invalid_media_name")
    async with env.http.post(env.base + "/v2/media", data=wav_bytes(0.1)) as r:
        assert r.status == 401
    assert media_files(env) == []


async def test_duplicate_media_name_is_409_per_account(env: Env) -> None:
    assert (await upload(env, wav_bytes(0.1), media_name="hold"))[0] == 201
    status, body = await upload(env, wav_bytes(0.1), media_name="hold")
    assert (status, body["error"]) == (409, "media_name_taken")
    status, body = await upload(env, wav_bytes(0.1), multipart=False, media_name="hold")
    assert (status, body["error"]) == (409, "media_name_taken")
    assert len(media_files(env)) == 1
    assert (await upload(env, wav_bytes(0.1), media_name="hold", token=TOKEN_B))[0] == 201


async def test_other_accounts_media_is_404(env: Env) -> None:
    _, mine = await upload(env, wav_bytes(0.1), media_name="a-only")
    for ref in (mine["id"], "a-only"):
        status, body = await env.call("GET", f"/v2/media/{ref}", token=TOKEN_B)
        assert (status, body["error"]) == (404, "not_found")
        assert (await env.call("DELETE", f"/v2/media/{ref}", token=TOKEN_B))[0] == 404
    assert await env.call("GET", "/v2/media", token=TOKEN_B) == (200, {"data": [], "total": 0})
    status, body = await env.call("POST", "/v2/conferences", token=TOKEN_B,
                                  json={"name": "b", "hold_music_id": mine["id"]})
    assert (status, body["error"]) == (400, "invalid_hold_music_id")
    assert (await env.call("GET", f"/v2/media/{mine['id']}"))[0] == 200  # still there for its owner


async def test_conference_hold_music_names_uploaded_media(env: Env) -> None:
    _, first = await upload(env, wav_bytes(0.3), media_name="jazz")
    _, second = await upload(env, wav_bytes(0.3))
    path = env.service.media_path("acct_a", first["id"])
    assert path is not None and Path(path).is_file()

    status, conf = await env.call("POST", "/v2/conferences", json={"name": "on hold", "hold_music_id": first["id"]})
    assert status == 201 and conf["hold_music_id"] == first["id"]
    assert (await env.call("GET", f"/v2/conferences/{conf['id']}"))[1]["hold_music_id"] == first["id"]
    model = env.service.get(conf["id"])
    assert model is not None and model.hold_music_path == path

    # Telnyx: hold_media_name may name the media by its media_name (or its id).
    status, tel = await env.call("POST", "/v2/conferences", json={"name": "telnyx", "hold_media_name": "jazz"})
    assert status == 201 and tel["hold_music_id"] == "jazz"
    assert env.service.get(tel["id"]).hold_music_path == path  # type: ignore[union-attr]

    status, body = await env.call("POST", "/v2/conferences", json={"name": "x", "hold_music_id": "media_ffffffffffffffff"})
    assert (status, body) == (400, {"error": "invalid_hold_music_id", "message": "no such media: media_ffffffffffffffff"})
    status, body = await env.call("POST", "/v2/conferences", json={"name": "x", "hold_media_name": "nope"})
    assert (status, body["error"]) == (400, "invalid_hold_music_id")

    # Updates: another media, an unknown one (refused, nothing changes), then none.
    status, patched = await env.call("PATCH", f"/v2/conferences/{conf['id']}", json={"hold_music_id": second["id"]})
    assert status == 200 and patched["hold_music_id"] == second["id"]
    assert env.service.get(conf["id"]).hold_music_path == env.service.media_path("acct_a", second["id"])  # type: ignore[union-attr]
    status, body = await env.call("PATCH", f"/v2/conferences/{conf['id']}", json={"hold_music_id": "missing"})
    assert (status, body["error"]) == (400, "invalid_hold_music_id")
    assert env.service.get(conf["id"]).hold_music_id == second["id"]  # type: ignore[union-attr]
    status, patched = await env.call("PATCH", f"/v2/conferences/{conf['id']}", json={"hold_music_id": None})
    assert status == 200 and patched["hold_music_id"] is None
    assert env.service.get(conf["id"]).hold_music_path is None  # type: ignore[union-attr]
    status, patched = await env.call("PATCH", f"/v2/conferences/{conf['id']}", json={"name": "renamed"})
    assert env.service.get(tel["id"]).hold_music_path == path  # type: ignore[union-attr]

    # Account-scoped form.
    status, acct = await env.call("PUT", "/v2/accounts/acct_a/conferences",
                                  json={"data": {"name": "k", "hold_music_id": second["id"]}})
    assert status == 201 and acct["data"]["hold_music_id"] == second["id"]
    status, body = await env.call("PUT", "/v2/accounts/acct_a/conferences",
                                  json={"data": {"name": "k", "hold_music_id": "unknown"}})
    assert (status, body["error"]) == (400, "invalid_hold_music_id")

    # Media still played by an open conference cannot be deleted; once it ended, it can.
    status, body = await env.call("DELETE", "/v2/media/jazz")
    assert (status, body["error"]) == (409, "media_in_use")
    await env.call("DELETE", f"/v2/conferences/{tel['id']}")
    assert await env.call("DELETE", "/v2/media/jazz") == (204, None)
    assert not Path(path).exists()


async def test_media_and_hold_music_survive_restart(tmp_path: Path) -> None:
    clock = Clock()
    first = await start_env(tmp_path, clock)
    try:
        _, media = await upload(first, wav_bytes(0.25), media_name="persisted")
        _, other = await upload(first, wav_bytes(0.25), token=TOKEN_B)
        _, conf = await first.call("POST", "/v2/conferences", json={"name": "c", "hold_media_name": "persisted"})
        path = first.service.media_path("acct_a", media["id"])
    finally:
        await first.stop()

    second = await start_env(tmp_path, clock)
    try:
        assert await second.call("GET", "/v2/media") == (200, {"data": [media], "total": 1})
        assert await second.call("GET", "/v2/media/persisted") == (200, media)
        assert await second.call("GET", f"/v2/media/{other['id']}", token=TOKEN_B) == (200, other)
        assert second.service.media_path("acct_a", media["id"]) == path
        restored = second.service.get(conf["id"])
        assert restored is not None and restored.hold_music_path == path and restored.hold_music_id == "persisted"
        assert (await upload(second, wav_bytes(0.1), media_name="persisted"))[0] == 409
        status, again = await second.call("POST", "/v2/conferences", json={"name": "d", "hold_music_id": media["id"]})
        assert status == 201
        await second.call("DELETE", f"/v2/conferences/{conf['id']}")
        await second.call("DELETE", f"/v2/conferences/{again['id']}")
        assert (await second.call("DELETE", f"/v2/media/{media['id']}"))[0] == 204
    finally:
        await second.stop()

    third = await start_env(tmp_path, clock)
    try:
        assert await third.call("GET", "/v2/media") == (200, {"data": [], "total": 0})
        assert await third.call("GET", "/v2/media", token=TOKEN_B) == (200, {"data": [other], "total": 1})
    finally:
        await third.stop()


@pytest.mark.parametrize(("head", "expected"), [
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", (".wav", "audio/wav")),
    (b"RIFF\x24\x00\x00\x00AVI LIST", None),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", (".mp3", "audio/mpeg")),
    (b"\xff\xfb\x90\x64\x00", (".mp3", "audio/mpeg")),  # MPEG-1 layer III frame header
    (b"\xff\xf1\x50\x80\x00", None),  # AAC ADTS: same sync bits, layer 00
    (b"OggS\x00\x02", (".ogg", "audio/ogg")),
    (b"fLaC\x00\x00", None),
    (b"", None),
])
def test_sniff(head: bytes, expected: tuple[str, str] | None) -> None:
    assert sniff(head) == expected


async def test_decoding_runs_off_the_event_loop_and_a_name_race_keeps_one_file(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = media_upload.decode_file
    threads: list[threading.Thread] = []
    both_decoding = threading.Barrier(2, timeout=10)

    def decode(path: str, rate: int, max_seconds: float) -> Any:
        threads.append(threading.current_thread())
        both_decoding.wait()  # both uploads passed the name check before either is recorded
        return real(path, rate, max_seconds)

    monkeypatch.setattr(media_upload, "decode_file", decode)
    results = await asyncio.gather(*(upload(env, wav_bytes(0.1), media_name="race") for _ in range(2)))
    assert sorted(status for status, _ in results) == [201, 409]
    assert all(t is not threading.main_thread() for t in threads) and len(threads) == 2
    winner = next(body for status, body in results if status == 201)
    assert media_files(env) == [f"{winner['id']}.wav"]  # the loser's file was removed
