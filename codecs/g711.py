"""G.711 PCMU/PCMA as numpy lookup tables (ITU-T G.711, Sun reference algorithm).

Tables are built once at import by a vectorised version of the reference
encoder/decoder; encode/decode of a frame is then a single fancy-index, so the
hot path has no per-sample Python. Both are stateless: one encode of a frame may
be shared by any number of listeners.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .base import Pcm
from .plc import Concealer

_U8 = npt.NDArray[np.uint8]
_I64 = npt.NDArray[np.int64]


def _segment(value: _I64, ends: tuple[int, ...]) -> _I64:
    """Index of the first segment end >= value (8 when above the last end)."""
    return np.searchsorted(np.asarray(ends), value, side="left").astype(np.int64)


def _ulaw_encode_table() -> _U8:
    pcm = np.arange(65536, dtype=np.int64).astype(np.uint16).view(np.int16).astype(np.int64)
    val = pcm >> 2                                   # 14-bit magnitude domain
    mask = np.where(val < 0, 0x7F, 0xFF)
    val = np.minimum(np.abs(val), 8159) + (0x84 >> 2)  # clip, add bias
    seg = _segment(val, (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF))
    code = (seg << 4) | ((val >> (np.minimum(seg, 7) + 1)) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _ulaw_decode_table() -> Pcm:
    u = ~np.arange(256, dtype=np.int64) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_encode_table() -> _U8:
    pcm = np.arange(65536, dtype=np.int64).astype(np.uint16).view(np.int16).astype(np.int64)
    val = pcm >> 3                                   # 13-bit domain
    mask = np.where(val >= 0, 0xD5, 0x55)
    val = np.where(val >= 0, val, -val - 1)
    seg = _segment(val, (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = (seg << 4) | ((val >> shift) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_decode_table() -> Pcm:
    a = np.arange(256, dtype=np.int64) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


ULAW_ENCODE: _U8 = _ulaw_encode_table()    # index: pcm.view(np.uint16)
ULAW_DECODE: Pcm = _ulaw_decode_table()    # index: code byte
ALAW_ENCODE: _U8 = _alaw_encode_table()
ALAW_DECODE: Pcm = _alaw_decode_table()
for _table in (ULAW_ENCODE, ULAW_DECODE, ALAW_ENCODE, ALAW_DECODE):
    _table.setflags(write=False)


class G711Encoder:
    """PCMU or PCMA encoder: 8 kHz int16 in, one byte per sample out."""

    stateful = False
    sample_rate = 8000
    clock_rate = 8000

    def __init__(self, name: str, frame_ms: int = 20) -> None:
        if name not in ("PCMU", "PCMA"):
            raise ValueError(f"not a G.711 codec: {name!r}")
        self.name = name
        self.frame_samples = self.sample_rate * frame_ms // 1000
        self._table = ULAW_ENCODE if name == "PCMU" else ALAW_ENCODE

    def encode(self, pcm: Pcm) -> bytes:
        # Native-endian view as uint16 gives the table index for every int16 value.
        return self._table[np.ascontiguousarray(pcm, dtype=np.int16).view(np.uint16)].tobytes()


class G711Decoder:
    """PCMU or PCMA decoder with pitch-repetition concealment (no codec PLC in G.711)."""

    sample_rate = 8000
    clock_rate = 8000

    def __init__(self, name: str, frame_ms: int = 20) -> None:
        if name not in ("PCMU", "PCMA"):
            raise ValueError(f"not a G.711 codec: {name!r}")
        self.name = name
        self.frame_samples = self.sample_rate * frame_ms // 1000
        self._table = ULAW_DECODE if name == "PCMU" else ALAW_DECODE
        self._plc = Concealer(self.sample_rate)

    def decode(self, payload: bytes) -> Pcm:
        pcm: Pcm = self._table[np.frombuffer(payload, dtype=np.uint8)]
        return self._plc.good(pcm)

    def conceal(self, samples: int, next_payload: bytes | None = None) -> Pcm:
        return self._plc.conceal(samples)
