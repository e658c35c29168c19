"""Small helpers shared by the PyAV-backed codecs (G.722, Opus)."""

from __future__ import annotations

from typing import Any

import av
import numpy as np

from .base import Pcm


class FrameFeeder:
    """One reusable mono s16 AudioFrame per encoder, with a running pts.

    Reusing the frame avoids an AudioFrame allocation per 20 ms. ``make_writable``
    copies the buffer only if the encoder still holds a reference to the previous
    frame's data, so reuse is safe for any encoder.
    """

    def __init__(self, samples: int, sample_rate: int) -> None:
        self.samples = samples
        self.frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        self.frame.sample_rate = sample_rate
        self._pts = 0

    def load(self, pcm: Pcm) -> av.AudioFrame:
        if len(pcm) != self.samples:
            raise ValueError(f"expected {self.samples} samples, got {len(pcm)}")
        frame = self.frame
        frame.make_writable()
        np.frombuffer(memoryview(frame.planes[0]), dtype=np.int16, count=self.samples)[:] = pcm
        frame.pts = self._pts
        self._pts += self.samples
        return frame


def frame_to_mono(frame: Any) -> Pcm:
    """Decoded AudioFrame (any channel count, s16/flt, packed or planar) -> mono int16."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T      # packed: interleaved in one row
    if data.dtype == np.int16 and channels == 1:
        return np.array(data[0], dtype=np.int16)  # copy: the frame buffer is reused by FFmpeg
    mono = data.mean(axis=0, dtype=np.float64) if channels > 1 else data[0].astype(np.float64)
    if data.dtype.kind == "f":
        mono = mono * 32768.0
    return np.clip(np.rint(mono), -32768, 32767).astype(np.int16)
