"""G.722 through PyAV/FFmpeg: 16 kHz PCM, RTP clock 8000 (RFC 3551's historical quirk).

20 ms = 320 samples = 160 bytes. FFmpeg's encoder works on fixed 320-sample
frames, so longer ptimes (40/60 ms) are encoded as consecutive 20 ms chunks,
which is the same bitstream (G.722 is sample-by-sample ADPCM).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import av
import numpy as np

from . import libspandsp
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
    """G.722 decoder with pitch-repetition concealment (G.722 has no PLC of its own).

    The ADPCM decoder must not sit still through a gap: the sender's encoder went on, so
    the packets after it would be decoded against a predictor and step size 20 ms stale
    (G.722 Appendix III/IV update the decoder state during a loss for this reason). With
    the system libspandsp (codecs/libspandsp.py, bit-exact with FFmpeg's G.722) the decoder
    state is ours: after each concealed frame, an encoder given the decoder's own ADPCM
    state encodes the concealment and the decoder decodes those codes, so its state is the
    one that produced what the listener heard. Without the library, FFmpeg's decoder (state
    private) is walked the same way by a fresh encoder primed with the 20 ms before the gap:
    an approximation of that state. Only on a loss: the loss-free path is the same either way.
    Measured (codec alone, benchmarks/bench_quality.py speech, 10 % random loss, PESQ-WB):
    stale state 1.90, FFmpeg walk 1.91, libspandsp resync 1.93, the true (oracle) state 2.11:
    after a gap no state consistent with the concealment is the sender's, so the first
    frames after it stay ~40 % off in RMS whichever is used; the concealment itself is the
    large part of the damage (the true audio at 70 % in the lost frames scores 2.99).
    """

    name = "G722"
    sample_rate = 16000
    clock_rate = 8000

    def __init__(self, frame_ms: int = 20, native: bool = True) -> None:
        self.frame_samples = self.sample_rate * frame_ms // 1000
        lib = libspandsp.load() if native else None
        self._span = libspandsp.SpanG722Decoder(lib) if lib is not None else None
        self._ctx: Any = None
        if self._span is None:
            ctx: Any = av.CodecContext.create("g722", "r")
            ctx.sample_rate = self.sample_rate
            ctx.layout = "mono"
            ctx.open()
            self._ctx = ctx
        self._plc = Concealer(self.sample_rate, window_ms=12, xfade_ms=2)   # see plc.py
        self._last: Pcm | None = None     # the last frame out, what the state walk starts from

    def native(self) -> tuple[Callable[..., int], int] | None:
        """``(g722_decode, state address)`` when decoding through libspandsp, for a caller that
        decodes many legs' frames straight into its own rows: ``fn(state, out_address, payload,
        len(payload))`` returns the samples written. The frames so decoded must then be handed
        to ``decoded_elsewhere`` (the concealment history) before this decoder is used again;
        only for frames that are not the first after a loss (those are cross-faded here)."""
        if self._span is None:
            return None
        return self._span.fn, ctypes.addressof(self._span.buf)

    def decoded_elsewhere(self, frames: list[Pcm]) -> None:
        """The frames the caller decoded through ``native`` since, the oldest first (the
        concealment only needs the last 40 ms, see plc.py): as if decode() had returned them."""
        for pcm in frames:
            self._last = self._plc.good(pcm.copy())

    @property
    def owns_state(self) -> bool:
        """True when decoding through libspandsp (state resynchronised after a loss)."""
        return self._span is not None

    def decode(self, payload: bytes) -> Pcm:
        if self._span is not None:
            pcm = self._span.decode(payload)
        else:
            frames = self._ctx.decode(av.Packet(payload))
            if len(frames) == 1:
                pcm = frame_to_mono(frames[0])
            else:
                pcm = np.concatenate([frame_to_mono(f) for f in frames]) if frames else np.zeros(0, np.int16)
        self._last = out = self._plc.good(pcm)
        return out

    def conceal(self, samples: int, next_payload: bytes | None = None) -> Pcm:
        # next_payload is not used: decoded from any state but the sender's, the next packet
        # is too far off to bridge towards (two-sided concealment scored lower: 1.84 vs 1.93).
        pcm = self._plc.conceal(samples)
        before, self._last = self._last, pcm
        if self._span is not None:
            self._span.resync(before, pcm)
            return pcm
        whole = samples - samples % _CHUNK
        if whole:
            try:
                self._walk(before, pcm[:whole])
            except (av.FFmpegError, ValueError, RuntimeError):
                pass        # a failed walk leaves the decoder as before: stale, not broken
        return pcm

    def _walk(self, before: Pcm | None, concealed: Pcm) -> None:
        encoder = G722Encoder()
        if before is not None and len(before) >= _CHUNK:
            encoder.encode(before[-_CHUNK:])
        self._ctx.decode(av.Packet(b"".join(encoder.encode(concealed[k:k + _CHUNK])
                                            for k in range(0, len(concealed), _CHUNK))))
