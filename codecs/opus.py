"""Opus: the encoder through PyAV (FFmpeg's libopus), the decoder on the system libopus.

PCM is mono at 48 kHz by default (960 samples per 20 ms); the RTP clock is always
48000 and SDP always says opus/48000/2 (RFC 7587). The decoder is opened mono, so
libopus itself downmixes packets from peers that send stereo.

Loss handling. The encoder emits in-band FEC (LBRR: a low-bitrate copy of each frame
inside the next packet) when ``fec`` is on and ``packet_loss`` (the loss it expects, %)
is high enough: at 32 kbit/s libopus adds none at 5 %, hence the default of 10; SDP
says useinbandfec=1 so far ends send it too. FFmpeg's libopus wrapper always calls
opus_decode with decode_fec=0, so the decoder calls the system libopus through ctypes
(codecs/libopus.py): a lost frame whose next packet the jitter buffer already holds is
decoded from that packet's FEC, any other lost frame by libopus's PLC. Without the
system library it falls back to PyAV and PLC only: the lost frame's TOC byte with
frame-count code 0 (one zero-length frame, "lost" in RFC 6716 3.2.1).
"""

from __future__ import annotations

from typing import Any

import av
import numpy as np

from . import libopus
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
        packet_loss: int = 10,
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
    """Opus decoder: the system libopus through ctypes (codecs/libopus.py) when it is there,
    so a lost frame is rebuilt from the next packet's in-band FEC; else PyAV's, PLC only."""

    name = "opus"
    clock_rate = 48000

    def __init__(self, sample_rate: int = 48000, frame_ms: int = 20, native: bool = True) -> None:
        _check(sample_rate, frame_ms)
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * frame_ms // 1000
        lib = libopus.load() if native else None
        self._native = libopus.LibOpusDecoder(lib, sample_rate) if lib is not None else None
        self._ctx: Any = None
        if self._native is None:
            ctx: Any = av.CodecContext.create("libopus", "r")
            ctx.sample_rate = sample_rate
            ctx.layout = "mono"
            ctx.format = "s16"
            ctx.open()
            self._ctx = ctx
        self._last_toc: int | None = None
        self.fec_frames = 0     # lost frames decoded through the next packet's FEC (libopus
        #                         uses its PLC instead when that packet carries none)

    @property
    def fec_capable(self) -> bool:
        return self._native is not None

    def decode(self, payload: bytes) -> Pcm:
        if not payload:
            return self.conceal(self.frame_samples)
        self._last_toc = payload[0]
        if self._native is not None:
            return self._native.decode(payload)
        return self._run(payload)

    def conceal(self, samples: int, next_payload: bytes | None = None) -> Pcm:
        """The lost frame from ``next_payload``'s in-band FEC when libopus is loaded and the next
        packet is here, else libopus's PLC (pitch extrapolation with decay)."""
        if self._last_toc is None:
            return np.zeros(samples, dtype=np.int16)
        if self._native is not None:
            if next_payload:
                pcm = self._native.fec(next_payload, samples)
                self.fec_frames += 1
            else:
                pcm = self._native.plc(samples)
            return _fit(pcm, samples)
        lost = bytes((self._last_toc & 0xFC,))   # same config/stereo bit, code 0, no frame data
        chunks: list[Pcm] = []
        have = 0
        while have < samples:
            pcm = self._run(lost)
            if not len(pcm):
                break
            chunks.append(pcm)
            have += len(pcm)
        # A PLC frame is as long as the last packet's frames; trim to the caller's size.
        return _fit(np.concatenate(chunks) if chunks else np.zeros(0, np.int16), samples)

    def _run(self, payload: bytes) -> Pcm:
        frames = self._ctx.decode(av.Packet(payload))
        if len(frames) == 1:
            return frame_to_mono(frames[0])
        if not frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([frame_to_mono(f) for f in frames])


def _fit(pcm: Pcm, samples: int) -> Pcm:
    if len(pcm) >= samples:
        return pcm[:samples]
    return np.concatenate((pcm, np.zeros(samples - len(pcm), np.int16)))

