"""Opus on the system libopus through ctypes (codecs/libopus.py), PyAV (FFmpeg's libopus) without it.

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
import numpy.typing as npt

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
    """Opus encoder: the system libopus through ctypes (codecs/libopus.py) when it is there, so
    packet loss %, FEC, bitrate, complexity and DTX can change while it runs; else PyAV's,
    where a change reopens the codec (its state starts over: one audible seam) and DTX is refused.
    ``native=None`` picks PyAV's for an encoder opened with FEC when the system libopus is older
    than 1.5 (its FEC costs 0.3-0.7 PESQ more); True/False force one."""

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
        native: bool | None = None,
    ) -> None:
        _check(sample_rate, frame_ms)
        if application not in libopus.APPLICATIONS:
            raise ValueError(f"application must be one of {sorted(libopus.APPLICATIONS)}")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        self.application = application
        self.bitrate = self.complexity = self.packet_loss = 0
        self.fec = self.dtx = False
        if native is None:
            # The system libopus, unless this encoder plans FEC and that libopus's FEC costs the
            # main signal much more than the newer one in PyAV's FFmpeg (libopus.costly_fec).
            native = not (fec and packet_loss > 0 and not dtx and libopus.costly_fec())
        lib = libopus.load() if native else None
        self._native = libopus.LibOpusEncoder(lib, sample_rate, application) if lib is not None else None
        self._ctx: Any = None
        self._feeder = FrameFeeder(self.frame_samples, sample_rate)
        if self._native is not None:
            # What FFmpeg's libopus wrapper sets by default (unconstrained VBR), so both
            # backends produce the same packets from the same settings.
            self._native.ctl(libopus.OPUS_SET_VBR, 1)
            self._native.ctl(libopus.OPUS_SET_VBR_CONSTRAINT, 0)
        self.configure(bitrate=bitrate, complexity=complexity, fec=fec, packet_loss=packet_loss, dtx=dtx)

    @property
    def native(self) -> bool:
        return self._native is not None

    def configure(self, *, bitrate: int | None = None, complexity: int | None = None,
                  fec: bool | None = None, packet_loss: int | None = None, dtx: bool | None = None) -> None:
        """Change settings from the next frame on (``opus_encoder_ctl``: BITRATE 4002,
        COMPLEXITY 4010, INBAND_FEC 4012, PACKET_LOSS_PERC 4014, DTX 4016). libopus adds LBRR
        only when ``fec`` is on and ``packet_loss`` is high enough for the bitrate."""
        if complexity is not None and not 0 <= complexity <= 10:
            raise ValueError("complexity must be 0..10")
        if packet_loss is not None and not 0 <= packet_loss <= 100:
            raise ValueError("packet_loss must be 0..100 (%)")
        if bitrate is not None and not 500 <= bitrate <= 512000:
            raise ValueError("bitrate must be 500..512000 bit/s")
        new = {"bitrate": bitrate, "complexity": complexity, "fec": fec, "packet_loss": packet_loss, "dtx": dtx}
        changed = {k: v for k, v in new.items() if v is not None and v != getattr(self, k)}
        if not changed:
            return
        for k, v in changed.items():
            setattr(self, k, v)
        if self._native is None:
            self._open_pyav()
            return
        ctl = self._native.ctl
        if "bitrate" in changed:
            ctl(libopus.OPUS_SET_BITRATE, self.bitrate)
        if "complexity" in changed:
            ctl(libopus.OPUS_SET_COMPLEXITY, self.complexity)
        if "fec" in changed:
            ctl(libopus.OPUS_SET_INBAND_FEC, int(self.fec))
        if "packet_loss" in changed:
            ctl(libopus.OPUS_SET_PACKET_LOSS_PERC, self.packet_loss)
        if "dtx" in changed:
            ctl(libopus.OPUS_SET_DTX, int(self.dtx))

    def _open_pyav(self) -> None:
        ctx: Any = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = self.sample_rate
        ctx.format = "s16"
        ctx.layout = "mono"
        ctx.bit_rate = self.bitrate
        options = {
            "application": self.application,
            "frame_duration": str(self.frame_ms),
            "compression_level": str(self.complexity),   # FFmpeg maps it to OPUS_SET_COMPLEXITY
            "fec": "1" if self.fec else "0",
            "packet_loss": str(self.packet_loss),
        }
        if self.dtx:
            # FFmpeg's libopus wrapper has no DTX option (PyAV's FFmpeg 8 ignores "dtx" silently).
            raise ValueError("Opus DTX needs the system libopus (libopus0)")
        ctx.options = options
        ctx.open()
        self._ctx = ctx
        self._feeder = FrameFeeder(self.frame_samples, self.sample_rate)

    def encode(self, pcm: Pcm) -> bytes:
        if self._native is not None:
            if len(pcm) != self.frame_samples:
                raise ValueError(f"Opus frame must be {self.frame_samples} samples, not {len(pcm)}")
            return self._native.encode(pcm)
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
        # Lost frames rebuilt from the next packet's in-band FEC: counted only when that packet
        # carries LBRR data (decoding with FEC from one without it is libopus's PLC).
        self.fec_frames = 0

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
                self.fec_frames += int(packet_has_lbrr(next_payload))
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


def packet_has_lbrr(payload: bytes) -> bool:
    """Does this packet carry in-band FEC (SILK LBRR data) for the frame before it?

    libopus only exports ``opus_packet_has_lbrr`` from 1.5 on (Debian's is 1.3.1), so the flag
    is read here (``_silk_flags``). CELT-only packets never carry LBRR."""
    flags = _silk_flags(payload)
    return flags is not None and flags[1]


def packet_is_inactive(payload: bytes) -> bool:
    """Did the sender's encoder mark every SILK frame of this packet inactive (VAD flag 0)?

    libopus sets the flag from its own voice activity detector: 0 for silence and steady
    background noise, 1 for speech. A room need not decode such a packet while the sender is
    not in its mix (bridge/media/room_ingress.py). CELT-only packets (music, tones) and
    packets of several Opus frames are never called inactive: they are always decoded."""
    if len(payload) > 4 and payload[0] & 3 == 0 and (payload[0] >> 3) in _ONE_SILK_FRAME:
        return not _first_bit(payload[1:4])       # the common case, without the decoder object
    flags = _silk_flags(payload, code0_only=True)
    return flags is not None and not any(flags[0])


def packets_inactive(rows: npt.NDArray[np.uint8], sizes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """``packet_is_inactive`` of many packets at once: row i holds a payload of ``sizes[i]``
    bytes (bytes after it are ignored). The usual packet (one 10/20 ms SILK or hybrid frame,
    TOC code 0) is decided by its TOC byte and the top bit of the next (``_first_bit``); the
    rare SILK packet of 40/60 ms (several VAD flags) goes through ``packet_is_inactive``."""
    toc = rows[:, 0]
    long = sizes >= 2
    out: npt.NDArray[np.bool_] = long & _QUICK_TOC[toc] & (rows[:, 1] < 0x80)
    slow = long & _SLOW_TOC[toc]
    if slow.any():
        for i in np.flatnonzero(slow).tolist():
            out[i] = packet_is_inactive(rows[i, :sizes[i]].tobytes())
    return out


# SILK-only 10/20 ms and hybrid configurations: one VAD flag, then the LBRR flag.
_ONE_SILK_FRAME = frozenset((0, 1, 4, 5, 8, 9, 12, 13, 14, 15))
# By TOC byte (config << 3 | stereo << 2 | code): one such frame, code 0 (packets_inactive reads
# its flag in bulk); SILK 40/60 ms, code 0 (read one by one).
_TOCS = np.arange(256)
_QUICK_TOC = np.isin(_TOCS >> 3, sorted(_ONE_SILK_FRAME)) & (_TOCS & 3 == 0)
_SLOW_TOC = (_TOCS >> 3 < 16) & ~np.isin(_TOCS >> 3, sorted(_ONE_SILK_FRAME)) & (_TOCS & 3 == 0)


def _first_bit(head: bytes) -> bool:
    """The first equiprobable bit of a range-coded frame: what ``_RangeBits(data).bit()``
    returns. After init and three normalisation steps rng = 2**31 and val = v0 * 2**24 + r
    with v0 = 127 - (data[0] >> 1) and r < 2**24 (each step shifts in 8 bits without a carry),
    so val < 2**30 exactly when v0 < 64: the top bit of the first byte."""
    return head[0] >= 0x80


def _silk_flags(payload: bytes, code0_only: bool = False) -> tuple[list[bool], bool] | None:
    """The VAD flag of each 20 ms SILK frame and the LBRR flag of a SILK or hybrid packet's
    first Opus frame: the range coder's first symbols (RFC 6716 4.2.3 and 4.2.4; mid channel
    of a stereo packet). None for a CELT-only packet, or one this does not parse."""
    if len(payload) < 2:
        return None
    toc = payload[0]
    config = toc >> 3
    if config >= 16:
        return None                         # CELT only
    code = toc & 3
    data = payload[1:]
    if code and code0_only:
        return None
    if code == 2:                           # two frames of different sizes: skip the length
        data = data[1:] if data[0] < 252 else data[2:]
    elif code == 3:
        return None                         # not produced by our encoders: not parsed
    if not data:
        return None
    ms = (10, 20, 40, 60)[config & 3] if config < 12 else (10, 20)[config & 1]
    dec = _RangeBits(data)
    vad = [dec.bit() for _ in range(max(1, ms // 20))]
    return vad, dec.bit()


class _RangeBits:
    """Just enough of the RFC 6716 4.1 range decoder to read equiprobable bits (logp = 1)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._prev = self._next()
        self.rng = 128
        self.val = 127 - (self._prev >> 1)
        self._normalize()

    def _next(self) -> int:
        b = self._data[self._pos] if self._pos < len(self._data) else 0
        self._pos += 1
        return b

    def _normalize(self) -> None:
        while self.rng <= 1 << 23:
            self.rng <<= 8
            nxt = self._next()
            sym = ((self._prev << 7) | (nxt >> 1)) & 0xFF
            self._prev = nxt
            self.val = ((self.val << 8) + (255 - sym)) & 0x7FFFFFFF

    def bit(self) -> bool:
        s = self.rng >> 1
        one = self.val < s
        if one:
            self.rng = s
        else:
            self.val -= s
            self.rng -= s
        self._normalize()
        return one
