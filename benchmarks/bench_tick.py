"""Full room tick with real codecs and real RtpSession/JitterBuffer: jitter pop, decode,
resample, mix, encode, packetise.  3 talkers + N-3 listeners per room.

Listeners: G.711 and G.722 phones send continuous (encoded silence) packets, so every leg is
decoded every tick; Opus listeners use DTX (WebRTC/Opus default for silence), so their jitter
buffers yield Empty and nothing is decoded.  New packets are fed to each session outside the
timed region.  Run: python benchmarks/bench_tick.py
"""

from __future__ import annotations

import argparse
import gc
import struct
import time
from typing import Any

import numpy as np

from bridge.media.room import Room
from bridge.rtp.jitter import Empty, Frame
from bridge.rtp.packet import build_rtp_header
from bridge.rtp.session import RtpSession
from bridge_codecs import make_encoder

TALKERS = 3
BUDGET_S = 2.5        # per configuration; the tick count adapts so the script stays < 2 min
MAX_TICKS = 200

CODECS = {            # name: (room rate, pt, RTP clock, PCM rate)
    "PCMU": (8000, 0, 8000, 8000),
    "G722": (16000, 9, 8000, 16000),
    "opus": (48000, 111, 48000, 48000),
}


def talker_payloads(name: str, frames: int = 50) -> list[bytes]:
    _, _, _, pcm_rate = CODECS[name]
    enc = make_encoder(name)
    s = pcm_rate // 50
    t = np.arange(frames * s) / pcm_rate
    speech = (6000 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.int16)
    return [enc.encode(speech[i * s:(i + 1) * s]) for i in range(frames)]


def silence_payloads(name: str) -> list[bytes] | None:
    """A continuous encoded-silence stream (ADPCM needs one encoder's consecutive frames:
    one G.722 silence packet decoded over and over drifts to a -44 dBov DC level)."""
    if name == "opus":
        return None       # DTX: nothing sent
    _, _, _, pcm_rate = CODECS[name]
    enc = make_encoder(name)
    frames = [enc.encode(np.zeros(pcm_rate // 50, np.int16)) for _ in range(60)]
    return frames[10:]


class Leg:
    def __init__(self, idx: int, name: str, payloads: list[bytes] | None, silence: list[bytes] | None) -> None:
        rate, pt, clock, _ = CODECS[name]
        self.pt = pt
        self.ticks = clock // 50
        self.addr = ("10.0.0.1", 20000 + idx)
        self.ssrc = 0x1000 + idx
        self.session = RtpSession(0x9000 + idx, pt, clock, self.ticks, None, None, self.addr)
        self.payloads = payloads
        self.silence = silence
        self.seq = 0

    def feed(self, now: float) -> None:
        stream = self.payloads if self.payloads is not None else self.silence
        payload = stream[self.seq % len(stream)] if stream is not None else None
        if payload is not None:
            data = build_rtp_header(self.pt, self.seq, self.seq * self.ticks, self.ssrc) + payload
            self.session.receive(data, self.addr, now)
        self.seq += 1


_HEADER = struct.Struct("!BBHII")


class StubPort:
    """Zero-cost stand-in for RtpSession: isolates the room's own work from the jitter buffer."""

    def __init__(self, leg: Leg) -> None:
        self.leg = leg
        self.seq = self.ts = 0

    def pop_frame(self) -> Any:
        leg = self.leg
        stream = leg.payloads if leg.payloads is not None else leg.silence
        leg.seq += 1
        return Frame(stream[leg.seq % len(stream)], 0) if stream is not None else Empty()

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        self.seq += 1
        self.ts += ticks
        return _HEADER.pack(0x80, 0, self.seq & 0xFFFF, self.ts & 0xFFFFFFFF, 1) + payload


def stub_cost(ports: list[StubPort], payload: bytes, ticks: int) -> float:
    """Median µs of the stub ports' own pop_frame + packetize calls for one tick (what the
    ``stub`` rows spend outside the room), so the room's own cost can be read off."""
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        for port in ports:
            port.pop_frame()
        for port in ports:
            port.packetize(payload, ticks, False)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def bench(name: str, n: int, shared: bool, stub: bool = False) -> tuple[float, float, float, int, float]:
    rate, pt, _, _ = CODECS[name]
    room = Room("bench", rate, share_encodes=shared)
    talk = talker_payloads(name)
    silence = silence_payloads(name)
    legs = []
    stubs: list[StubPort] = []
    for i in range(n):
        leg = Leg(i, name, talk if i < TALKERS else None, silence)
        legs.append(leg)
        port: Any = StubPort(leg) if stub else leg.session
        if stub:
            stubs.append(port)
        room.add_leg(f"leg{i}", port, name, name, payload_type=pt)
    now = 0.0
    for _ in range(4):                       # pre-fill the jitter buffers
        for leg in legs:
            leg.feed(now)
        now += 0.02
    gc.collect()
    gc.freeze()      # long-lived sessions/codecs out of the GC's scans (what the app should do too)
    times: list[float] = []
    start = time.perf_counter()
    tick = 0
    while tick < MAX_TICKS and (tick < 10 or time.perf_counter() - start < BUDGET_S):
        if not stub:
            for leg in legs:                 # network arrivals: not timed
                leg.feed(now)
        t0 = time.perf_counter()
        result = room.tick(now)
        times.append(time.perf_counter() - t0)
        assert len(result.outgoing) == n
        now += 0.02
        tick += 1
    extra = stub_cost(stubs, result.outgoing[-1][1][12:], CODECS[name][2] // 50) if stub else 0.0
    gc.unfreeze()
    us = np.array(times[5:]) * 1e6
    return float(np.median(us)), float(np.percentile(us, 99)), float(us.min()), len(room._streams), extra


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--codecs", nargs="+", default=list(CODECS), choices=list(CODECS))
    args = ap.parse_args()
    print(f"{'codec':>6} {'N':>6} {'shared':>7} {'ports':>6} {'streams':>8} {'median ms':>10} {'p99 ms':>8}"
          f" {'min ms':>7} {'us/leg':>7}")

    def row(name: str, n: int, shared: bool, stub: bool = False) -> float:
        med, p99, best, streams, ports_us = bench(name, n, shared, stub)
        print(f"{name:>6} {n:>6} {str(shared):>7} {'stub' if stub else 'rtp':>6} {streams:>8}"
              f" {med / 1000:>10.2f} {p99 / 1000:>8.2f} {best / 1000:>7.2f} {med / n:>7.1f}")
        if stub:
            print(f"{'':>6} stub ports alone {ports_us / 1000:.2f} ms -> room's own cost ~{(med - ports_us) / 1000:.2f} ms")
        return med

    for name in args.codecs:
        scaling = {n: row(name, n, True) for n in (10, 100, 1000)}
        row(name, 1000, True, stub=True)
        for n in (10, 100, 1000):
            row(name, n, False)
        print(f"{name:>6} shared, 10 -> 1000 legs (x100): tick time x{scaling[1000] / scaling[10]:.1f}")
    print("targets: PCMU N=1000 <= 3 ms median; opus 3 talkers + 997 listeners <= 5 ms median")
    print("ports=stub: RtpSession replaced by a no-op port, i.e. the room's own cost without jitter pop")


if __name__ == "__main__":
    main()
