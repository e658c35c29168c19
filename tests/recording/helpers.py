"""Shared helpers: decode recordings with PyAV, look for tones per window."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]


def decode_streams(path: Path) -> tuple[list[F], int, list[str]]:
    """Every audio stream of ``path`` as float mono samples, the decode rate, the stream titles."""
    with av.open(str(path)) as c:
        titles = [s.metadata.get("title", "") for s in c.streams.audio]
        chunks: list[list[F]] = [[] for _ in c.streams.audio]
        rate = 0
        for packet in c.demux(*c.streams.audio):
            for frame in packet.decode():
                arr = frame.to_ndarray().astype(np.float64)
                if arr.ndim == 2 and arr.shape[0] > 1 and not frame.format.is_planar:
                    arr = arr.reshape(-1, frame.layout.nb_channels).T
                chunks[packet.stream.index].append(arr[0] if arr.ndim == 2 else arr)
                rate = frame.sample_rate
    out = [np.concatenate(c) if c else np.zeros(0) for c in chunks]
    peak = max((np.abs(x).max() for x in out if x.size), default=1.0)
    if peak > 2.0:            # integer samples: scale to [-1, 1]
        out = [x / 32768.0 for x in out]
    return out, rate, titles


def tone_level(x: F, rate: int, freq: float) -> float:
    """Amplitude of ``freq`` in ``x`` (0..1), by projection on sine and cosine."""
    if x.size == 0:
        return 0.0
    t = np.arange(x.size) / rate
    c = np.dot(x, np.cos(2 * np.pi * freq * t))
    s = np.dot(x, np.sin(2 * np.pi * freq * t))
    return float(2 * np.hypot(c, s) / x.size)


def window(x: F, rate: int, start_s: float, end_s: float) -> F:
    return x[int(start_s * rate):int(end_s * rate)]


def onset(x: F, rate: int, threshold: float = 0.02, frame_s: float = 0.01) -> float | None:
    """First time the 10 ms RMS goes over ``threshold``."""
    n = int(frame_s * rate)
    for i in range(0, x.size - n, n):
        if np.sqrt(np.mean(x[i:i + n] ** 2)) > threshold:
            return i / rate
    return None


def offset(x: F, rate: int, threshold: float = 0.02, frame_s: float = 0.01) -> float | None:
    """Last time the 10 ms RMS is over ``threshold``."""
    n = int(frame_s * rate)
    last = None
    for i in range(0, x.size - n, n):
        if np.sqrt(np.mean(x[i:i + n] ** 2)) > threshold:
            last = (i + n) / rate
    return last
