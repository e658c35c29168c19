"""Recording cost per 20 ms tick at N = 10, 100 and 1,000 legs, 16 kHz.

- **tick (mix)**: what the media tick pays for a mix-only recording (the mix sink's copy into
  the tap); **tick (multitrack)**: the mix sink plus one leg sink per participant.
- **writer**: the writer thread's time per tick for multitrack (timeline, silence fill, raw
  ``.part`` appends, flushes), off the media clock; under 20 ms it keeps up in real time.
- **finish**: encoding the finished files after stop (mix WAV + Matroska with N+1 Opus
  tracks), per second of recording; it runs in the writer thread after the call.

Run: python benchmarks/bench_recording.py
"""

from __future__ import annotations

import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bridge.recording.adapters.writer import Writer
from bridge.recording.model import RecordingInfo, RecordingOptions
from bridge.recording.tap import LegSink, MixSink, Tap

RATE = 16000
N_SAMPLES = RATE // 50


def tick_cost(n: int, legs: bool, ticks: int = 300) -> float:
    tap = Tap(max_ticks=10**9)
    mix = MixSink(tap)
    sinks = [LegSink(tap, i + 1) for i in range(n)] if legs else []
    frame = (np.random.default_rng(0).standard_normal(N_SAMPLES) * 3000).astype(np.int16)
    times = []
    for _ in range(ticks):
        t0 = time.perf_counter()
        mix.write(frame, RATE)
        for s in sinks:
            s.write(frame, RATE)
        times.append(time.perf_counter() - t0)
        if len(tap.items) > 50 * (n + 1):
            tap.items.clear()            # keep memory flat; not timed
    return float(np.median(times)) * 1e6


def writer_cost(n: int, ticks: int) -> tuple[float, float]:
    """(writer µs per tick, finish seconds per recorded second)."""
    with tempfile.TemporaryDirectory() as tmp:
        tap = Tap(max_ticks=10**9)
        info = RecordingInfo(id="rec_bench", conference_id="c", account_id="a", options=RecordingOptions(),
                             state="recording", started_at=datetime.now(timezone.utc), rate=RATE)
        done: list[RecordingInfo] = []
        writer = Writer(Path(tmp) / "rec", info, tap, "libopus", done.append)
        mix = MixSink(tap)
        frame = (np.random.default_rng(0).standard_normal(N_SAMPLES) * 3000).astype(np.int16)
        sinks = []
        for i in range(n):
            tap.legs += 1
            tap.mark("join", i + 1, participant_id=f"p{i}")
            sinks.append(LegSink(tap, i + 1))
        for _ in range(ticks):           # everything queued first: the writer then runs flat out
            mix.write(frame, RATE)
            for s in sinks:
                s.write(frame, RATE)
        tap.close()
        thread = threading.Thread(target=writer.run)
        cpu0 = time.thread_time()
        t0 = time.perf_counter()
        thread.start()
        # The finish starts when the timeline ends; time the two phases from the outside.
        parts = Path(tmp) / "rec" / "mix.pcm.part"
        while thread.is_alive() and not (parts.exists() and parts.stat().st_size >= ticks * N_SAMPLES * 2 - 1
                                         and not tap.items):
            time.sleep(0.001)
        t1 = time.perf_counter()
        thread.join()
        t2 = time.perf_counter()
        del cpu0
        assert done and done[0].state == "saved", done
        seconds = ticks / 50
        return (t1 - t0) / ticks * 1e6, (t2 - t1) / seconds


def main() -> None:
    print(f"{'N':>6} | {'tick mix µs':>11} | {'tick multitrack µs':>18} | {'writer µs/tick':>14} | "
          f"{'finish s per s':>14}")
    print(f"{'-' * 6}-|-{'-' * 11}-|-{'-' * 18}-|-{'-' * 14}-|-{'-' * 14}")
    for n in (10, 100, 1000):
        ticks = 250 if n < 1000 else 100
        w, f = writer_cost(n, ticks)
        print(f"{n:>6} | {tick_cost(n, False):>11.1f} | {tick_cost(n, True):>18.1f} | {w:>14.0f} | {f:>14.2f}")


if __name__ == "__main__":
    main()
