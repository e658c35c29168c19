"""Mixer alone per tick: measure + talk detection + top-K + sum + the outputs actually needed
(one common render and one render per contributor).  N legs, 3 of them talking, the rest
sending low background noise (-66 dBov, below the gate).  Run: python benchmarks/bench_mixer.py
"""

from __future__ import annotations

import time

import numpy as np

from bridge.media.mixer import Mixer

TICKS = 300


def bench(n: int, rate: int, max_talkers: int, all_loud: bool = False) -> tuple[float, float, int]:
    m = Mixer(rate, max_talkers=max_talkers, capacity=n)
    for _ in range(n):
        m.add()
    rng = np.random.default_rng(0)
    s = m.frame_samples
    frames = rng.integers(-25, 25, (4, n, s)).astype(np.int16)      # background noise
    loud_rows = n if all_loud else min(3, n)
    frames[:, :loud_rows] = (rng.standard_normal((4, loud_rows, s)) * 4000).astype(np.int16)
    m.present[:n] = True
    times = []
    for i in range(TICKS):
        m.inputs[:n] = frames[i % 4]          # the room's decode writes these; not timed here
        t0 = time.perf_counter()
        report = m.mix()
        m.render(None)
        for slot in report.contributors.tolist():
            m.render(slot)
        times.append(time.perf_counter() - t0)
    us = np.array(times[20:]) * 1e6
    return float(np.median(us)), float(np.percentile(us, 99)), int(report.contributors.size)


def main() -> None:
    print(f"{'N':>6} {'rate':>6} {'K':>3} {'scenario':>12} {'mixed':>6} {'median us':>10} {'p99 us':>8}")
    for rate in (8000, 16000, 48000):
        for n in (10, 100, 1000):
            med, p99, k = bench(n, rate, 0)
            print(f"{n:>6} {rate:>6} {0:>3} {'3 talkers':>12} {k:>6} {med:>10.0f} {p99:>8.0f}")
    for n in (100, 1000):
        med, p99, k = bench(n, 48000, 3, all_loud=True)
        print(f"{n:>6} {48000:>6} {3:>3} {'all talking':>12} {k:>6} {med:>10.0f} {p99:>8.0f}")
    med, p99, k = bench(100, 48000, 0, all_loud=True)
    print(f"{100:>6} {48000:>6} {0:>3} {'all talking':>12} {k:>6} {med:>10.0f} {p99:>8.0f}  (worst case: K=0)")
    print("target: N=1000 at 48 kHz <= 1000 us median")


if __name__ == "__main__":
    main()
