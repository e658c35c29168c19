"""One room over two nodes under load, next to the same load on one node (README "One room across nodes").

Starts the local cluster of scripts/cluster.py (redis-server, two bridge nodes in cluster mode,
Kamailio in front; every port and file under a temporary folder), with the room ``demo`` at
16 kHz and ``cascade.part_size`` = ``--part-size`` (0: the whole room on one node). Then, all
through Kamailio:

1. a baresip listener dials ``demo`` (it lands on the node hashing picks, which owns the room);
2. the SIP load generator places ``--n/2`` calls, the first two of them talkers (300 and 337 Hz
   tones); past the part size the owner redirects callers to the other node's part;
3. a baresip talker (1000 Hz) and a second baresip listener dial in: with a part size they land on
   the part node, so the three talkers sit on different nodes;
4. a second load generator places the other ``--n/2`` calls (silent).

While all of them are in, it samples both bridge processes' CPU time over ``--window`` seconds
(% of one core per participant, both nodes together) and each node's seated callers; the load
generators report the media loss of their legs; the three baresip phones' recordings are checked
by Goertzel for every talker (each listener must hear all three, the talker the other two).

The load generator is the SIP load generator of the side-by-side harness (``sipload.py``, which
drives ``rtpload.py`` next to it); give its path with ``--sipload``.

Run: python benchmarks/bench_cascade_load.py --sipload PATH/sipload.py [--n 600] [--part-size 300]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.calls import Participant, participants  # noqa: E402  (the test suite's baresip harness)
from tests.e2e.peers import audio  # noqa: E402
from tests.e2e.peers.ports import PortAllocator  # noqa: E402

PROXY, REDIS, SIP_BASE, HTTP_BASE, RTP_BASE, RTP_PORTS = 35060, 36379, 35071, 38081, 40000, 2000
TALKER_TONES = (300.0, 337.0)     # the load generator's first two talkers (tone 300 + 37 k Hz)
BARESIP_TONE = 1000.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cluster_env(run: Path) -> dict[str, str]:
    return {**os.environ, "TUTTI_CLUSTER_RUN": str(run), "TUTTI_PROXY_PORT": str(PROXY),
            "TUTTI_REDIS_PORT": str(REDIS), "TUTTI_NODE_SIP_BASE": str(SIP_BASE),
            "TUTTI_NODE_HTTP_BASE": str(HTTP_BASE), "TUTTI_NODE_RTP_BASE": str(RTP_BASE),
            "TUTTI_NODE_RTP_PORTS": str(RTP_PORTS)}


def base_config(run: Path, part_size: int) -> Path:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["rooms"] = [{"name": "demo", "dial_in_code": "1000", "account": "acct_demo", "rate": 16000,
                     "max_participants": 1000}]
    cfg["cascade"] = {"part_size": part_size}
    cfg["log_level"] = "warning"
    cfg["rtp"] = {**cfg.get("rtp", {}), "inactivity_timeout_s": 120}
    path = run / "base.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def cluster(command: str, run: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "cluster.py"), command, *args], check=True,
                   env=cluster_env(run), cwd=ROOT, timeout=120, stdout=subprocess.DEVNULL)


def node_pid(run: Path, i: int) -> int:
    return int((run / f"node{i + 1}.pid").read_text())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK       # utime + stime, all threads


def seated(i: int) -> int:
    """SIP legs in the room on node i (its /metrics: the node's own callers, plus its cascade trunk)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_BASE + i}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0
    match = re.search(r'^tutti_calls\{state="in_room"\} ([0-9.e+]+)$', text, re.M)
    return int(float(match.group(1))) if match else 0


def wait_seated(total: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = [seated(0), seated(1)]
        if sum(counts) >= total or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def sipload(args: argparse.Namespace, run: Path, name: str, n: int, local_base: int, duration: float,
            talkers_silent: bool) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, args.sipload, "--target", f"127.0.0.1:{PROXY}", "--room", "demo", "--n", str(n),
           "--cps", "50", "--local-base", str(local_base), "--duration", str(duration), "--warmup", "5",
           "--talkers", "1" if talkers_silent else "2", "--out", str(run / f"{name}.json"),
           "--setup-timeout", "20"]
    if talkers_silent:
        cmd += ["--amplitude", "0"]           # its "talker" sends digital silence: all 300 are listeners
    for i in range(2):
        cmd += ["--bridge-pid", str(node_pid(run, i))]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(run / f"{name}.log", "wb"))


def heard_tones(person: Participant, seconds: float) -> dict[float, float]:
    samples, rate = person.phone.heard()
    end = len(samples) / rate - 0.5
    samples = audio.segment(samples, rate, max(0.0, end - seconds), end)
    return {f: audio.tone_level_db(samples, rate, f) for f in (*TALKER_TONES, BARESIP_TONE)}


def run_once(args: argparse.Namespace, part_size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tutti-cascade-load-") as tmp:
        run = Path(tmp)
        half = args.n // 2
        try:
            cluster("up", run, "2", "--config", str(base_config(run, part_size)))
            ports = PortAllocator()
            specs: list[tuple[str, str, float | None]] = [
                ("listen_a", "PCMU", None), ("talker_b", "PCMU", BARESIP_TONE), ("listen_b", "PCMU", None)]
            seconds = 60.0 + args.window
            with participants(run, ports, specs, seconds=seconds) as people:
                listen_a, talker_b, listen_b = people
                listen_a.phone.dial(f"sip:demo@127.0.0.1:{PROXY}")
                listen_a.phone.wait_event("CALL_ESTABLISHED", timeout=10)
                first = sipload(args, run, "load1", half, 44000, seconds, talkers_silent=False)
                wait_seated(half + 1, 60)
                for p in (talker_b, listen_b):
                    p.phone.dial(f"sip:demo@127.0.0.1:{PROXY}")
                    p.phone.wait_event("CALL_ESTABLISHED", timeout=10)
                second = sipload(args, run, "load2", args.n - half, 44000 + 4 * half, args.window + 20,
                                 talkers_silent=True)
                wait_seated(args.n + 3, 60)
                time.sleep(5)                                     # the second generator's warm-up
                pids = [node_pid(run, 0), node_pid(run, 1)]
                before = [cpu_seconds(p) for p in pids]
                t0 = time.monotonic()
                time.sleep(args.window)
                spent = [cpu_seconds(p) - b for p, b in zip(pids, before)]
                elapsed = time.monotonic() - t0
                counts = [seated(0), seated(1)]
                for p in people:
                    p.phone.hangup()
                tones = {p.name: heard_tones(p, args.window) for p in people}
                for proc in (first, second):
                    proc.wait(timeout=seconds + 120)
            loads = [json.loads((run / f"load{k}.json").read_text()) for k in (1, 2)]
        finally:
            cluster("down", run)
    if part_size:
        counts = [c - 1 for c in counts]          # each node's end of the cascade trunk is no caller
    total = sum(counts)
    return {
        "part_size": part_size, "seated": counts,
        "cpu_pct": [100.0 * s / elapsed for s in spent],
        "cpu_pct_per_participant": 100.0 * sum(spent) / elapsed / max(1, total),
        "loss_pct": [ld["summary"]["loss_pct"] for ld in loads],
        "calls_failed": [ld["summary"]["calls_failed"] for ld in loads],
        "tones_db": tones,
    }


def hears_all(tones: dict[str, dict[float, float]]) -> str:
    """Per phone, the talkers it hears (tone within 20 dB of the strongest): the check's verdict."""
    out = []
    for name, levels in tones.items():
        expect = [f for f in (*TALKER_TONES, BARESIP_TONE) if not (name == "talker_b" and f == BARESIP_TONE)]
        loudest = max(levels[f] for f in expect)
        missing = [f for f in expect if levels[f] < loudest - 20 or levels[f] < -45]
        out.append(f"{name}: {'all' if not missing else 'MISSING ' + ','.join(f'{m:.0f}' for m in missing)}")
    return "; ".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sipload", required=True, help="path of the harness's sipload.py")
    parser.add_argument("--n", type=int, default=600, help="load-generator callers (plus 3 baresip phones)")
    parser.add_argument("--part-size", type=int, default=300)
    parser.add_argument("--window", type=float, default=20.0, help="seconds of CPU sampling")
    args = parser.parse_args()
    rows = [run_once(args, 0), run_once(args, args.part_size)]
    print(f"\n{args.n} load callers + 3 baresip phones, room demo at 16 kHz, PCMU, 3 talkers; "
          f"{time.strftime('%Y-%m-%d')}")
    print("| layout | callers per node | CPU, % of a core (node 1 / node 2) | % of a core per participant "
          "| loss % (load 1 / load 2) | failed calls | every phone hears every talker |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        layout = "one node" if row["part_size"] == 0 else f"two nodes, part size {row['part_size']}"
        cpu = " / ".join(f"{c:.1f}" for c in row["cpu_pct"])
        loss = " / ".join(f"{x:.2f}" for x in row["loss_pct"])
        print(f"| {layout} | {row['seated'][0]} / {row['seated'][1]} | {cpu} | "
              f"{row['cpu_pct_per_participant']:.3f} | {loss} | {sum(row['calls_failed'])} | "
              f"{hears_all(row['tones_db'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
