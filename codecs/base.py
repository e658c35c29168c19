"""One Encoder/Decoder interface on int16 numpy frames.

Every codec works on mono int16 frames of ``frame_ms`` at its own ``sample_rate``
(the PCM rate, which for G.722 differs from the RTP clock rate).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]


class Encoder(Protocol):
    name: str            # "PCMU", "PCMA", "G722", "opus", "L16"
    sample_rate: int     # PCM samples per second fed to encode()
    clock_rate: int      # RTP timestamp clock (G722: 8000, opus: 48000)
    stateful: bool       # False for G.711/L16: one encode may be shared by any listeners

    def encode(self, pcm: Pcm) -> bytes:
        """Encode exactly one frame (sample_rate * frame_ms / 1000 samples)."""
        ...


class Decoder(Protocol):
    name: str
    sample_rate: int
    clock_rate: int

    def decode(self, payload: bytes) -> Pcm:
        """Decode one RTP payload into mono int16 PCM at sample_rate."""
        ...

    def conceal(self, samples: int, next_payload: bytes | None = None) -> Pcm:
        """Produce ``samples`` of concealment for a lost frame.

        ``next_payload`` is the following packet when the jitter buffer already
        holds it (Opus uses its in-band FEC); codecs without FEC ignore it.
        """
        ...
