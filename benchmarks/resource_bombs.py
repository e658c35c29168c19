"""Media bomb and huge-URL fetch, measured (README "Security", attack table).

- **media bomb**: a ~10 MB Ogg Opus file of silence that holds many hours (every packet the same
  60 ms silent frame, as libopus encodes it at 6 kb/s; the pages are written here, so making it
  takes a second). Each decode runs in a fresh process (``decode_file`` at the upload rate,
  16 kHz) and reports its own peak RSS: with ``media.decode_max_seconds`` (900 s) and without
  (``--no-cap`` turns the cap off: what happened before it existed).
- **huge URL**: a loopback server streams an endless body (no Content-Length) or declares a
  300 MB one; ``MediaFetcher`` with ``media_fetch.max_bytes`` at its default (20 MB) and at its
  ceiling (500 MB, the nearest to "no cap") fetches it; the table shows the bytes the server got
  to send (its socket buffers included) before the fetch was refused, and the fetcher's peak RSS.

    python benchmarks/resource_bombs.py [--megabytes 10] [--skip-uncapped]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CRC_TABLE = []
for _i in range(256):
    _r = _i << 24
    for _ in range(8):
        _r = ((_r << 1) ^ 0x04C11DB7) if _r & 0x80000000 else (_r << 1)
    CRC_TABLE.append(_r & 0xFFFFFFFF)


def ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ CRC_TABLE[((crc >> 24) & 0xFF) ^ byte]
    return crc


def ogg_page(packets: list[bytes], granule: int, serial: int, seq: int, flags: int) -> bytes:
    lacing = bytearray()
    for p in packets:
        lacing += b"\xff" * (len(p) // 255) + bytes([len(p) % 255])
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, seq, 0, len(lacing)) + bytes(lacing)
    page = header + b"".join(packets)
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def read_pages(data: bytes) -> list[tuple[bytes, list[bytes]]]:
    """(raw page, whole packets ending in it) for each page of a simple Ogg file."""
    pages, pos, partial = [], 0, b""
    while pos < len(data):
        nseg = data[pos + 26]
        lacing = data[pos + 27: pos + 27 + nseg]
        body = pos + 27 + nseg
        packets = []
        for lace in lacing:
            partial += data[body: body + lace]
            body += lace
            if lace < 255:
                packets.append(partial)
                partial = b""
        pages.append((data[pos:body], packets))
        pos = body
    return pages


def make_bomb(path: Path, megabytes: float) -> float:
    """Write the Ogg Opus bomb; returns the seconds of audio it holds."""
    import av
    import numpy as np

    probe = path.with_suffix(".probe.ogg")
    with av.open(str(probe), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48000)
        stream.bit_rate = 6000
        stream.layout = "mono"
        stream.options = {"frame_duration": "60"}
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 48000 * 2), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for pkt in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(pkt)
    pages = read_pages(probe.read_bytes())
    probe.unlink()
    serial = struct.unpack("<I", pages[0][0][14:18])[0]
    silent = collections.Counter(p for _, ps in pages[2:] for p in ps).most_common(1)[0][0]
    per_page, samples = 255, 2880          # packets a page; 60 ms at 48 kHz
    page_bytes = 27 + per_page + per_page * len(silent)
    n_pages = int(megabytes * 1024 * 1024 // page_bytes)
    with path.open("wb") as f:
        f.write(pages[0][0] + pages[1][0])     # OpusHead, OpusTags as libopus wrote them
        for i in range(n_pages):
            granule = (i + 1) * per_page * samples
            f.write(ogg_page([silent] * per_page, granule, serial, 2 + i, 4 if i == n_pages - 1 else 0))
    return n_pages * per_page * samples / 48000


DECODE_CHILD = """
import json, resource, sys, time
from bridge.media.playback import decode_file
start = time.monotonic()
try:
    audio = decode_file(sys.argv[1], 16000, float(sys.argv[2]))
    outcome = f"decoded {len(audio.pcm) / 16000:.0f} s"
except ValueError:
    outcome = "refused"
print(json.dumps({"outcome": outcome, "seconds": round(time.monotonic() - start, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def decode_in_child(path: Path, max_seconds: float) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", DECODE_CHILD, str(path), str(max_seconds)],
                         capture_output=True, text=True, check=True, timeout=1800)
    return dict(json.loads(out.stdout))


FETCH_CHILD = """
import asyncio, json, resource, sys, tempfile
from pathlib import Path
from bridge.adapters.media_fetch import MediaFetcher, MediaFetchError
from bridge.config import MediaFetchConfig

async def main():
    cfg = MediaFetchConfig(max_bytes=int(sys.argv[2]), timeout_s=120, allow_networks=["127.0.0.1/32"])
    with tempfile.TemporaryDirectory() as tmp:
        fetcher = MediaFetcher(cfg, Path(tmp), lambda p: None)
        try:
            await fetcher.fetch(sys.argv[1])
            outcome = "fetched"
        except MediaFetchError:
            outcome = "refused"
    print(json.dumps({"outcome": outcome,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
asyncio.run(main())
"""


async def fetch_row(declared: bool, max_bytes: int) -> dict[str, object]:
    from aiohttp import web

    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        headers = {"Content-Type": "audio/ogg"}
        if declared:
            headers["Content-Length"] = str(300 * 1024 * 1024)
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        chunk = b"\0" * 65536
        try:
            for _ in range(300 * 16):           # at most 300 MB
                await resp.write(chunk)
                sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    app = web.Application()
    app.router.add_get("/huge.ogg", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site.port}/huge.ogg"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", FETCH_CHILD, url, str(max_bytes),
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    await asyncio.sleep(0.2)
    await runner.cleanup()
    row = json.loads(out)
    return {"body": "300 MB declared" if declared else "endless, undeclared",
            "max_bytes_mb": max_bytes // (1024 * 1024), **row, "server_sent_mb": round(sent / 1048576, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=10.0)
    parser.add_argument("--skip-uncapped", action="store_true", help="do not run the uncapped decode")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    with tempfile.TemporaryDirectory() as tmp:
        bomb = Path(tmp) / "bomb.ogg"
        held = make_bomb(bomb, args.megabytes)
        size = bomb.stat().st_size / 1048576
        print(f"media bomb: {bomb.name} {size:.1f} MB holding {held / 3600:.1f} h of audio")
        print("decode_max_seconds | outcome | seconds | peak_rss_mb")
        caps = [900.0] + ([] if args.skip_uncapped else [1e9])
        for cap in caps:
            row = decode_in_child(bomb, cap)
            print(f"{'off' if cap >= 1e9 else f'{cap:g}'} | {row['outcome']} | {row['seconds']} | {row['peak_rss_mb']}")
    print()
    print("huge URL body | media_fetch.max_bytes (MB) | outcome | fetcher peak_rss_mb | server sent (MB)")
    for declared in (False, True):
        for max_bytes in (20 * 1024 * 1024, 500 * 1024 * 1024):
            if declared and max_bytes > 300 * 1024 * 1024:
                continue
            row = asyncio.run(fetch_row(declared, max_bytes))
            print(f"{row['body']} | {row['max_bytes_mb']} | {row['outcome']} | {row['peak_rss_mb']} | "
                  f"{row['server_sent_mb']}")


if __name__ == "__main__":
    main()
