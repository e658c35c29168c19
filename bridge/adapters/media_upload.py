"""Media uploads over HTTP: read the body (multipart or raw), sniff the format, store the file.

Only the control plane's metadata lives in SQLite; the bytes go to ``<data_dir>/media/<id><ext>``.
A file is first written under a temporary name, decoded with PyAV to prove it is audio (and to
learn its duration), then renamed into place, so a half-written or undecodable upload is never
visible under a media id. Decoding runs in a worker thread: a 10 MiB MP3 takes seconds.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from ..control.errors import ControlError, bad_request
from ..media.playback import DECODE_MAX_SECONDS, decode_file

MAX_MEDIA_BYTES = 10 * 1024 * 1024
MAX_FIELD_BYTES = 4096  # media_name and other small form fields
DECODE_RATE = 16000
RAW_TYPES = frozenset({
    "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/mpeg", "audio/mp3", "audio/ogg",
    "application/octet-stream",
})
_CHUNK = 64 * 1024

TOO_LARGE = ControlError(413, "payload_too_large", f"media files are limited to {MAX_MEDIA_BYTES // (1024 * 1024)} MiB")


@dataclass(frozen=True)
class Upload:
    data: bytes
    media_name: str | None  # as sent; validated by the service


def sniff(head: bytes) -> tuple[str, str] | None:
    """``(extension, content type)`` from the first bytes, or None for anything but WAV/MP3/Ogg."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav", "audio/wav"
    if head[:4] == b"OggS":
        return ".ogg", "audio/ogg"
    if head[:3] == b"ID3":
        return ".mp3", "audio/mpeg"
    # MPEG audio frame sync: 11 set bits, then a version, and a layer that is not 00 (00 is AAC ADTS).
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 0x3:
        return ".mp3", "audio/mpeg"
    return None


def _check_length(request: web.Request) -> None:
    if request.content_length is not None and request.content_length > MAX_MEDIA_BYTES + MAX_FIELD_BYTES:
        raise TOO_LARGE  # refuse before reading a byte


async def _read_limited(read_chunk: Callable[[int], Awaitable[bytes]], limit: int, error: ControlError) -> bytes:
    out = bytearray()
    while True:
        chunk = await read_chunk(_CHUNK)
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            raise error


async def read_upload(request: web.Request) -> Upload:
    """The uploaded file and ``media_name`` (form field, else ``?media_name=``); 4xx for bad bodies."""
    _check_length(request)
    query_name = request.query.get("media_name")
    if request.content_type == "multipart/form-data":
        return await _read_multipart(request, query_name)
    if request.content_type not in RAW_TYPES:
        raise ControlError(
            415, "unsupported_media_type",
            "send multipart/form-data with a 'file' part, or the file itself as "
            "audio/wav, audio/mpeg, audio/ogg or application/octet-stream",
        )
    data = await _read_limited(request.content.read, MAX_MEDIA_BYTES, TOO_LARGE)
    return Upload(data, query_name)


async def _read_multipart(request: web.Request, query_name: str | None) -> Upload:
    data: bytes | None = None
    name: str | None = None
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise bad_request("invalid_multipart", "nested multipart bodies are not accepted")
            if part.name == "file":
                if data is not None:
                    raise bad_request("invalid_multipart", "upload one file per request")
                data = await _read_limited(part.read_chunk, MAX_MEDIA_BYTES, TOO_LARGE)
            elif part.name == "media_name":
                raw = await _read_limited(
                    part.read_chunk, MAX_FIELD_BYTES,
                    bad_request("invalid_media_name", "media_name is too long"),
                )
                try:
                    name = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise bad_request("invalid_media_name", "media_name must be UTF-8 text") from None
            else:
                raise bad_request("unknown_field", f"unknown form field {part.name!r}; expected file, media_name")
    except ControlError:
        raise
    except Exception as err:  # noqa: BLE001 -- aiohttp's parser raises ValueError/AssertionError/... on broken bodies
        raise bad_request("invalid_multipart", f"malformed multipart body: {str(err)[:200]}") from None
    if data is None:
        raise bad_request("missing_file", "multipart body has no 'file' part")
    if name is not None and query_name is not None:
        raise bad_request("conflicting_fields", "media_name was given both as a form field and in the query")
    return Upload(data, name if name is not None else query_name)


def store_file(media_dir: str, media_id: str, ext: str, data: bytes,
               max_seconds: float = DECODE_MAX_SECONDS) -> float:
    """Blocking (run it in a thread): write, decode to prove it is audio, rename; the duration in s.

    Raises ``ControlError`` 400 ``invalid_media`` when PyAV cannot decode any audio from it.
    """
    os.makedirs(media_dir, exist_ok=True)
    final = os.path.join(media_dir, media_id + ext)
    temp = os.path.join(media_dir, f".{media_id}.upload{ext}")
    try:
        with open(temp, "wb") as f:
            f.write(data)
        try:
            audio = decode_file(temp, DECODE_RATE, max_seconds)
        except Exception as err:  # noqa: BLE001 -- PyAV/FFmpeg errors, ValueError (no audio stream), ...
            raise bad_request("invalid_media", f"the file is not decodable audio: {str(err)[:200]}") from None
        if len(audio.pcm) == 0:
            raise bad_request("invalid_media", "the file contains no audio samples")
        os.replace(temp, final)
        return audio.duration_s
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def remove_file(path: str) -> None:
    """Blocking: delete a stored media file; already gone is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
