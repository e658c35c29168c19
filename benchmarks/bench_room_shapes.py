"""Room tick cost per room shape: G.711 callers in 8, 16 and 48 kHz rooms, 3 talkers or
everyone talking, with the talker cap at its default and off.

The issue-16 scenarios in process: real RtpSession/JitterBuffer ports (no sockets, no lanes),
packets fed outside the timed region, so the figure is the room's tick (pop, decode, resample,
mix, encode, packetise): median CPU time of the ticking thread. Run: python benchmarks/bench_room_shapes.py [--ticks 150]
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import numpy as np

from bridge.config import MediaConfig
from bridge.media.room import Room
from bridge.rtp.packet import build_rtp_header
from bridge.rtp.session import RtpSession
from bridge_codecs import make_encoder

SCENARIOS = [  # (room rate, N, talkers or None for everyone)
    (8000, 400, 3), (16000, 400, 3), (48000, 400, 3),
    (8000, 200, None), (16000, 200, None), (48000, 200, None),
]


def streams(frames: int = 50, silence: bool = False) -> tuple[list[list[bytes]], list[bytes]]:
    """Eight different voices (tones with a syllable envelope) and low background noise (about
    -61 dBov, under the gate) or, with ``silence``, digital silence."""
    enc = make_encoder("PCMU")
    t = np.arange(frames * 160) / 8000
    voices = []
    for v in range(8):
        f = 180 + 37 * v
        x = (5000 * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * (2 + v) * t))).astype(np.int16)
        voices.append([enc.encode(x[i * 160:(i + 1) * 160]) for i in range(frames)])
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(frames * 160) * (0 if silence else 30)).astype(np.int16)
    return voices, [enc.encode(noise[i * 160:(i + 1) * 160]) for i in range(frames)]


def run(rate: int, n: int, talkers: int | None, cap: int | None, ticks: int, silence: bool = False) -> float:
    voices, noise = streams(silence=silence)
    return tick_ms(Room("bench", rate, max_talkers=room_cap(cap)), voices, noise, n, talkers, ticks,
                   "PCMU", 0, 8000)


def room_cap(cap: int | None) -> int:
    """The talker cap to open a room with: None is the configuration's default (media.max_talkers)."""
    return MediaConfig().max_talkers if cap is None else cap


def tick_ms(room: Room, voices: list[list[bytes]], noise: list[bytes], n: int, talkers: int | None,
            ticks: int, codec: str, pt: int, clock: int, opts: dict[str, Any] | None = None) -> float:
    """Median CPU ms of ``room.tick`` with N legs of ``codec`` (20 ms packets at ``clock``) on
    real RtpSessions: the first ``talkers`` (None: all) send ``voices[i % len]``, the rest
    ``noise``; packets are fed outside the timed region."""
    frame = clock // 50
    legs: list[tuple[RtpSession, list[bytes], tuple[str, int]]] = []
    for i in range(n):
        addr = ("10.0.0.1", 20000 + i)
        s = RtpSession(0x9000 + i, pt, clock, frame, None, None, addr)
        talks = talkers is None or i < talkers
        legs.append((s, voices[i % len(voices)] if talks else noise, addr))
        room.add_leg(f"leg{i}", s, codec, codec, payload_type=pt, encoder_opts=opts)
    now = 0.0
    seq = 0

    def feed() -> None:
        for i, (s, stream, addr) in enumerate(legs):
            data = build_rtp_header(pt, seq & 0xFFFF, seq * frame, 0x1000 + i) + stream[seq % len(stream)]
            s.receive(data, addr, now)

    for _ in range(4):
        feed()
        seq += 1
        now += 0.02
    gc.collect()
    gc.freeze()
    times = []
    for _ in range(ticks):
        feed()
        t0 = time.thread_time()      # CPU time: the 2-core machine is shared, wall time is noisy
        room.tick(now)
        times.append(time.thread_time() - t0)
        seq += 1
        now += 0.02
    gc.unfreeze()
    return float(np.median(times[10:])) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=150)
    args = ap.parse_args()
    print(f"{'rate':>6} {'N':>5} {'talkers':>8} {'others':>8} {'cap':>8} {'median ms':>10} {'us/leg':>7}")
    for rate, n, talkers in SCENARIOS:
        for cap in ((None, 0) if talkers is None else (None,)):
            # The listeners of a few-talker room: background noise, or digital silence (what the
            # side-by-side comparison's load generator sends).
            for silence in ((False, True) if talkers is not None else (False,)):
                ms = run(rate, n, talkers, cap, args.ticks, silence)
                label = f"{MediaConfig().max_talkers} (dflt)" if cap is None else "off"
                others = "-" if talkers is None else "silence" if silence else "noise"
                print(f"{rate:>6} {n:>5} {str(talkers or 'all'):>8} {others:>8} {label:>8} {ms:>10.2f}"
                      f" {ms * 1000 / n:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
