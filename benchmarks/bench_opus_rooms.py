"""Room tick cost for Opus callers in a 48 kHz room (the issue-16 Opus rows, in process), by the
bridge's Opus encoder settings: 3 talkers of N = 100, and everyone talking at N = 40 with the
talker cap at its default and off.

As bench_room_shapes.py: real RtpSession/JitterBuffer ports (no sockets), packets fed outside the
timed region, CPU time of the ticking thread, median over ticks. The callers' packets are
encoded once beforehand (each talker a different stretch of speech; the others low room
noise, which an open microphone sends). Run: python benchmarks/bench_opus_rooms.py [--ticks 150]
[--settings "complexity=5;complexity=10;complexity=5,native=0"]

``--sockets`` measures the receive path as well: every leg has its own loopback UDP socket in the
socket adapter (``BatchReceiver``, ``LegPort``, steady lanes), one peer socket sends each tick's
datagrams outside the timed region, and the timed region is what the media clock runs per tick
(``receive``, ``Room.tick``, ``transmit``, ``drain``). ``--lanes on no-opus-rx off`` compares all
steady lanes, all but the Opus receive lanes (the bridge before them) and none in one run,
alternating (``--repeat`` rounds; the table shows medians and every round).
"""

from __future__ import annotations

import argparse
import datetime
import shutil
from typing import Any

import numpy as np
from bench_opus_sockets import LANE_MODES, sockets_tick_ms
from bench_room_shapes import room_cap, tick_ms  # a sibling script (python benchmarks/...)
from bridge_codecs import Resampler, make_encoder

from bridge.call.leg import encoder_options
from bridge.config import Config, MediaConfig
from bridge.media.room import Room

SCENARIOS = [(100, 3), (40, None)]      # (N, talkers; None: everyone)
SOCKET_SCENARIOS = [(100, 3), (40, 3), (40, None)]
FRAMES = 100


def streams() -> tuple[list[list[bytes]], list[bytes]]:
    """Eight voices and -60 dBFS room noise, as a browser would send them (Opus, complexity 9).

    Voices are espeak-ng speech (bench_quality.py's sentences, a different second each) over
    -45 dBFS noise, so an open microphone stays open between words, when espeak-ng and sox are
    installed; else harmonic tones with a syllable envelope. Opus's mode choice depends on the
    signal (tones are coded as music, more cheaply), so speech is the honest input."""
    rng = np.random.default_rng(1)
    t = np.arange(FRAMES * 960) / 48000
    speech = None
    if shutil.which("espeak-ng") and shutil.which("sox"):
        from bench_quality import espeak_speech

        x16 = espeak_speech()
        speech = Resampler(16000, 48000).process(x16[: len(x16) // 320 * 320])
    voices = []
    for v in range(8):
        if speech is not None:
            start = (v * 61 * 960) % (len(speech) - FRAMES * 960)
            floor = rng.standard_normal(FRAMES * 960) * 180
            x = np.clip(speech[start:start + FRAMES * 960] + floor, -32768, 32767).astype(np.int16)
        else:
            f0 = 120 + 23 * v
            tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
            x = (4000 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * (2 + v) * t))).astype(np.int16)
        enc = make_encoder("opus", native=False, complexity=9)
        voices.append([enc.encode(x[i * 960:(i + 1) * 960]) for i in range(FRAMES)])
    enc = make_encoder("opus", native=False, complexity=9)
    noise = (rng.standard_normal(FRAMES * 960) * 30).astype(np.int16)
    return voices, [enc.encode(noise[i * 960:(i + 1) * 960]) for i in range(FRAMES)]


def run(n: int, talkers: int | None, cap: int | None, ticks: int, opts: dict[str, Any]) -> float:
    voices, noise = streams()
    opts = dict(opts)
    skip = bool(opts.pop("skip_inactive", True))     # a room setting (media.opus_skip_inactive)
    return tick_ms(Room("bench", 48000, max_talkers=room_cap(cap), skip_inactive=skip), voices, noise,
                   n, talkers, ticks, "opus", 111, 48000, opts)


def run_sockets(n: int, talkers: int | None, cap: int | None, ticks: int, opts: dict[str, Any],
                lanes: str) -> float:
    voices, noise = streams()
    opts = dict(opts)
    skip = bool(opts.pop("skip_inactive", True))
    room = Room("bench", 48000, max_talkers=room_cap(cap), skip_inactive=skip)
    return sockets_tick_ms(room, voices, noise, n, talkers, ticks, opts, lanes)


def main_sockets(args: argparse.Namespace, base: dict[str, Any]) -> None:
    print(f"# {datetime.date.today()}  48 kHz room, Opus callers on loopback sockets (receive, tick, "
          f"send, drain), lanes {args.lanes} alternating, {args.repeat} round(s); bridge defaults {base}")
    print("| lanes | N | talkers | cap | tick ms (median CPU, median of rounds) | rounds | "
          "% of a core per participant |")
    print("|---|---|---|---|---|---|---|")
    for n, talkers in SOCKET_SCENARIOS:
        for cap in ((None, 0) if talkers is None else (None,)):
            got: dict[str, list[float]] = {lanes: [] for lanes in args.lanes}
            for _ in range(args.repeat):
                for lanes in args.lanes:
                    got[lanes].append(run_sockets(n, talkers, cap, args.ticks, base, lanes))
            label = f"{MediaConfig().max_talkers} (default)" if cap is None else "off"
            for lanes, values in got.items():
                ms = float(np.median(values))
                rounds = " ".join(f"{v:.2f}" for v in values)
                print(f"| {lanes} | {n} | {talkers or 'all'} | {label} | {ms:.2f} | "
                      f"{rounds} | {ms / 20 * 100 / n:.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=150)
    ap.add_argument("--sockets", action="store_true", help="the socket adapter's receive path too")
    ap.add_argument("--lanes", nargs="+", default=list(LANE_MODES[:2]), choices=LANE_MODES,
                    help="with --sockets: steady lanes on, all but Opus receive lanes, off")
    ap.add_argument("--repeat", type=int, default=1, help="with --sockets: alternating rounds")
    ap.add_argument("--settings", default="",
                    help="';'-separated bridge Opus settings to compare, e.g. complexity=5;complexity=10 "
                         "or skip_inactive=0 (default: config.yaml's)")
    args = ap.parse_args()
    base = encoder_options(Config(), "opus")
    if args.sockets:
        main_sockets(args, base)
        return
    variants = [{k: int(v) for k, v in (kv.split("=") for kv in spec.split(",") if kv)}
                for spec in args.settings.split(";")] if args.settings else [{}]
    print(f"# {datetime.date.today()}  48 kHz room, Opus callers; bridge defaults {base}")
    print("| bridge settings | N | talkers | cap | tick ms (median CPU) | % of a core per participant |")
    print("|---|---|---|---|---|---|")
    for extra in variants:
        opts = {**base, **extra}
        for n, talkers in SCENARIOS:
            for cap in ((None, 0) if talkers is None else (None,)):
                ms = run(n, talkers, cap, args.ticks, opts)
                label = f"{MediaConfig().max_talkers} (default)" if cap is None else "off"
                print(f"| {extra or 'defaults'} | {n} | {talkers or 'all'} | {label} | {ms:.2f} | "
                      f"{ms / 20 * 100 / n:.3f} |", flush=True)


if __name__ == "__main__":
    main()
