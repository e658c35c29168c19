"""RTP hot path per call: RtpSession.receive, pop_frame (jitter buffer) and packetize.

One leg of G.711 (PCMU, 20 ms, 160-byte payloads, telephone-event negotiated as in the
bridge). Packets arrive one per 20 ms of media time with a little arrival jitter; calls
are timed in blocks of BLOCK (receive BLOCK packets, then pop BLOCK frames) so the clock
overhead is amortised, and the table shows the median microseconds per call over the
blocks, best of REPEATS runs (the machine is shared: the best run is the least disturbed).
Scenarios: in order; 1% loss; 5% of packets swapped with their successor.
Run: python benchmarks/bench_rtp.py   (a few seconds)
"""

from __future__ import annotations

import gc
import random
import statistics
import time

from bridge.rtp.packet import build_rtp_header
from bridge.rtp.session import RtpSession

PACKETS = 30_000
BLOCK = 10
REPEATS = 3
ADDR = ("10.0.0.1", 20000)
PAYLOAD = bytes(range(160))


def stream(loss: float, reorder: float, seed: int = 1) -> list[tuple[bytes, float]]:
    """(datagram, arrival) in arrival order."""
    rng = random.Random(seed)
    pkts: list[tuple[bytes, float]] = []
    for i in range(PACKETS):
        if i > 10 and rng.random() < loss:
            continue
        data = build_rtp_header(0, (1000 + i) & 0xFFFF, (5000 + i * 160) & 0xFFFFFFFF, 0x1234) + PAYLOAD
        pkts.append((data, i * 0.02 + rng.random() * 0.004))
    for k in range(10, len(pkts) - 1):
        if rng.random() < reorder:
            (a, ta), (b, tb) = pkts[k], pkts[k + 1]
            pkts[k], pkts[k + 1] = (b, ta), (a, tb)
    return pkts


def run(loss: float, reorder: float) -> tuple[float, float]:
    """Median us per receive and per pop_frame."""
    s = RtpSession(0x9999, 0, 8000, 160, 101, 8000, ADDR)
    pkts = stream(loss, reorder)
    recv_us: list[float] = []
    pop_us: list[float] = []
    receive, pop = s.receive, s.pop_frame
    clock = time.perf_counter
    gc.disable()
    try:
        for k in range(0, len(pkts) - BLOCK, BLOCK):
            block = pkts[k:k + BLOCK]
            t0 = clock()
            for data, now in block:
                receive(data, ADDR, now)
            t1 = clock()
            for _ in range(BLOCK):
                pop()
            t2 = clock()
            if k >= 200:                       # past start-up
                recv_us.append((t1 - t0) * 1e6 / BLOCK)
                pop_us.append((t2 - t1) * 1e6 / BLOCK)
    finally:
        gc.enable()
    return statistics.median(recv_us), statistics.median(pop_us)


def run_packetize() -> float:
    s = RtpSession(0x9999, 0, 8000, 160, 101, 8000, ADDR)
    packetize = s.packetize
    clock = time.perf_counter
    times: list[float] = []
    for _ in range(PACKETS // BLOCK):
        t0 = clock()
        for _ in range(BLOCK):
            packetize(PAYLOAD, 160)
        times.append((clock() - t0) * 1e6 / BLOCK)
    return statistics.median(times)


def main() -> None:
    print(f"{'scenario':<24} {'receive us':>11} {'pop_frame us':>13}")
    for name, loss, reorder in (("in order", 0.0, 0.0), ("1% loss", 0.01, 0.0),
                                ("5% reordered", 0.0, 0.05)):
        runs = [run(loss, reorder) for _ in range(REPEATS)]
        recv, pop = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"{name:<24} {recv:>11.2f} {pop:>13.2f}")
    print(f"{'packetize (160 B)':<24} {min(run_packetize() for _ in range(REPEATS)):>11.2f}")


if __name__ == "__main__":
    main()
