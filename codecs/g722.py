"""G.722 through PyAV/FFmpeg: 16 kHz PCM, RTP clock 8000 (RFC 3551's historical quirk).

20 ms = 320 samples = 160 bytes. FFmpeg's encoder works on fixed 320-sample
frames, so longer ptimes (40/60 ms) are encoded as consecutive 20 ms chunks,
which is the same bitstream (G.722 is sample-by-sample ADPCM).
"""

from __future__ import annotations

import av
import numpy as np

from .base import Pcm
from .plc import Concealer
from .pyav_frames import FrameFeeder, frame_to_mono

_CHUNK = 320   # FFmpeg g722 encoder frame size, 20 ms at 16 kHz


class G722Encoder:
    name = "G722"
    sample_rate = 16000
    clock_rate = 8000
    stateful = True     # ADPCM predictor state: a shared encode must keep one listener group

    def __init__(self, frame_ms: int = 20) -> None:
        if frame_ms <= 0 or frame_ms % 20:
            raise ValueError("G.722 through FFmpeg supports frame_ms multiples of 20")
        self.frame_samples = self.sample_rate * frame_ms // 1000
        ctx = av.CodecContext.create("g722", "w")
        ctx.sample_rate = self.sample_rate
        ctx.format = "s16"
        ctx.layout = "mono"
        ctx.open()
        self._ctx = ctx
        self._feeder = FrameFeeder(_CHUNK, self.sample_rate)

    def encode(self, pcm: Pcm) -> bytes:
        if len(pcm) != self.frame_samples:
            raise ValueError(f"expected {self.frame_samples} samples, got {len(pcm)}")
        out = []
        for start in range(0, self.frame_samples, _CHUNK):
            packets = self._ctx.encode(self._feeder.load(pcm[start:start + _CHUNK]))
            if len(packets) != 1:   # FFmpeg g722 has no delay: one packet per frame
                raise RuntimeError(f"g722 encoder returned {len(packets)} packets for one frame")
            out.append(bytes(packets[0]))
        return b"".join(out)


class G722Decoder:
    """G.722 decoder; FFmpeg has no G.722 PLC, so losses use pitch repetition."""

    name = "G722"
    sample_rate = 16000
    clock_rate = 8000

    def __init__(self, frame_ms: int = 20) -> None:
        self.frame_samples = self.sample_rate * frame_ms // 1000
        ctx = av.CodecContext.create("g722", "r")
        ctx.sample_rate = self.sample_rate
        ctx.layout = "mono"
        ctx.open()
        self._ctx = ctx
        self._plc = Concealer(self.sample_rate)

    def decode(self, payload: bytes) -> Pcm:
        frames = self._ctx.decode(av.Packet(payload))
        if len(frames) == 1:
            pcm = frame_to_mono(frames[0])
        else:
            pcm = np.concatenate([frame_to_mono(f) for f in frames]) if frames else np.zeros(0, np.int16)
        return self._plc.good(pcm)

    def conceal(self, samples: int, next_payload: bytes | None = None) -> Pcm:
        return self._plc.conceal(samples)
