"""Opus through PyAV: the ``libopus`` encoder and decoder.

PCM is mono at 48 kHz by default (960 samples per 20 ms); the RTP clock is always
48000 and SDP always says opus/48000/2 (RFC 7587). The decoder is opened mono, so
libopus itself downmixes packets from peers that send stereo.

Loss handling, plainly: FFmpeg's libopus wrapper always calls opus_decode with
decode_fec=0 and exposes no option to change that, so in-band FEC carried by the
*next* packet cannot be decoded through PyAV and ``next_payload`` is ignored.
Our encoder still emits FEC (LBRR) when enabled, which benefits peers with a
native libopus. For a lost frame we feed the decoder a one-byte packet: the lost
frame's TOC byte with frame-count code 0, i.e. one zero-length frame, which
RFC 6716 section 3.2.1 defines as "lost"; libopus then runs its own PLC
(pitch-based extrapolation with decay) and keeps its state continuous.
"""

from __future__ import annotations

from typing import Any

import av
import numpy as np

from .base import Pcm
from .pyav_frames import FrameFeeder, frame_to_mono

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
OPUS_FRAME_MS = (10, 20, 40, 60)


def _check(sample_rate: int, frame_ms: int) -> None:
    if sample_rate not in OPUS_RATES:
        raise ValueError(f"Opus sample rate {sample_rate} not in {OPUS_RATES}")
    if frame_ms not in OPUS_FRAME_MS:
        raise ValueError(f"Opus frame_ms {frame_ms} not in {OPUS_FRAME_MS}")


class OpusEncoder:
    name = "opus"
    clock_rate = 48000
    stateful = True

    def __init__(
        self,
        sample_rate: int = 48000,
        frame_ms: int = 20,
        bitrate: int = 32000,
        complexity: int = 5,
        fec: bool = True,
        packet_loss: int = 5,
        application: str = "voip",
        dtx: bool = False,
    ) -> None:
        _check(sample_rate, frame_ms)
        if not 0 <= complexity <= 10:
            raise ValueError("complexity must be 0..10")
        if not 0 <= packet_loss <= 100:
            raise ValueError("packet_loss must be 0..100 (%)")
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * frame_ms // 1000
        ctx: Any = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = sample_rate
        ctx.format = "s16"
        ctx.layout = "mono"
        ctx.bit_rate = bitrate
        options = {
            "application": application,
            "frame_duration": str(frame_ms),
            "compression_level": str(complexity),   # FFmpeg maps it to OPUS_SET_COMPLEXITY
            # libopus only adds LBRR when it also expects loss, hence both together.
            "fec": "1" if fec else "0",
            "packet_loss": str(packet_loss),
        }
        if dtx:
            options["dtx"] = "1"
        ctx.options = options
        ctx.open()
        self._ctx = ctx
        self._feeder = FrameFeeder(self.frame_samples, sample_rate)

    def encode(self, pcm: Pcm) -> bytes:
        # libopus encodes each full frame at once (its 6.5 ms lookahead is internal and
        # only shows as a negative first pts), so exactly one packet comes back.
        packets = self._ctx.encode(self._feeder.load(pcm))
        if len(packets) != 1:
            raise RuntimeError(f"libopus returned {len(packets)} packets for one frame")
        return bytes(packets[0])


class OpusDecoder:
    name = "opus"
    clock_rate = 48000

    def __init__(self, sample_rate: int = 48000, frame_ms: int = 20) -> None:
        _check(sample_rate, frame_ms)
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * frame_ms // 1000
        ctx: Any = av.CodecContext.create("libopus", "r")
        ctx.sample_rate = sample_rate
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.open()
        self._ctx = ctx
        self._last_toc: int | None = None

    def decode(self, payload: bytes) -> Pcm:
        if not payload:
            return self.conceal(self.frame_samples)
        self._last_toc = payload[0]
        return self._run(payload)

    def conceal(self, samples: int, next_payload: bytes | None = None) -> Pcm:
        """libopus PLC for ``samples``; ``next_payload`` (FEC) is unusable via PyAV, see module doc."""
        if self._last_toc is None:
            return np.zeros(samples, dtype=np.int16)
        lost = bytes((self._last_toc & 0xFC,))   # same config/stereo bit, code 0, no frame data
        chunks: list[Pcm] = []
        have = 0
        while have < samples:
            pcm = self._run(lost)
            if not len(pcm):
                break
            chunks.append(pcm)
            have += len(pcm)
        if have < samples:
            chunks.append(np.zeros(samples - have, dtype=np.int16))
        # A PLC frame is as long as the last packet's frames; trim to the caller's size.
        return np.concatenate(chunks)[:samples] if len(chunks) > 1 else chunks[0][:samples]

    def _run(self, payload: bytes) -> Pcm:
        frames = self._ctx.decode(av.Packet(payload))
        if len(frames) == 1:
            return frame_to_mono(frames[0])
        if not frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([frame_to_mono(f) for f in frames])
