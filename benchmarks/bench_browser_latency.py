"""How long a browser's voice takes to reach the room's mix: send to mix, on loopback.

Two aiortc peers in one process: one plays the browser (aiortc's own Opus encoder and sender,
DTLS-SRTP), the other is the bridge's ``BrowserPeer`` whose port sits in a 48 kHz ``Room`` ticked
every 20 ms. The browser sends tone bursts (200 ms on, 200 ms off); for each burst onset the
latency is the time the onset sample leaves the room (tick time + its offset in the frame) minus
the time the browser's track handed that frame to aiortc. It includes Opus's own delay (6.5 ms of
lookahead), the tick phase, and whatever buffering the path adds (the jitter buffer).

Run: python benchmarks/bench_browser_latency.py [bursts]   (default 20; about 8 s per 20)
"""

from __future__ import annotations

import asyncio
import fractions
import statistics
import sys
from pathlib import Path
from typing import Any

import aioice.ice
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bridge.adapters.webrtc import BrowserPeer
from bridge.config import WebrtcConfig
from bridge.media.room import Room
from bridge.rtp.jitter import Empty

RATE = 48000
FRAME = 960
ON, OFF = 10, 10          # frames of tone, of silence, per burst
_BE = np.dtype(">i2")


class BurstTrack(MediaStreamTrack):
    """Tone bursts at 20 ms deadlines; ``onsets`` keeps the loop time each burst's first frame
    was handed over."""

    kind = "audio"

    def __init__(self, bursts: int) -> None:
        super().__init__()
        self.frames = bursts * (ON + OFF) + OFF
        self.n = 0
        self.start: float | None = None
        self.onsets: list[float] = []

    async def recv(self) -> av.AudioFrame:
        if self.n >= self.frames:
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        await asyncio.sleep(max(0.0, self.start + self.n * 0.02 - loop.time()))
        i, self.n = self.n, self.n + 1
        phase = (i - OFF) % (ON + OFF) if i >= OFF else ON
        level = 8000.0 if phase < ON else 0.0
        if phase == 0:
            self.onsets.append(loop.time())
        t = (np.arange(FRAME) + i * FRAME) / RATE
        pcm = (level * np.sin(2 * np.pi * 440.0 * t)).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, i * FRAME, fractions.Fraction(1, RATE)
        return frame


class Ear:
    """The room's output for a silent listener, with the tick time of each frame."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, bytes]] = []
        self.now = 0.0

    def pop_frame(self) -> Any:
        return Empty()

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        self.frames.append((self.now, payload))
        return b""


def onsets_heard(ear: Ear) -> list[float]:
    """Times the heard sound rises out of silence (a 20 ms silent stretch before it)."""
    pcm = np.concatenate([np.frombuffer(p, _BE).astype(np.float64) for _, p in ear.frames])
    loud = np.abs(pcm) > 2000
    out, quiet = [], 0
    for k in np.flatnonzero(np.diff(loud.astype(np.int8)) == 1) + 1:
        if k - quiet >= FRAME and not loud[max(0, k - FRAME):k].any():
            out.append(ear.frames[k // FRAME][0] + (k % FRAME) / RATE)
        quiet = k
    return out


async def measure(bursts: int) -> list[float]:
    # Both peers on 127.0.0.1 (aioice leaves loopback out of its host candidates by default).
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    peer = BrowserPeer(WebrtcConfig(), {}, lambda: None)
    browser = RTCPeerConnection()
    track = BurstTrack(bursts)
    browser.addTrack(track)
    await browser.setLocalDescription(await browser.createOffer())
    answer = await peer.answer(browser.localDescription.sdp)
    await browser.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    room, ear = Room("r", RATE), Ear()
    room.add_leg("web", peer.port, "opus", "opus", payload_type=111)
    room.add_leg("ear", ear, "L16/48000", "L16/48000", payload_type=96)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        for i in range(track.frames + 100):
            ear.now = loop.time()
            room.tick(ear.now)
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))
            if track.n >= track.frames and i > track.frames + 50:
                break
    finally:
        await browser.close()
        await peer.close()
    heard = onsets_heard(ear)
    sent = track.onsets
    # Pair each sent onset with the first heard onset after it (within 400 ms).
    lat = []
    for s in sent:
        after = [h - s for h in heard if 0 <= h - s < 0.4]
        if after:
            lat.append(after[0])
    return lat


def main() -> None:
    bursts = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    lat = asyncio.run(measure(bursts))
    ms = sorted(x * 1000 for x in lat)
    print(f"{len(ms)} onsets: send to room output median {statistics.median(ms):.1f} ms, "
          f"min {ms[0]:.1f}, max {ms[-1]:.1f}")


if __name__ == "__main__":
    main()
