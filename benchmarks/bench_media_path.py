"""The whole media path with real sockets: the real bridge process, N G.711 callers.

Starts ``python -m bridge`` on a generated config (loopback, free ports, one room of
``--rate`` Hz, 16000 by default like a room without a rate, for up to 1000), then
benchmarks/loadgen.py, which places N calls over SIP/UDP and sends PCMU RTP at 50 packets/s per
leg (``--talkers`` of them a tone, the rest low noise) while counting the bridge's RTP. Over the loadgen's
measurement window (after set-up and warm-up) we read the bridge process's CPU time
(utime+stime of it and its children, /proc/<pid>/stat) and report:

  N | bridge CPU % of one core (and of that: the bridge process, its RTP IO worker) |
  % per participant | bridge->client loss % | client->bridge loss % (from the bridge's RTCP
  receiver reports) | media clock late/skipped ticks (whole run)

``--io-worker off on`` compares ``rtp.io_worker`` settings (one row each).

Run: python benchmarks/bench_media_path.py [--n 10 100 500 1000] [--window 10]
Receive/send path and loop variants for the comparison are chosen with the environment
(TUTTI_RTP_RECV=tick|reader|drain|asyncio|asyncio-256k, TUTTI_RTP_SEND=sock|transport,
TUTTI_LOOP=uvloop|asyncio), passed through to the bridge; ``--variants`` runs a list of
them, e.g. --variants uvloop/tick uvloop/reader asyncio/asyncio-256k asyncio/asyncio.
``--profile SECONDS`` records the bridge with py-spy during the window (needs py-spy).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_sip_port() -> int:
    """A port free for both UDP and TCP (the bridge listens on both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free SIP port")


def proc_cpu_seconds(pid: int, which: str = "both", children: bool = True) -> float:
    """utime+stime (or only ``user``/``sys``) of pid and all its live descendants (the RTP IO
    worker among them), or of pid alone with ``children=False``."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            utime, stime = int(fields[11]), int(fields[12])
            total += {"both": utime + stime, "user": utime, "sys": stime}[which] / CLK_TCK
            if not children:
                break
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_queue_seconds(pid: int) -> float:
    """Time pid's threads spent runnable but waiting for a CPU (/proc/<pid>/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def write_config(workdir: Path, sip_port: int, http_port: int, rtp_lo: int, rtp_hi: int,
                 rate: int = 16000, io_worker: str = "auto") -> Path:
    cfg: dict[str, Any] = {
        "sip": {"host": "127.0.0.1", "port": sip_port, "advertise_host": "127.0.0.1", "transports": ["udp"]},
        "rtp": {"host": "127.0.0.1", "port_min": rtp_lo, "port_max": rtp_hi, "inactivity_timeout_s": 120,
                "io_worker": {"auto": "auto", "on": True, "off": False}[io_worker]},
        "http": {"host": "127.0.0.1", "port": http_port},
        "data_dir": str(workdir / "data"),
        "log_level": "info",
        "accounts": [{"id": "bench", "name": "Bench", "tokens": ["bench-token"]}],
        "rooms": [{"name": "bench", "account": "bench", "rate": rate, "codecs": ["PCMU"],
                   "max_participants": 1000, "beep": "never"}],
        # The load generator places every call from 127.0.0.1: a trusted source, not a flood.
        "security": {"trusted_proxies": ["127.0.0.1"]},
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bridge exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("bridge did not come up")


def stop(proc: "subprocess.Popen[Any] | None", sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_TICKS = re.compile(r"media ticks: (\d+) ticks, per tick (?:receive|socket IO) (\d+) us, rooms (\d+) us")
_CLOCK = re.compile(r"media clock: (\d+) ticks, (\d+) late, (\d+) skipped, longest tick ([\d.]+) ms")


def run_one(n: int, args: argparse.Namespace, env_extra: dict[str, str], io_worker: str = "auto") -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="tutti-bench-"))
    sip_port, http_port = free_sip_port(), free_port(socket.SOCK_STREAM)
    rtp_lo = random.randrange(20000, 26000) & ~1   # below the ephemeral range, 2 ports per leg
    rtp_hi = rtp_lo + 6000
    config = write_config(workdir, sip_port, http_port, rtp_lo, rtp_hi, args.rate, io_worker)
    env = {**os.environ, "TUTTI_STATS_INTERVAL": "2", **env_extra}
    log_path = workdir / "bridge.log"
    bridge = loadgen = spy = None
    result: dict[str, Any] = {"n": n, **env_extra}
    try:
        with open(log_path, "wb") as log:
            bridge = subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(config)],
                                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=env, cwd=workdir)
        wait_http(http_port, bridge, 20)
        loadgen = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), "--sip", f"127.0.0.1:{sip_port}",
             "--n", str(n), "--talkers", str(args.talkers), "--setup-s", str(max(1.0, n / 400)), "--warmup-s", str(args.warmup),
             "--window-s", str(args.window), *([] if args.telephone_event else ["--no-telephone-event"]), "--client-base-port", str(rtp_hi + 100 + random.randrange(0, 4000) * 2)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
        assert loadgen.stdout is not None
        cpu0 = wall0 = gen0 = 0.0
        deadline = time.monotonic() + 60 + n / 20 + args.window
        for line in loadgen.stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("loadgen took too long")
            word, _, rest = line.strip().partition(" ")
            if word == "START":
                cpu0, wall0, gen0 = proc_cpu_seconds(bridge.pid), time.monotonic(), proc_cpu_seconds(loadgen.pid)
                main0 = proc_cpu_seconds(bridge.pid, children=False)
                wait0 = run_queue_seconds(bridge.pid)
                log_from = log_path.stat().st_size
                sys0 = proc_cpu_seconds(bridge.pid, "sys")
                if args.profile and shutil.which("py-spy"):
                    spy = subprocess.Popen(
                        ["py-spy", "record", "--pid", str(bridge.pid), "--duration", str(int(args.window)),
                         "--rate", "200", "--format", "raw", "--nonblocking",
                         "--output", str(Path(args.profile) / f"profile-{n}-{'-'.join(env_extra.values())}.txt")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elif word == "END":
                cpu1, wall1 = proc_cpu_seconds(bridge.pid), time.monotonic()
                result["bridge_core_pct"] = 100 * (cpu1 - cpu0) / (wall1 - wall0)
                # The bridge process alone; the rest of bridge_core_pct is its RTP IO worker.
                result["main_core_pct"] = 100 * (proc_cpu_seconds(bridge.pid, children=False) - main0) / (wall1 - wall0)
                # How long the bridge process was ready to run but had no CPU: a busy machine.
                result["main_wait_pct"] = 100 * (run_queue_seconds(bridge.pid) - wait0) / (wall1 - wall0)
                with open(log_path, "rb") as f:     # the bridge's tick-phase lines inside the window
                    f.seek(log_from)
                    phases = [m.groups() for m in _TICKS.finditer(f.read().decode(errors="replace"))]
                if phases:
                    for i, name in enumerate(("receive_us", "rooms_us")):
                        result[name] = median(float(p[1 + i]) for p in phases)
                result["bridge_sys_pct"] = 100 * (proc_cpu_seconds(bridge.pid, "sys") - sys0) / (wall1 - wall0)
                result["loadgen_core_pct"] = 100 * (proc_cpu_seconds(loadgen.pid) - gen0) / (wall1 - wall0)
            elif word == "RESULT":
                result.update(json.loads(rest))
        if loadgen.wait(30) != 0 or "bridge_core_pct" not in result:
            raise RuntimeError(f"loadgen failed (exit {loadgen.returncode})")
        if spy is not None:
            spy.wait(30)
        stop(bridge, timeout=30)
        match = _CLOCK.search(log_path.read_text(errors="replace"))
        if match:
            result.update(ticks=int(match[1]), late_ticks=int(match[2]), skipped_ticks=int(match[3]),
                          longest_tick_ms=float(match[4]))
        return result
    except Exception:
        tail = log_path.read_text(errors="replace").splitlines()[-20:] if log_path.exists() else []
        print("\n".join(tail), file=sys.stderr)
        raise
    finally:
        stop(spy, signal.SIGINT)
        stop(loadgen, signal.SIGKILL)
        stop(bridge)
        stop(bridge, signal.SIGKILL)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


# -- in-process micro benchmark of the adapter's receive and send paths -----------------------
def micro(loop_name: str, recv_mode: str, sockets: int, rounds: int) -> tuple[float, float, float]:
    """(receive+dispatch, transport.sendto, sock.sendto) microseconds per datagram, no-op callbacks.

    Each round sends one 172-byte datagram to every leg socket, then lets the loop deliver
    them all; only the delivery is timed for the receive figure."""
    import asyncio

    from bridge.adapters import rtp_transport as rt

    rt.RECV_MODE = recv_mode
    rt.SEND_MODE = "transport"
    packet = bytes(172)

    async def body() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        lo = random.randrange(20000, 26000) & ~1
        alloc = rt.PortAllocator("127.0.0.1", lo, lo + 4 * sockets)
        got = 0
        done: asyncio.Future[None] = loop.create_future()

        def on_rtp(data: bytes, addr: tuple[Any, ...]) -> None:
            nonlocal got
            got += 1
            if got == target and not done.done():
                done.set_result(None)

        legs = []
        for _ in range(sockets):
            leg = rt.LegSockets(alloc)
            await leg.open(loop, on_rtp, lambda d, a: None)
            legs.append(leg)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        sink_addr = sink.getsockname()
        addrs = [("127.0.0.1", leg.port) for leg in legs]
        recv_s = send_t = send_s = 0.0
        for r in range(rounds):
            target = (r + 1) * sockets
            for addr in addrs:
                tx.sendto(packet, addr)
            t0 = time.perf_counter()
            await asyncio.wait_for(done, 10)
            recv_s += time.perf_counter() - t0
            done = loop.create_future()
            # Send path: through the asyncio transport vs straight on the socket.
            t0 = time.perf_counter()
            for leg in legs:
                leg._transports[0].sendto(packet, sink_addr) if leg._transports else leg.send_rtp(packet, sink_addr)
            t1 = time.perf_counter()
            for leg in legs:
                leg._socks[0].sendto(packet, sink_addr)  # type: ignore[index]
            send_s += time.perf_counter() - t1
            send_t += t1 - t0
            while True:  # keep the sink from filling (a full buffer makes sends cheaper)
                try:
                    sink.recv(2048)
                except BlockingIOError:
                    break
            await asyncio.sleep(0)
        for leg in legs:
            leg.close()
        tx.close()
        sink.close()
        per = 1e6 / (rounds * sockets)
        return recv_s * per, send_t * per, send_s * per

    if loop_name == "uvloop":
        import uvloop
        return uvloop.run(body())
    return asyncio.run(body())


def run_micro(sockets: int, rounds: int) -> None:
    print(f"adapter micro benchmark: {sockets} leg sockets, {rounds} rounds, us per datagram (median of 3)")
    print(f"{'loop/receive path':<24} {'receive+dispatch':>16} {'transport.sendto':>16} {'sock.sendto':>12}")
    for loop_name in ("asyncio", "uvloop"):
        for mode in ("asyncio-256k", "asyncio", "reader", "drain"):
            runs = sorted(micro(loop_name, mode, sockets, rounds) for _ in range(3))
            recv = sorted(r[0] for r in runs)[1]
            st = sorted(r[1] for r in runs)[1]
            ss = sorted(r[2] for r in runs)[1]
            print(f"{loop_name + '/' + mode:<24} {recv:>16.2f} {st:>16.2f} {ss:>12.2f}", flush=True)


def per_leg(runs: list[dict[str, Any]], key: str, n: int) -> float | None:
    """Median over runs of a tick phase's µs per tick, divided by the number of legs."""
    values = [r[key] for r in runs if key in r]
    return median(values) / n if values else None


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 100, 500, 1000])
    ap.add_argument("--rate", type=int, default=16000, choices=(8000, 16000, 48000),
                    help="the room's rate (16000: the default room)")
    ap.add_argument("--talkers", type=int, default=3, help="callers sending a tone; the rest send low noise")
    ap.add_argument("--window", type=float, default=10.0, help="measurement window, seconds")
    ap.add_argument("--warmup", type=float, default=3.0, help="RTP flowing before the window, seconds")
    ap.add_argument("--io-worker", nargs="+", default=["auto"], choices=("auto", "on", "off"),
                    help="rtp.io_worker of the bridge; several: one table row each")
    ap.add_argument("--variants", nargs="*", default=[], metavar="LOOP/RECV[/SEND]",
                    help="e.g. uvloop/reader asyncio/asyncio-256k (default: the environment's)")
    ap.add_argument("--profile", metavar="DIR", help="py-spy raw profiles of the window into DIR")
    ap.add_argument("--no-telephone-event", dest="telephone_event", action="store_false",
                    help="callers offer no RFC 4733 (the bridge then detects DTMF in-band on every packet)")
    ap.add_argument("--micro", action="store_true", help="only the in-process adapter micro benchmark")
    ap.add_argument("--repeat", type=int, default=1, help="runs per row; the table shows medians")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (bridge log)")
    ap.add_argument("--json", action="store_true", help="also print every result as JSON")
    args = ap.parse_args()
    if args.micro:
        run_micro(500, 40)
        return 0
    variants: list[dict[str, str]] = []
    for v in args.variants or [""]:
        parts = v.split("/") if v else []
        env: dict[str, str] = {}
        if len(parts) > 0:
            env["TUTTI_LOOP"] = parts[0]
        if len(parts) > 1:
            env["TUTTI_RTP_RECV"] = parts[1]
        if len(parts) > 2:
            env["TUTTI_RTP_SEND"] = parts[2]
        variants.extend({**env, "io_worker": w} if len(args.io_worker) > 1 or w != "auto" else env
                        for w in args.io_worker)
    print(f"one {args.rate} Hz room, {args.talkers} talkers, PCMU callers")
    print(f"{'variant':<26} {'N':>5} {'bridge %core':>12} {'(kernel)':>8} {'main':>6} {'worker':>6} "
          f"{'%/participant':>13} {'b->c loss %':>11} "
          f"{'c->b loss %':>11} {'main waits %':>12} {'late/skip ticks':>15} {'loadgen %core':>13} {'us/leg/tick: IO':>20} "
          f"{'rooms':>5}")
    for variant in variants:
        env = {k: v for k, v in variant.items() if k != "io_worker"}
        worker = variant.get("io_worker", "auto")
        name = "/".join([*env.values(), *(["worker-" + worker] if "io_worker" in variant else [])]) or "default"
        for n in args.n:
            runs = [run_one(n, args, env, worker) for _ in range(args.repeat)]
            if args.json:
                for r in runs:
                    print(json.dumps(r), flush=True)
            cpu = median([r["bridge_core_pct"] for r in runs])
            c2b = [r["loss_c2b"] for r in runs if r.get("loss_c2b") is not None]
            late = [r["late_ticks"] for r in runs if "late_ticks" in r]
            skipped = [r["skipped_ticks"] for r in runs if "skipped_ticks" in r]
            ticks = f"{fmt(median(late) if late else None, '.0f')}/{fmt(median(skipped) if skipped else None, '.0f')}"
            kernel = median([r["bridge_sys_pct"] for r in runs])
            main_cpu = median([r["main_core_pct"] for r in runs])
            print(f"{name:<26} {n:>5} {cpu:>12.1f} {kernel:>8.1f} {main_cpu:>6.1f} {cpu - main_cpu:>6.1f} "
                  f"{cpu / n:>13.3f} "
                  f"{100 * median([r['loss_b2c'] for r in runs]):>11.2f} "
                  f"{fmt(100 * median(c2b) if c2b else None, '.2f'):>11} "
                  f"{median([r['main_wait_pct'] for r in runs]):>12.1f} {ticks:>15} "
                  f"{median([r['loadgen_core_pct'] for r in runs]):>13.1f} "
                  + " ".join(f"{fmt(per_leg(runs, key, n), '.1f'):>{w}}"
                             for key, w in (("receive_us", 20), ("rooms_us", 5))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
