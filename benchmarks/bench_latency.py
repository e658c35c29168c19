"""One-way delay the bridge adds, measured through the real bridge process on loopback.

Starts ``python -m bridge`` (bench_media_path's generated config: one 8 kHz PCMU room), places
two calls with hand-written SIP (loadgen.py), and sends RTP from both at 50 packets/s paced by
absolute deadlines, as a phone does. The talker's stream is faint noise with a 20 ms tone burst
every ``--every`` seconds, starting at the first sample of a packet; the listener records the
bridge's RTP with its arrival time. For each burst the added delay is

    (arrival of the packet holding the onset + onset offset in it) - (send time of the burst packet)

i.e. how much later a far end playing packets as they arrive would hear the onset than if the
talker's packet had come to it directly. The bridge's tick phase relative to the talker's
packets is arbitrary (independent clocks), so the spread over bursts is one frame wide.

Run: python benchmarks/bench_latency.py [--bursts 40] [--every 0.5]
"""

from __future__ import annotations

import argparse
import math
import random
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_media_path import free_port, free_sip_port, stop, wait_http, write_config
from loadgen import Leg, bind_pair, setup_calls

from bridge_codecs import make_decoder, make_encoder

FRAME = 0.02
RATE = 8000
N = 160
THRESHOLD = 3000      # onset: first sample above ~-21 dBov (the noise is ~-70 dBov)


def payloads() -> tuple[bytes, bytes, int]:
    """(noise payload, burst payload, onset sample of the burst by the same threshold)."""
    enc = make_encoder("PCMU")
    noise = enc.encode(np.random.default_rng(1).normal(0, 8, N).astype(np.int16))
    t = np.arange(N) / RATE
    burst = (np.sin(2 * math.pi * 1000 * t + math.pi / 2) * 16000).astype(np.int16)
    dec = make_decoder("PCMU").decode(enc.encode(burst))
    onset = int(np.argmax(np.abs(dec.astype(int)) > THRESHOLD))
    return noise, enc.encode(burst), onset


def rtp(leg: Leg, payload: bytes) -> bytes:
    head = struct.pack("!BBHII", 0x80, 0, leg.seq & 0xFFFF, leg.ts & 0xFFFFFFFF, leg.ssrc)
    leg.seq += 1
    leg.ts += N
    return head + payload


def measure(args: argparse.Namespace, legs: list[Leg]) -> list[float]:
    noise, burst, src_onset = payloads()
    decode = make_decoder("PCMU")
    talker, listener = legs
    assert talker.remote and listener.remote
    every = max(1, round(args.every / FRAME))
    frames = every * (args.bursts + 1)
    sent: list[float] = []                  # send time of each burst packet
    got: list[tuple[float, bytes]] = []     # listener's packets with arrival time
    t0 = time.monotonic() + 0.05
    for k in range(frames + 10):
        deadline = t0 + k * FRAME
        while True:                         # receive until the next send deadline
            wait = deadline - time.monotonic()
            ready, _, _ = select.select([listener.rtp, talker.rtp], [], [], max(0.0, wait))
            now = time.monotonic()
            for sock in ready:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    continue
                if sock is listener.rtp and len(data) > 12:
                    got.append((now, data[12:]))
            if wait <= 0:
                break
        is_burst = k >= every and k % every == 0 and k < frames
        now = time.monotonic()
        talker.rtp.sendto(rtp(talker, burst if is_burst else noise), talker.remote)
        listener.rtp.sendto(rtp(listener, noise), listener.remote)
        if is_burst:
            sent.append(now + src_onset / RATE)
    # Onsets heard: the first loud sample after at least 100 ms below the threshold.
    heard: list[float] = []
    quiet_since = -1.0
    for arrival, payload in got:
        pcm = np.abs(decode.decode(payload).astype(int))
        loud = np.flatnonzero(pcm > THRESHOLD)
        if loud.size and arrival - quiet_since > 0.1:
            heard.append(arrival + int(loud[0]) / RATE)
        if loud.size:
            quiet_since = arrival
    delays = []
    for s in sent:
        after = [h - s for h in heard if 0 <= h - s < 0.5]
        if after:
            delays.append(min(after))
    return delays


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bursts", type=int, default=40)
    ap.add_argument("--every", type=float, default=0.5)
    ap.add_argument("--jitter-min-ms", type=int, default=None, help="rtp.jitter_min_ms for the bridge")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tutti-latency-"))
    sip_port, http_port = free_sip_port(), free_port(socket.SOCK_STREAM)
    rtp_lo = random.randrange(20000, 26000) & ~1
    config = write_config(workdir, sip_port, http_port, rtp_lo, rtp_lo + 200)
    if args.jitter_min_ms is not None:
        import yaml
        cfg = yaml.safe_load(config.read_text())
        cfg["rtp"]["jitter_min_ms"] = args.jitter_min_ms
        config.write_text(yaml.safe_dump(cfg))
    bridge = None
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with open(workdir / "bridge.log", "wb") as log:
            bridge = subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(config)],
                                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      cwd=workdir)
        wait_http(http_port, bridge, 20)
        sip.bind(("127.0.0.1", 0))
        sip.setblocking(False)
        legs = []
        for i in range(2):
            a, b, port = bind_pair("127.0.0.1", rtp_lo + 1000 + 2 * random.randrange(0, 2000))
            legs.append(Leg(i, a, b, port, f"lat{i}-{random.getrandbits(32):x}", f"t{i}",
                            f"z9hG4bKlat{i}x{random.getrandbits(32):x}", [], random.getrandbits(32), 0))
        ns = argparse.Namespace(host="127.0.0.1", sip_port=sip_port, room="bench", setup_s=0.2, dtmf=False)
        setup_calls(ns, legs, sip, sip.getsockname()[1])
        time.sleep(1.0)          # past the join prompt/beep (beep: never) and the RTP learning
        delays = measure(args, legs)
    finally:
        stop(bridge)
        sip.close()
    if not delays:
        print("no burst came through", file=sys.stderr)
        return 1
    ms = np.array(delays) * 1000
    print(f"# {time.strftime('%Y-%m-%d')} PCMU, 8 kHz room, loopback, {len(ms)} of {args.bursts} bursts, "
          f"jitter_min_ms={args.jitter_min_ms if args.jitter_min_ms is not None else 'default'}")
    print(f"one-way added delay ms: median {np.median(ms):.1f}  min {ms.min():.1f}  "
          f"p90 {np.percentile(ms, 90):.1f}  max {ms.max():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
