"""RFC 4733 telephone-event: receiver that reports each key press once, and a sender helper.

An event is identified by (SSRC, RTP timestamp): every packet of one key press
carries the timestamp of its start. The receiver reports an event when the
first end packet arrives; the usual 3 copies of the end packet (and late
redundant ones) are then ignored. If all end packets are lost, the event is
reported when the next event starts or when ``poll(now)`` sees no packet for
``timeout`` seconds.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

EVENT_DIGITS = "0123456789*#ABCD"   # events 0-15; 16 (flash) and others are ignored


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    digit: str
    duration_ms: int


@dataclass(slots=True)
class _Current:
    key: tuple[int, int]
    digit: str
    duration: int
    last_seen: float


class DtmfReceiver:
    # Hot per-packet state: fixed slots keep it compact (fewer cache lines per leg per tick).
    __slots__ = (
        "current", "_done", "clock_rate", "ignored", "malformed", "timeout",
    )
    def __init__(self, clock_rate: int = 8000, timeout: float = 0.5) -> None:
        self.clock_rate = clock_rate
        self.timeout = timeout
        self.current: _Current | None = None   # the key press in progress
        # Recently finished events, so late redundant end packets are not re-reported.
        self._done: deque[tuple[int, int]] = deque(maxlen=16)
        self.malformed = 0
        self.ignored = 0

    def receive(self, payload: bytes, timestamp: int, now: float, ssrc: int = 0) -> list[DtmfEvent]:
        if len(payload) < 4:
            self.malformed += 1
            return []
        event, flags, duration = struct.unpack_from("!BBH", payload)
        end = bool(flags & 0x80)
        key = (ssrc, timestamp & 0xFFFFFFFF)
        out: list[DtmfEvent] = []
        if key in self._done:
            return out
        cur = self.current
        if cur is not None and cur.key != key:
            out.append(self._finish(cur))   # its end packets were lost
            cur = None
        if event >= len(EVENT_DIGITS):
            self.ignored += 1
            return out
        if cur is None:
            cur = self.current = _Current(key, EVENT_DIGITS[event], duration, now)
        cur.duration = max(cur.duration, duration)
        cur.last_seen = now
        if end:
            out.append(self._finish(cur))
        return out

    @property
    def pending(self) -> bool:
        """An event is in progress: only then can ``poll`` report anything."""
        return self.current is not None

    def poll(self, now: float) -> list[DtmfEvent]:
        """Report an event whose end packets never came."""
        cur = self.current
        if cur is not None and now - cur.last_seen >= self.timeout:
            return [self._finish(cur)]
        return []

    def reset(self) -> None:
        self.current = None

    def _finish(self, cur: _Current) -> DtmfEvent:
        self.current = None
        self._done.append(cur.key)
        return DtmfEvent(cur.digit, cur.duration * 1000 // self.clock_rate)


def dtmf_payload(event: int, end: bool, volume: int, duration: int) -> bytes:
    return struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F), min(duration, 0xFFFF))


def build_dtmf_packets(digit: str, duration_ms: int = 100, clock_rate: int = 8000,
                       packet_ms: int = 20, volume: int = 10) -> list[bytes]:
    """Payloads for one key press, all sharing one RTP timestamp: updates every
    ``packet_ms`` (the first is the start, sent with the marker bit), then 3 ends."""
    event = EVENT_DIGITS.index(digit.upper())
    step = clock_rate * packet_ms // 1000
    total = clock_rate * duration_ms // 1000
    out = [dtmf_payload(event, False, volume, d) for d in range(step, total, step)]
    out += [dtmf_payload(event, True, volume, total)] * 3
    return out
