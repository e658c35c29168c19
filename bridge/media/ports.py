"""Port protocols: everything audible is a source, every recording tap is a sink.

A leg's network side is an ``RtpPort`` (``bridge.rtp.session.RtpSession`` satisfies it); tones,
prompts, hold music and announcements are ``AudioSource``s; recorders are ``AudioSink``s.
All frames are mono int16 numpy arrays at the rate passed in (the room rate).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]


class AudioSource(Protocol):
    def read(self, samples: int, rate: int) -> Pcm | None:
        """Next ``samples`` samples at ``rate``; a shorter frame is zero-padded by the room;
        None means finished (the room detaches the source and reports SourceFinished)."""
        ...


class AudioSink(Protocol):
    def write(self, pcm: Pcm, rate: int) -> None:
        """One frame; called once per tick from the media path, so it must not block."""
        ...


class RtpPort(Protocol):
    def pop_frame(self) -> Any:
        """``Frame(payload, timestamp)`` | ``Missing(next_payload)`` | ``Empty()``
        (bridge.rtp.jitter); the room dispatches on the attributes, not on the classes."""
        ...

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        """RTP datagram carrying ``payload``, advancing the timestamp by ``ticks`` afterwards."""
        ...


class PcmSource:
    """Plays a fixed int16 buffer once (beeps, pre-decoded prompts) at its own rate.

    The buffer must already be at the rate the room asks for; rate conversion of files belongs
    in the loader, not in the media tick."""

    def __init__(self, pcm: Pcm, rate: int, loop: bool = False) -> None:
        self.pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        self.rate = rate
        self.loop = loop
        self._pos = 0

    def read(self, samples: int, rate: int) -> Pcm | None:
        if rate != self.rate:
            raise ValueError(f"PcmSource at {self.rate} Hz read at {rate} Hz")
        total = self.pcm.shape[0]
        if self._pos >= total:
            if not self.loop or total == 0:
                return None
            self._pos = 0
        if self.loop and self._pos + samples > total:
            idx = (self._pos + np.arange(samples)) % total
            self._pos = int((self._pos + samples) % total)
            return self.pcm[idx]
        out = self.pcm[self._pos:self._pos + samples]
        self._pos += samples
        return out


class ListSink:
    """Keeps every frame written (tests, short captures)."""

    def __init__(self) -> None:
        self.frames: list[Pcm] = []
        self.rate: int | None = None

    def write(self, pcm: Pcm, rate: int) -> None:
        self.rate = rate
        self.frames.append(pcm.copy())

    def pcm(self) -> Pcm:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, np.int16)
