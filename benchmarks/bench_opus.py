"""What an Opus encode costs the bridge: median microseconds per 20 ms frame (48 kHz mono,
32 kbit/s) by complexity, backend (system libopus through ctypes vs PyAV's FFmpeg), content
(speech, digital silence, quiet room noise) and DTX; plus the bytes per frame each sends.

Run: python benchmarks/bench_opus.py [--frames 250] [--repeats 7]   (a few minutes; one thread)
Speech is espeak-ng's (Harvard sentences with pauses, as bench_quality.py uses) when espeak-ng and
sox are installed, else a synthetic voiced signal. Tables are Markdown, ready for the README.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import time
from collections.abc import Callable

import numpy as np
from bridge_codecs import Resampler, libopus
from bridge_codecs.opus import OpusEncoder

Pcm = np.ndarray


def speech_48k(frames: int) -> tuple[Pcm, str]:
    n = frames * 960
    if shutil.which("espeak-ng") and shutil.which("sox"):
        from bench_quality import espeak_speech

        x16 = espeak_speech()
        x = Resampler(16000, 48000).process(x16[: len(x16) // 320 * 320])
        label = "espeak-ng speech (with pauses)"
    else:
        t = np.arange(n) / 48000
        x = sum(3000 / k * np.sin(2 * np.pi * 140 * k * t) for k in range(1, 40))
        x = np.clip(x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)), -32768, 32767).astype(np.int16)
        label = "synthetic voiced signal"
    reps = -(-n // len(x))
    return np.tile(x, reps)[:n], label


def room_noise(frames: int) -> Pcm:
    """Pink-ish noise at about -60 dBFS: an open microphone in a quiet room."""
    rng = np.random.default_rng(5)
    white = rng.normal(0, 1, frames * 960)
    pink = np.convolve(white, np.ones(8) / 8, mode="same") * 33
    return np.rint(pink).astype(np.int16)


def per_frame_us(fn: Callable[[int], object], count: int, repeats: int) -> float:
    """The fastest of ``repeats`` passes over the same frames: on a shared machine other work
    only ever adds time, so the minimum is the encoder's own cost."""
    fn(0)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(count):
            fn(i)
        runs.append((time.perf_counter() - start) / count * 1e6)
    return min(runs)


def measure(pcm: Pcm, frames: int, repeats: int, **opts: object) -> tuple[float, float]:
    """(µs per frame, mean bytes per frame) for a fresh encoder over ``frames`` frames."""
    chunks = [pcm[i * 960:(i + 1) * 960] for i in range(frames)]
    sizes = [len(p) for p in map(OpusEncoder(**opts).encode, chunks)]   # type: ignore[arg-type]
    enc = OpusEncoder(**opts)                                           # type: ignore[arg-type]
    return per_frame_us(lambda i: enc.encode(chunks[i]), frames, repeats), float(np.mean(sizes))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--bitrate", type=int, default=32000)
    args = ap.parse_args(argv)
    n, r = args.frames, args.repeats
    speech, label = speech_48k(n)
    inputs = {"speech": speech, "silence": np.zeros(n * 960, np.int16), "room noise": room_noise(n)}
    version = libopus.version()
    native = version is not None
    print(f"# {datetime.date.today()}  Opus encode, 48 kHz mono 20 ms frames, {args.bitrate // 1000} kbit/s, "
          f"{label}; system {version or 'libopus: none'}; PyAV's is its own build; fastest of {r} passes of {n} frames")
    base = {"bitrate": args.bitrate, "packet_loss": 0, "fec": False}
    measure(speech, n, r, complexity=5, **base)      # warm-up: CPU clock, page faults, imports
    print("\n## µs per frame by complexity (no FEC, no DTX)\n")
    backends = ([("ctypes", True)] if native else []) + [("PyAV", False)]
    head = ["complexity"] + [f"{b} {k}" for b, _ in backends for k in ("speech", "silence")] + ["bytes/frame speech"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for c in range(11):
        cells = [str(c)]
        size = 0.0
        for _, nat in backends:
            for kind in ("speech", "silence"):
                us, b = measure(inputs[kind], n, r, complexity=c, native=nat, **base)
                cells.append(f"{us:.0f}")
                if kind == "speech" and nat == backends[0][1]:
                    size = b
        cells.append(f"{size:.0f}")
        print("| " + " | ".join(cells) + " |", flush=True)
    print("\n## DTX and FEC: µs per frame / bytes per frame\n")
    cases = [("no DTX", {}), ("DTX", {"dtx": True}), ("FEC for 10 % loss", {"packet_loss": 10, "fec": True})]
    head = ["backend", "complexity", "setting"] + list(inputs)
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, nat in backends:
        for c in (5, 10) if nat else (5,):
            for setting, extra in cases if nat else [cases[0], cases[2]]:   # PyAV: no DTX
                cells = [name, str(c), setting]
                for pcm in inputs.values():
                    us, b = measure(pcm, n, r, complexity=c, native=nat, **{**base, **extra})
                    cells.append(f"{us:.0f} / {b:.0f}")
                print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
