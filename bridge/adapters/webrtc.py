"""aiortc side of browser participants: one peer connection each, bridged to a room port.

The room sees a browser as an ordinary ``RtpPort`` carrying L16 at the room's rate
(``bridge/call/browser.py``), so the mixer needs nothing new:

- inbound: a task awaits the remote track without pause (aiortc's track queue is unbounded),
  downmixes and resamples Chromium's 48 kHz stereo with PyAV, cuts 20 ms frames and keeps the
  newest few in a bounded buffer that ``pop_frame`` reads on the media tick. aiortc drops a lost
  packet without a trace but its frames' pts follow the RTP timestamps: a gap in them becomes
  that many ``Missing`` frames, so the room conceals them (L16's concealment, codecs/plc.py)
  instead of hearing nothing from the browser for those 20 ms;
- outbound: ``packetize`` (called by the room at each tick) hands the mix-minus frame to a
  small queue that the outbound track's ``recv`` awaits, so the media clock paces what aiortc
  encodes (Opus) and sends (DTLS-SRTP). A full queue drops its oldest frame.

aiortc runs one decoder thread per receiver and encodes in the default executor: the cost of
a browser participant is measured in README "Joining from a browser".
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import os
import re
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from bridge.config import WebrtcConfig
from bridge.rtp.jitter import Empty, Frame, Missing

log = logging.getLogger("bridge.webrtc")
# aiortc and aioice log every packet at DEBUG: far too much for the bridge's debug log.
for _name in ("aiortc", "aioice"):
    logging.getLogger(_name).setLevel(logging.INFO)

FRAME_MS = 20
IN_FRAMES = 6    # inbound frames kept (120 ms): older ones are dropped, latency stays bounded
OUT_FRAMES = 3   # outbound frames waiting for the encoder
_BE = np.dtype(">i2")
_EMPTY = Empty()


class BrowserPort:
    """The ``RtpPort`` a room reads a browser from and writes its mix-minus into."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.samples = rate * FRAME_MS // 1000
        self.inbound: deque[bytes | None] = deque(maxlen=IN_FRAMES)   # None: a lost frame
        self.outbound: asyncio.Queue[bytes] = asyncio.Queue(OUT_FRAMES)
        self.received = 0       # inbound 20 ms frames
        self.lost = 0           # inbound 20 ms frames the pts said were lost
        self.sent = 0           # outbound frames handed to aiortc
        self._ts = 0

    # RtpPort: called by the room on the media tick
    def pop_frame(self) -> Any:
        inbound = self.inbound
        if not inbound:
            return _EMPTY
        self._ts += self.samples
        pcm = inbound.popleft()
        if pcm is None:
            # The frame after the gap, when already here, lets concealment fade into it.
            return Missing(next((f for f in inbound if f is not None), None))
        return Frame(pcm, self._ts)

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        queue = self.outbound
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(payload)
        return b""

    # fed by the inbound task
    def push_pcm(self, pcm: np.ndarray) -> None:
        self.inbound.append(pcm.astype(_BE).tobytes())
        self.received += 1

    def push_lost(self, frames: int) -> None:
        for _ in range(min(frames, IN_FRAMES)):
            self.inbound.append(None)
        self.lost += frames


def lost_frames(pts: int | None, expected: int | None, frame_samples: int) -> int:
    """Whole 20 ms frames missing between the pts expected next and the one that came (both in
    the track's sample clock): 0 for the first frame, a frame on time or early (reordering is
    aiortc's jitter buffer's job), or a gap under half a frame."""
    if pts is None or expected is None or pts <= expected:
        return 0
    return (pts - expected + frame_samples // 2) // frame_samples


class MixMinusTrack(MediaStreamTrack):
    """What the browser hears: the room's frames for it, paced by the media clock."""

    kind = "audio"

    def __init__(self, port: BrowserPort) -> None:
        super().__init__()
        self.port = port
        self._pts = 0
        self._time_base = fractions.Fraction(1, port.rate)

    async def recv(self) -> av.AudioFrame:
        payload = await self.port.outbound.get()
        pcm = np.frombuffer(payload, dtype=_BE).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.port.rate
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += pcm.shape[0]
        self.port.sent += 1
        return frame


def _ice_servers(cfg: WebrtcConfig) -> list[RTCIceServer]:
    password = os.environ.get(cfg.turn_password_env) if cfg.turn_password_env else None
    return [RTCIceServer(urls=url, username=cfg.turn_username if url.startswith("turn") else None,
                         credential=password if url.startswith("turn") else None)
            for url in cfg.ice_servers]


def page_ice_servers(cfg: WebrtcConfig) -> list[dict[str, str]]:
    """The same servers for the page's RTCPeerConnection (a TURN server's credentials included:
    the browser relays through it too)."""
    return [{k: v for k, v in (("urls", s.urls), ("username", s.username), ("credential", s.credential))
             if isinstance(v, str)} for s in _ice_servers(cfg)]


_HOST_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host.*)$", re.MULTILINE)


def advertise(sdp: str, public_address: str | None) -> str:
    """1:1 NAT: our host candidates show the public address the browser can reach."""
    if not public_address:
        return sdp
    return _HOST_CANDIDATE.sub(lambda m: m.group(1) + public_address + m.group(3), sdp)


class BrowserPeer:
    """One browser's peer connection, its inbound drain task and its port."""

    def __init__(self, cfg: WebrtcConfig, rate: int, on_closed: Callable[[], None]) -> None:
        self.port = BrowserPort(rate)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=_ice_servers(cfg)))
        self.public_address = cfg.public_address
        self._on_closed = on_closed
        self._drain: asyncio.Task[None] | None = None
        self.closed = False

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self._drain is None:
                self._drain = asyncio.get_running_loop().create_task(self._read(track), name="webrtc-in")

        @self.pc.on("connectionstatechange")
        async def on_state() -> None:
            if self.pc.connectionState in ("failed", "closed"):
                self._on_closed()

    async def answer(self, offer_sdp: str) -> str:
        """Non-trickle: the answer carries every candidate (aiortc gathers before returning)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise ValueError("the offer has no audio")
        audio[0].sender.replaceTrack(MixMinusTrack(self.port))
        audio[0].direction = "sendrecv"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return advertise(self.pc.localDescription.sdp, self.public_address)

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            await read_track(track, self.port)
        except MediaStreamError:
            pass                         # the browser went away
        except Exception:
            log.exception("browser audio input failed")
        self._on_closed()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._drain
        await self.pc.close()


async def read_track(track: MediaStreamTrack, port: BrowserPort) -> None:
    """Until the track ends (MediaStreamError): its audio as 20 ms room-rate frames into ``port``,
    and a lost frame (a gap in the pts) as ``port.push_lost``."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=port.rate)
    pending = np.zeros(0, np.int16)
    expected: int | None = None      # the next frame's pts, in the frame's sample clock
    while True:
        frame = await track.recv()
        if not isinstance(frame, av.AudioFrame):
            continue
        gap = lost_frames(frame.pts, expected, frame.sample_rate * FRAME_MS // 1000)
        if gap:
            pending = np.zeros(0, np.int16)      # concealment bridges the cut
            port.push_lost(gap)
        expected = None if frame.pts is None else frame.pts + frame.samples
        for out in resampler.resample(frame):
            pending = np.concatenate((pending, out.to_ndarray().reshape(-1)))
        while pending.shape[0] >= port.samples:
            port.push_pcm(pending[: port.samples])
            pending = pending[port.samples:]
