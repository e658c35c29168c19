"""G.722 from the system libspandsp through ctypes: a decoder whose state we own.

FFmpeg's G.722 decoder (hence PyAV's) keeps its ADPCM state private: after a lost packet it
cannot be copied, set or rewound, so concealment cannot resynchronise it. spandsp's G.722
(Debian ``libspandsp2``, installed with baresip) is the ITU-T reference algorithm in plain C
with four entry points; the state is a small struct we allocate ourselves (``_STATE_BYTES``
is generous: 0.0.6's decoder state is 172 bytes), so a snapshot is a copy of our buffer.
``load()`` returns None when the library is missing; codecs/g722.py then uses PyAV.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import lru_cache

import numpy as np

from .base import Pcm

_log = logging.getLogger(__name__)

_LIB_NAMES = ("libspandsp.so.2", "libspandsp.so")
_STATE_BYTES = 1024      # >= sizeof(g722_{en,de}code_state_t) (172 bytes in 0.0.6)
_RATE = 64000            # G.722 mode 1, the only one RTP carries (RFC 3551 4.5.2)
# The two ADPCM sub-band states (predictors, step sizes: g722_band_t band[2]) sit at the same
# offset in the encoder's and the decoder's struct, after four ints and the QMF history (24
# int16); an encoder given a decoder's band state encodes exactly as that decoder decodes.
# load() checks this layout on the library it loaded and refuses the library if it differs.
_BAND = slice(64, 172)


@lru_cache(maxsize=1)
def load() -> ctypes.CDLL | None:
    """The system libspandsp with the G.722 functions declared, or None."""
    found = ctypes.util.find_library("spandsp")
    for name in ((found,) if found else ()) + _LIB_NAMES:
        try:
            lib = ctypes.CDLL(name)
            for kind in ("encode", "decode"):
                init = getattr(lib, f"g722_{kind}_init")
                init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
                init.restype = ctypes.c_void_p
                run = getattr(lib, f"g722_{kind}")
                run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
                run.restype = ctypes.c_int
        except (OSError, AttributeError):
            continue
        if _layout_ok(lib):
            return lib
        _log.warning("libspandsp %s: unexpected G.722 state layout; G.722 decodes through FFmpeg", name)
        return None
    _log.info("libspandsp not found: G.722 decodes through FFmpeg (losses conceal without state resync)")
    return None


def _layout_ok(lib: ctypes.CDLL) -> bool:
    """Does an encoder and a decoder run on the same codes hold the same bytes at _BAND, the
    QMF history before it differing? (What ``SpanG722Decoder.resync`` relies on.)"""
    t = np.arange(640)
    pcm = np.rint(6000 * np.sin(t * 0.31) + 2000 * np.sin(t * 2.1)).astype(np.int16)
    enc, dec = SpanG722Encoder(lib), SpanG722Decoder(lib)
    out = dec.decode(enc.encode(pcm))
    a, b = enc.snapshot(), dec.snapshot()
    return len(out) == len(pcm) and a[_BAND] == b[_BAND] and a[16:64] != b[16:64] and any(a[_BAND])


class _State:
    def __init__(self, lib: ctypes.CDLL, kind: str) -> None:
        self._lib = lib
        self.buf = ctypes.create_string_buffer(_STATE_BYTES)
        if not getattr(lib, f"g722_{kind}_init")(self.buf, _RATE, 0):
            raise RuntimeError(f"g722_{kind}_init failed")

    def snapshot(self) -> bytes:
        return self.buf.raw

    def restore(self, state: bytes) -> None:
        ctypes.memmove(self.buf, state, _STATE_BYTES)


class SpanG722Encoder(_State):
    def __init__(self, lib: ctypes.CDLL) -> None:
        super().__init__(lib, "encode")

    def encode(self, pcm: Pcm) -> bytes:
        pcm = np.ascontiguousarray(pcm, np.int16)
        out = ctypes.create_string_buffer(len(pcm) // 2 + 1)
        n = self._lib.g722_encode(self.buf, out, pcm.ctypes.data, len(pcm))
        return out.raw[:n]


class SpanG722Decoder(_State):
    def __init__(self, lib: ctypes.CDLL) -> None:
        super().__init__(lib, "decode")
        self.fn = lib.g722_decode

    def decode(self, payload: bytes) -> Pcm:
        out = np.empty(2 * len(payload), np.int16)
        n = self.fn(self.buf, out.ctypes.data, payload, len(payload))
        return out[:n]

    def resync(self, before: Pcm | None, concealed: Pcm) -> None:
        """Walk the decoder through audio it did not receive (a concealed gap), as the
        sender's encoder walked through the real audio: an encoder holding this decoder's
        ADPCM state (its QMF history primed with ``before``, the audio played before)
        encodes ``concealed`` and the decoder decodes those codes. Afterwards the decoder's
        state is the one that produces ``concealed``, continuous with what was played."""
        enc = SpanG722Encoder(self._lib)
        if before is not None and len(before):
            enc.encode(before[-48:])
        state = bytearray(enc.snapshot())
        state[_BAND] = self.buf.raw[_BAND]
        enc.restore(bytes(state))
        self.decode(enc.encode(concealed))
