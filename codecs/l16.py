"""L16: uncompressed big-endian (network order) int16 PCM, RFC 3551 section 4.5.11."""

from __future__ import annotations

import numpy as np

from .base import Pcm
from .plc import Concealer

L16_RATES = (8000, 16000, 48000)
_BE = np.dtype(">i2")


def _check_rate(sample_rate: int) -> int:
    if sample_rate not in L16_RATES:
        raise ValueError(f"L16 sample rate {sample_rate} not in {L16_RATES}")
    return sample_rate


class L16Encoder:
    name = "L16"
    stateful = False

    def __init__(self, sample_rate: int = 8000, frame_ms: int = 20) -> None:
        self.sample_rate = self.clock_rate = _check_rate(sample_rate)
        self.frame_samples = sample_rate * frame_ms // 1000

    def encode(self, pcm: Pcm) -> bytes:
        return np.asarray(pcm, dtype=np.int16).astype(_BE).tobytes()


class L16Decoder:
    name = "L16"

    def __init__(self, sample_rate: int = 8000, frame_ms: int = 20) -> None:
        self.sample_rate = self.clock_rate = _check_rate(sample_rate)
        self.frame_samples = sample_rate * frame_ms // 1000
        self._plc = Concealer(sample_rate)

    def decode(self, payload: bytes) -> Pcm:
        # An odd trailing byte cannot be a sample; drop it rather than fail the call.
        usable = len(payload) & ~1
        pcm: Pcm = np.frombuffer(payload[:usable], dtype=_BE).astype(np.int16)
        return self._plc.good(pcm)

    def conceal(self, samples: int, next_payload: bytes | None = None) -> Pcm:
        future = None
        if next_payload:
            future = np.frombuffer(next_payload[:len(next_payload) & ~1], dtype=_BE).astype(np.int16)
        return self._plc.conceal(samples, future)
