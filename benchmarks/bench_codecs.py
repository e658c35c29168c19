"""Median microseconds per 20 ms frame for every codec path and resampler pair.

Run: python benchmarks/bench_codecs.py   (about 10-20 s; single thread)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import av
import numpy as np

from bridge_codecs import Resampler, make_decoder, make_encoder

FRAMES = 300      # 6 s of audio per measurement
REPEATS = 5       # medians of per-frame times over REPEATS passes


def speech_like(rate: int, seconds: float = FRAMES * 0.02) -> np.ndarray:
    """Voiced-ish test signal: harmonics of 140 Hz plus noise, so codecs do real work."""
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(0)
    x = sum(3000 / k * np.sin(2 * np.pi * 140 * k * t) for k in range(1, 20) if 140 * k < rate / 2)
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + rng.normal(0, 300, len(t))
    return np.clip(x, -32768, 32767).astype(np.int16)


def per_frame_us(fn: Callable[[int], object], count: int) -> float:
    """Median over REPEATS passes of (pass time / count), in microseconds."""
    fn(0)                                     # warm-up (lazy init, caches)
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for i in range(count):
            fn(i)
        samples.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(samples)


def bench_codec(name: str, rate: int) -> tuple[float, float]:
    n = rate // 50
    pcm = speech_like(rate)
    frames = [pcm[i * n:(i + 1) * n] for i in range(FRAMES)]
    enc = make_encoder(name, sample_rate=rate) if name == "L16" else make_encoder(name)
    payloads = [enc.encode(f) for f in frames]
    enc_us = per_frame_us(lambda i: enc.encode(frames[i]), FRAMES)
    dec = make_decoder(name, sample_rate=rate) if name == "L16" else make_decoder(name)
    dec_us = per_frame_us(lambda i: dec.decode(payloads[i]), FRAMES)
    return enc_us, dec_us


def bench_pyav_pcm(codec: str) -> tuple[float, float]:
    """Baseline: the same G.711 through PyAV, one AudioFrame/Packet per frame as usual."""
    pcm = speech_like(8000)
    frames = [pcm[i * 160:(i + 1) * 160] for i in range(FRAMES)]
    enc = av.CodecContext.create(codec, "w")
    enc.sample_rate, enc.format, enc.layout = 8000, "s16", "mono"
    enc.open()

    def encode(i: int) -> bytes:
        frame = av.AudioFrame.from_ndarray(frames[i][None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = 8000, i * 160
        return b"".join(bytes(p) for p in enc.encode(frame))

    payloads = [encode(i) for i in range(FRAMES)]
    dec = av.CodecContext.create(codec, "r")
    dec.sample_rate, dec.layout = 8000, "mono"

    def decode(i: int) -> np.ndarray:
        return np.concatenate([f.to_ndarray()[0] for f in dec.decode(av.Packet(payloads[i]))])

    return per_frame_us(encode, FRAMES), per_frame_us(decode, FRAMES)


def bench_resampler(in_rate: int, out_rate: int) -> float:
    n = in_rate // 50
    pcm = speech_like(in_rate)
    frames = [pcm[i * n:(i + 1) * n] for i in range(FRAMES)]
    r = Resampler(in_rate, out_rate)
    return per_frame_us(lambda i: r.process(frames[i]), FRAMES)


def bench_pyav_resampler(in_rate: int, out_rate: int) -> float:
    """Baseline: PyAV's AudioResampler (swresample), frame in -> frames out."""
    n = in_rate // 50
    pcm = speech_like(in_rate)
    frames = [pcm[i * n:(i + 1) * n] for i in range(FRAMES)]
    r = av.AudioResampler(format="s16", layout="mono", rate=out_rate)

    def run(i: int) -> list[av.AudioFrame]:
        frame = av.AudioFrame.from_ndarray(frames[i][None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = in_rate, i * n
        return r.resample(frame)

    return per_frame_us(run, FRAMES)


def main() -> None:
    rows: list[tuple[str, str, str]] = []
    for name, baseline in (("PCMU", "pcm_mulaw"), ("PCMA", "pcm_alaw")):
        e, d = bench_codec(name, 8000)
        rows.append((f"{name} (numpy tables)", f"{e:8.1f}", f"{d:8.1f}"))
        e, d = bench_pyav_pcm(baseline)
        rows.append((f"{name} (PyAV {baseline}, baseline)", f"{e:8.1f}", f"{d:8.1f}"))
    for rate in (8000, 16000, 48000):
        e, d = bench_codec("L16", rate)
        rows.append((f"L16 @ {rate // 1000} kHz", f"{e:8.1f}", f"{d:8.1f}"))
    e, d = bench_codec("G722", 16000)
    rows.append(("G722 (PyAV)", f"{e:8.1f}", f"{d:8.1f}"))
    e, d = bench_codec("opus", 48000)
    rows.append(("opus 48k mono 32 kb/s cx5 FEC (PyAV libopus)", f"{e:8.1f}", f"{d:8.1f}"))
    print(f"{'codec (median us per 20 ms frame)':48} {'encode':>8} {'decode':>8}")
    for label, e_s, d_s in rows:
        print(f"{label:48} {e_s} {d_s}")
    print()
    print(f"{'resampler (median us per 20 ms frame)':48} {'numpy':>8} {'PyAV swr':>8}")
    for pair in ((8000, 16000), (16000, 8000), (8000, 48000), (48000, 8000), (16000, 48000), (48000, 16000)):
        ours, theirs = bench_resampler(*pair), bench_pyav_resampler(*pair)
        print(f"{f'{pair[0] // 1000}k -> {pair[1] // 1000}k':48} {ours:8.1f} {theirs:8.1f}")


if __name__ == "__main__":
    main()
