"""Slowloris against the HTTP API, before and after the HTTP bounds (README "Security", attack table).

Starts a real bridge with a small open-file limit (``--nofile``, soft = hard, so the attack can
reach it quickly), then ``--connections`` sockets from 127.0.0.2 drip request headers one byte a
second, reopening any the bridge closes or refuses, while a normal client on 127.0.0.1 makes an
authenticated REST request every half second. "before" runs with every HTTP bound switched off
(``header_timeout_s: 0``, ``body_timeout_s: 0``, ``max_connections: 0``,
``max_connections_per_source: 0``, i.e. aiohttp as it was), "after" with the defaults in config.yaml
(the header timeout shortened by ``--header-timeout`` so the run stays short).

    python benchmarks/http_slowloris.py [--connections 500] [--seconds 20] [--nofile 400]

Prints one row per mode: connections the attacker holds open (median and maximum of one-a-second
samples; the maximum includes refusals not yet read), connections the bridge closed or refused, and
the normal client's successes, failures and median/max latency. Out of descriptors, uvloop (libuv)
accepts and closes new connections at once, which is why "before" shows many "closed" and failures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.e2e.peers.ports import PortAllocator  # noqa: E402
from tests.support.bridge_proc import DEMO_TOKEN, BridgeProcess, default_rooms  # noqa: E402
from tests.support.slowloris import attack  # noqa: E402

OFF = {"header_timeout_s": 0, "body_timeout_s": 0, "max_connections": 0, "max_connections_per_source": 0}


def run(mode: str, args: argparse.Namespace, ports: PortAllocator, workdir: Path) -> dict[str, object]:
    http = dict(OFF) if mode == "before" else {"header_timeout_s": args.header_timeout}
    lo = ports.block(40)
    bridge = BridgeProcess(workdir=workdir / mode, sip_port=ports.port(), http_port=ports.port(),
                           rtp_range=(lo, lo + 39), rooms=default_rooms(), extra={"http": http,
                                                                                  "log_level": "info"},
                           nofile=args.nofile)
    bridge.workdir.mkdir(parents=True)
    bridge.start()
    try:
        res = attack(bridge.http_port, args.connections, args.seconds, reconnect=True, connect_timeout=0.3,
                     probe_url=bridge.base_url + "/v2/conferences", token=DEMO_TOKEN, probe_every=0.5,
                     probe_timeout=3.0)
    finally:
        bridge.stop()
    lat = sorted(res.request_latencies)
    return {
        "mode": mode,
        "held_median": int(statistics.median(res.held_samples)) if res.held_samples else 0,
        "held_max": max(res.held_samples, default=0),
        "closed": len(res.closed_at), "refused_503": res.refused, "connect_failed": res.connect_failures,
        "ok": len(lat), "failed": res.request_failures,
        "median_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "max_ms": round(1000 * lat[-1], 1) if lat else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--nofile", type=int, default=400)
    parser.add_argument("--header-timeout", type=float, default=10.0)
    parser.add_argument("--modes", default="before,after")
    args = parser.parse_args()
    ports = PortAllocator()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            rows.append(run(mode, args, ports, Path(tmp)))
    cols = list(rows[0])
    print(" | ".join(cols))
    for row in rows:
        print(" | ".join(str(row[c]) for c in cols))


if __name__ == "__main__":
    main()
