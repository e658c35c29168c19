#!/usr/bin/env python3
"""Regenerate the built-in voice prompts in bridge/prompts/ from bridge.media.prompts.PROMPT_TEXT.

The WAVs are committed; run this only when the wording changes. Needs espeak-ng and sox.
Output: 16 kHz mono 16-bit WAV, peak-normalised to -3 dBFS, leading/trailing silence
trimmed and pauses inside a sentence capped at 150 ms (16-bit 16 kHz costs 32 KB per
second of speech), no dither (so regenerating is byte-reproducible), and 5 ms fades at
both ends so a prompt never starts or ends with a click.

    python scripts/make_prompts.py [--out DIR] [--voice en-us] [--speed 160] [names...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bridge.media.prompts import PROMPT_DIR, PROMPT_TEXT


def make(name: str, text: str, out_dir: Path, voice: str, speed: int, tmp: Path) -> Path:
    raw = tmp / f"{name}.wav"
    out = out_dir / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
    # The silence effect trims the start (and with -1, long inner pauses down to 150 ms);
    # reverse lets the same effect trim the end. Fades sit before each reverse.
    subprocess.run([
        "sox", "-D", str(raw), "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", str(out),
        "gain", "-n", "-3",
        "silence", "-l", "1", "0.01", "0.3%", "-1", "0.15", "0.3%", "fade", "t", "0.005",
        "reverse", "silence", "1", "0.01", "0.3%", "fade", "t", "0.005", "reverse",
    ], check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=PROMPT_DIR)
    ap.add_argument("--voice", default="en-us")
    ap.add_argument("--speed", type=int, default=160,
                    help="words per minute; a little under espeak's 175, clearer on a phone")
    ap.add_argument("names", nargs="*", help="only these prompts (default: all)")
    args = ap.parse_args(argv)
    unknown = set(args.names) - set(PROMPT_TEXT)
    if unknown:
        ap.error(f"unknown prompt(s): {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names or sorted(PROMPT_TEXT):
            path = make(name, PROMPT_TEXT[name], args.out, args.voice, args.speed, Path(tmp))
            print(f"{path}  {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
