"""The system libopus decoder through ctypes, for what FFmpeg (hence PyAV) cannot ask of it.

FFmpeg's libopus wrapper always calls ``opus_decode(..., decode_fec=0)``, so the in-band FEC
(LBRR) a packet carries for the frame before it is never used. libopus's own API is small and
stable (the 1.x ABI has not changed since 2012), so we call it directly on the system library
(Debian/Ubuntu ``libopus0``, the same library FFmpeg links), not through an unmaintained wrapper.
``load()`` returns None when the library is missing; codecs/opus.py then decodes through PyAV
without FEC.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

import numpy as np

from .base import Pcm

_MAX_FRAME_MS = 120     # the longest Opus packet (RFC 6716 3.2.5)
_LIB_NAMES = ("libopus.so.0", "libopus.so")


class LibOpusError(RuntimeError):
    pass


@lru_cache(maxsize=1)
def load() -> ctypes.CDLL | None:
    """The system libopus with argument types declared, or None when there is none."""
    found = ctypes.util.find_library("opus")
    for name in ((found,) if found else ()) + _LIB_NAMES:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decoder_destroy.restype = None
        lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                    ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_packet_get_nb_samples.argtypes = [ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32]
        lib.opus_packet_get_nb_samples.restype = ctypes.c_int
        lib.opus_strerror.argtypes = [ctypes.c_int]
        lib.opus_strerror.restype = ctypes.c_char_p
        return lib
    return None


class LibOpusDecoder:
    """One mono libopus decoder at ``sample_rate`` (stereo packets are downmixed by libopus)."""

    def __init__(self, lib: ctypes.CDLL, sample_rate: int) -> None:
        self._lib = lib
        self.sample_rate = sample_rate
        err = ctypes.c_int(0)
        handle = lib.opus_decoder_create(sample_rate, 1, ctypes.byref(err))
        if err.value != 0 or not handle:
            raise LibOpusError(self._why(err.value))
        self._st: int | None = handle
        self._out = np.zeros(sample_rate * _MAX_FRAME_MS // 1000, np.int16)

    def __del__(self) -> None:
        st, self._st = getattr(self, "_st", None), None
        if st:
            self._lib.opus_decoder_destroy(st)

    def decode(self, payload: bytes) -> Pcm:
        """A received packet, all its frames."""
        return self._run(payload, len(self._out), 0)

    def plc(self, samples: int) -> Pcm:
        """libopus's own concealment for ``samples`` (a multiple of 2.5 ms)."""
        return self._run(None, samples, 0)

    def fec(self, next_payload: bytes, samples: int) -> Pcm:
        """The lost frame before ``next_payload`` rebuilt from that packet's LBRR data; libopus
        falls back to its PLC when the packet carries none. The packet itself is decoded later."""
        return self._run(next_payload, samples, 1)

    def samples_in(self, payload: bytes) -> int:
        n = int(self._lib.opus_packet_get_nb_samples(payload, len(payload), self.sample_rate))
        if n < 0:
            raise LibOpusError(self._why(n))
        return n

    def _run(self, data: bytes | None, samples: int, fec: int) -> Pcm:
        if self._st is None:
            raise LibOpusError("decoder closed")
        samples = min(samples, len(self._out))
        n = int(self._lib.opus_decode(self._st, data, len(data) if data else 0,
                                      self._out.ctypes.data, samples, fec))
        if n < 0:
            raise LibOpusError(self._why(n))
        return self._out[:n].copy()

    def _why(self, code: int) -> str:
        msg: bytes | None = self._lib.opus_strerror(code)
        return f"libopus: {msg.decode() if msg else code}"
