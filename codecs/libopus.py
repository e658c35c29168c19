"""The system libopus through ctypes, for what FFmpeg (hence PyAV) cannot ask of it.

FFmpeg's libopus wrapper always calls ``opus_decode(..., decode_fec=0)``, so the in-band FEC
(LBRR) a packet carries for the frame before it is never used; and it fixes the encoder's
settings when it opens, while a listener's loss (hence the FEC worth sending it) changes during
a call. ``LibOpusEncoder`` takes ``opus_encoder_ctl`` settings at any time. libopus's own API is small and
stable (the 1.x ABI has not changed since 2012), so we call it directly on the system library
(Debian/Ubuntu ``libopus0``, the same library FFmpeg links), not through an unmaintained wrapper.
``load()`` returns None when the library is missing; codecs/opus.py then encodes and decodes
through PyAV (no FEC decoding, settings fixed at open).
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


def version() -> str | None:
    """The system libopus's version string ("libopus 1.3.1"), None without one."""
    lib = load()
    return lib.opus_get_version_string().decode() if lib is not None else None


def costly_fec() -> bool:
    """Is the system libopus older than 1.5? Its in-band FEC takes far more from the frame it
    rides in: PESQ of clean speech at complexity 10 with FEC for 10 % loss, 1.3.1 3.68 against
    3.99 for the 1.6.1 PyAV bundles (3.19 / 3.87 for 20 %); without FEC both score 4.07."""
    text = version()
    if text is None:
        return False
    digits = text.split()[-1].split("-")[0].split(".")
    try:
        return (int(digits[0]), int(digits[1])) < (1, 5)
    except (ValueError, IndexError):
        return False


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
        lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int,
                                            ctypes.POINTER(ctypes.c_int)]
        lib.opus_encoder_create.restype = ctypes.c_void_p
        lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_encoder_destroy.restype = None
        lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                    ctypes.c_void_p, ctypes.c_int32]
        lib.opus_encode.restype = ctypes.c_int32
        # opus_encoder_ctl is variadic: its arguments are passed as typed ctypes values (ctl()).
        lib.opus_encoder_ctl.restype = ctypes.c_int
        lib.opus_get_version_string.argtypes = []
        lib.opus_get_version_string.restype = ctypes.c_char_p
        lib.opus_strerror.argtypes = [ctypes.c_int]
        lib.opus_strerror.restype = ctypes.c_char_p
        return lib
    return None


# Request numbers from libopus's include/opus_defines.h (stable across the 1.x ABI).
OPUS_SET_APPLICATION = 4000
OPUS_SET_BITRATE = 4002
OPUS_GET_BITRATE = 4003
OPUS_SET_VBR = 4006
OPUS_SET_COMPLEXITY = 4010
OPUS_GET_COMPLEXITY = 4011
OPUS_SET_INBAND_FEC = 4012
OPUS_GET_INBAND_FEC = 4013
OPUS_SET_PACKET_LOSS_PERC = 4014
OPUS_GET_PACKET_LOSS_PERC = 4015
OPUS_SET_DTX = 4016
OPUS_GET_DTX = 4017
OPUS_SET_VBR_CONSTRAINT = 4020
OPUS_GET_LOOKAHEAD = 4027
APPLICATIONS = {"voip": 2048, "audio": 2049, "lowdelay": 2051}
_MAX_PACKET = 1500          # opus_encode's output bound: one RTP payload within an Ethernet MTU


class LibOpusEncoder:
    """One mono libopus encoder at ``sample_rate``; every setting can change between frames."""

    def __init__(self, lib: ctypes.CDLL, sample_rate: int, application: str = "voip") -> None:
        self._lib = lib
        self.sample_rate = sample_rate
        err = ctypes.c_int(0)
        handle = lib.opus_encoder_create(sample_rate, 1, APPLICATIONS[application], ctypes.byref(err))
        if err.value != 0 or not handle:
            raise LibOpusError(_why(lib, err.value))
        self._st: int | None = handle
        self._out = ctypes.create_string_buffer(_MAX_PACKET)

    def __del__(self) -> None:
        st, self._st = getattr(self, "_st", None), None
        if st:
            self._lib.opus_encoder_destroy(st)

    def ctl(self, request: int, value: int) -> None:
        """An ``OPUS_SET_*`` request (even number) with its opus_int32 argument."""
        if self._st is None:
            raise LibOpusError("encoder closed")
        code = int(self._lib.opus_encoder_ctl(ctypes.c_void_p(self._st), ctypes.c_int(request),
                                              ctypes.c_int32(value)))
        if code != 0:
            raise LibOpusError(f"{_why(self._lib, code)} (ctl {request} = {value})")

    def get(self, request: int) -> int:
        """An ``OPUS_GET_*`` request (odd number)."""
        if self._st is None:
            raise LibOpusError("encoder closed")
        out = ctypes.c_int32(0)
        code = int(self._lib.opus_encoder_ctl(ctypes.c_void_p(self._st), ctypes.c_int(request),
                                              ctypes.byref(out)))
        if code != 0:
            raise LibOpusError(f"{_why(self._lib, code)} (ctl {request})")
        return out.value

    def encode(self, pcm: Pcm) -> bytes:
        """One frame of mono int16 (2.5 to 60 ms) to one Opus packet."""
        if self._st is None:
            raise LibOpusError("encoder closed")
        frame = np.ascontiguousarray(pcm, dtype=np.int16)
        n = int(self._lib.opus_encode(self._st, frame.ctypes.data, len(frame), self._out, _MAX_PACKET))
        if n < 0:
            raise LibOpusError(_why(self._lib, n))
        return self._out.raw[:n]


def _why(lib: ctypes.CDLL, code: int) -> str:
    msg: bytes | None = lib.opus_strerror(code)
    return f"libopus: {msg.decode() if msg else code}"


class LibOpusDecoder:
    """One mono libopus decoder at ``sample_rate`` (stereo packets are downmixed by libopus)."""

    def __init__(self, lib: ctypes.CDLL, sample_rate: int) -> None:
        self._lib = lib
        self.sample_rate = sample_rate
        err = ctypes.c_int(0)
        handle = lib.opus_decoder_create(sample_rate, 1, ctypes.byref(err))
        if err.value != 0 or not handle:
            raise LibOpusError(_why(lib, err.value))
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
            raise LibOpusError(_why(self._lib, n))
        return n

    def _run(self, data: bytes | None, samples: int, fec: int) -> Pcm:
        if self._st is None:
            raise LibOpusError("decoder closed")
        samples = min(samples, len(self._out))
        n = int(self._lib.opus_decode(self._st, data, len(data) if data else 0,
                                      self._out.ctypes.data, samples, fec))
        if n < 0:
            raise LibOpusError(_why(self._lib, n))
        return self._out[:n].copy()
