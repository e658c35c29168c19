"""The extra hop of a room spread over two nodes (README "One room across nodes"), measured.

Starts real bridge processes on loopback and measures the one-way delay a listener hears a
talker's burst with, exactly as benchmarks/bench_latency.py does (its ``measure``):

- same node: talker and listener in one bridge's room;
- cascade: node A owns the room (``cascade.part_size: 1``), node B holds its part; the talker
  calls A and the listener calls B (the Request-URI a 302 from A names, ``;tutti-owner=A``),
  then the other way round. B's trunk to A carries the audio between them.

For an 8 kHz room (PCMU trunk) and a 16 kHz room (G.722 trunk; the callers stay on PCMU).

Run: python benchmarks/bench_cascade.py [--bursts 30] [--every 0.5]
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen
from bench_latency import measure
from bench_media_path import free_port, free_sip_port, stop, wait_http, write_config
from loadgen import Leg, bind_pair, setup_calls


class Node:
    def __init__(self, workdir: Path, rate: int, codecs: list[str], cascade: dict[str, Any] | None = None) -> None:
        self.sip_port, http_port = free_sip_port(), free_port(socket.SOCK_STREAM)
        rtp_lo = random.randrange(20000, 30000) & ~1
        config = write_config(workdir, self.sip_port, http_port, rtp_lo, rtp_lo + 100)
        cfg = yaml.safe_load(config.read_text())
        cfg["rooms"][0].update(rate=rate, codecs=codecs)
        if cascade:
            cfg["cascade"] = cascade
        config.write_text(yaml.safe_dump(cfg))
        with open(workdir / "bridge.log", "wb") as log:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", "bridge", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=workdir)
        wait_http(http_port, self.proc, 20)


def call(node: Node, idx: int, owner: int | None = None) -> tuple[Leg, socket.socket]:
    """One call into ``node``'s room (as a redirected caller when ``owner`` is A's SIP port)."""
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(("127.0.0.1", 0))
    sip.setblocking(False)
    a, b, port = bind_pair("127.0.0.1", 40000 + 2 * random.randrange(0, 4000))
    leg = Leg(idx, a, b, port, f"casc{idx}-{random.getrandbits(32):x}", f"t{idx}",
              f"z9hG4bKcasc{idx}x{random.getrandbits(32):x}", [], random.getrandbits(32), 0)
    plain = loadgen.invite

    def redirected(leg: Leg, host: str, sip_port: int, local_sip: int, room: str, dtmf: bool) -> bytes:
        first, rest = plain(leg, host, sip_port, local_sip, room, dtmf).split(b"\r\n", 1)
        return first.replace(b" SIP/2.0", f";tutti-owner=127.0.0.1:{owner} SIP/2.0".encode()) + b"\r\n" + rest

    loadgen.invite = redirected if owner is not None else plain     # type: ignore[assignment]
    try:
        ns = argparse.Namespace(host="127.0.0.1", sip_port=node.sip_port, room="bench", setup_s=0.1, dtmf=False)
        setup_calls(ns, [leg], sip, sip.getsockname()[1])
    finally:
        loadgen.invite = plain          # type: ignore[assignment]
    if leg.remote is None:
        raise RuntimeError("call not answered")
    return leg, sip


def summary(delays: list[float]) -> tuple[float, float, float, int]:
    ms = np.array(delays) * 1000
    return float(np.median(ms)), float(np.percentile(ms, 10)), float(np.percentile(ms, 90)), len(ms)


def scenario(args: argparse.Namespace, rate: int, codecs: list[str]) -> list[tuple[str, tuple[float, ...]]]:
    rows: list[tuple[str, tuple[float, ...]]] = []
    nodes: list[Node] = []
    socks: list[socket.socket] = []
    try:
        one = Node(Path(tempfile.mkdtemp(prefix="tutti-casc-")), rate, codecs)
        nodes.append(one)
        legs = []
        for i in range(2):
            leg, sip = call(one, i)
            legs.append(leg)
            socks.append(sip)
        time.sleep(1.0)
        rows.append(("same node", summary(measure(args, legs))))
        stop(one.proc)
        part = Node(Path(tempfile.mkdtemp(prefix="tutti-casc-b-")), rate, codecs)
        nodes.append(part)
        owner = Node(Path(tempfile.mkdtemp(prefix="tutti-casc-a-")), rate, codecs,
                     {"part_size": 1, "part_nodes": [f"127.0.0.1:{part.sip_port}"]})
        nodes.append(owner)
        on_a, sip_a = call(owner, 10)
        on_b, sip_b = call(part, 11, owner=owner.sip_port)
        socks += [sip_a, sip_b]
        time.sleep(1.5)          # B's trunk to A is up, past the learning windows
        rows.append(("A caller -> B caller", summary(measure(args, [on_a, on_b]))))
        rows.append(("B caller -> A caller", summary(measure(args, [on_b, on_a]))))
    finally:
        for node in nodes:
            stop(node.proc)
        for sock in socks:
            sock.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bursts", type=int, default=30)
    ap.add_argument("--every", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes (new tick phases) per room")
    args = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d')} one-way added delay, loopback, PCMU callers, {args.bursts} bursts each")
    print(f"{'room / trunk':<16} {'round':>5} {'path':<22} {'median ms':>9} {'p10':>6} {'p90':>6}  extra hop")
    for rate, codecs, trunk in ((8000, ["PCMU"], "PCMU"), (16000, ["G722", "PCMU"], "G.722")):
        extras: list[float] = []
        for k in range(args.rounds):
            rows = scenario(args, rate, codecs)
            base = rows[0][1][0]
            for path, (median, p10, p90, _n) in rows:
                extra = "" if path == "same node" else f"{median - base:+.1f} ms"
                print(f"{f'{rate // 1000} kHz / {trunk}':<16} {k + 1:5d} {path:<22} {median:9.1f} {p10:6.1f} "
                      f"{p90:6.1f}  {extra}")
            # Each process's tick phase is random: the two directions of one call share it out.
            extras.append((rows[1][1][0] + rows[2][1][0] - 2 * base) / 2)
        print(f"{f'{rate // 1000} kHz / {trunk}':<16} extra hop per direction, mean of the two directions: "
              + ", ".join(f"{e:+.1f}" for e in extras) + f" ms (mean {np.mean(extras):+.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
