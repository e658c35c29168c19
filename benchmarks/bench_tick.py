"""Full room tick with real codecs and real RtpSession/JitterBuffer: jitter pop, decode,
resample, mix, encode, packetise.  3 talkers + N-3 listeners per room.

Listeners: G.711 and G.722 phones send continuous (encoded silence) packets, so every leg is
decoded every tick; Opus listeners use DTX (WebRTC/Opus default for silence), so their jitter
buffers yield Empty and nothing is decoded.  New packets are fed to each session outside the
timed region.  Run: python benchmarks/bench_tick.py
"""

from __future__ import annotations

import time

import numpy as np

from bridge.media.room import Room
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


def silence_payload(name: str) -> bytes | None:
    if name == "opus":
        return None       # DTX: nothing sent
    _, _, _, pcm_rate = CODECS[name]
    return make_encoder(name).encode(np.zeros(pcm_rate // 50, np.int16))


class Leg:
    def __init__(self, idx: int, name: str, payloads: list[bytes] | None, silence: bytes | None) -> None:
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
        if self.payloads is not None:
            payload: bytes | None = self.payloads[self.seq % len(self.payloads)]
        else:
            payload = self.silence
        if payload is not None:
            data = build_rtp_header(self.pt, self.seq, self.seq * self.ticks, self.ssrc) + payload
            self.session.receive(data, self.addr, now)
        self.seq += 1


def bench(name: str, n: int, shared: bool) -> tuple[float, float, int]:
    rate, pt, _, _ = CODECS[name]
    room = Room("bench", rate, share_encodes=shared)
    talk = talker_payloads(name)
    silence = silence_payload(name)
    legs = []
    for i in range(n):
        leg = Leg(i, name, talk if i < TALKERS else None, silence)
        legs.append(leg)
        room.add_leg(f"leg{i}", leg.session, name, name, payload_type=pt)
    now = 0.0
    for _ in range(4):                       # pre-fill the jitter buffers
        for leg in legs:
            leg.feed(now)
        now += 0.02
    times: list[float] = []
    start = time.perf_counter()
    tick = 0
    while tick < MAX_TICKS and (tick < 10 or time.perf_counter() - start < BUDGET_S):
        for leg in legs:                     # network arrivals: not timed
            leg.feed(now)
        t0 = time.perf_counter()
        result = room.tick(now)
        times.append(time.perf_counter() - t0)
        assert len(result.outgoing) == n
        now += 0.02
        tick += 1
    us = np.array(times[5:]) * 1e6
    return float(np.median(us)), float(np.percentile(us, 99)), len(room._streams)


def main() -> None:
    print(f"{'codec':>6} {'N':>6} {'shared':>7} {'streams':>8} {'median ms':>10} {'p99 ms':>8} {'us/leg':>7}")
    for name in ("PCMU", "G722", "opus"):
        scaling = {}
        for shared in (True, False):
            for n in (10, 100, 1000):
                med, p99, streams = bench(name, n, shared)
                if shared:
                    scaling[n] = med
                print(f"{name:>6} {n:>6} {str(shared):>7} {streams:>8} {med / 1000:>10.2f} {p99 / 1000:>8.2f}"
                      f" {med / n:>7.1f}")
        print(f"{name:>6} shared scaling 10 -> 1000 legs: x{scaling[1000] / scaling[10]:.1f} time for x100 legs")
    print("targets: PCMU N=1000 <= 3 ms median; opus 3 talkers + 997 listeners <= 5 ms median")


if __name__ == "__main__":
    main()
