"""A local cluster on one machine: redis-server, N bridge nodes and Kamailio in front, on loopback.

    python3 scripts/cluster.py up [N]     # start (or grow to) N nodes; default 3
    python3 scripts/cluster.py down       # stop everything it started
    python3 scripts/cluster.py status

scripts/cluster.sh wraps this with the project's venv (README "Running several nodes"). Every file
it writes (node configs, data directories, logs, pid files, kamailio.cfg, dispatcher.list) is under
``run/cluster/`` (gitignored). Ports: Kamailio 5060 (SIP, UDP+TCP), Redis 6379, node i (1-based)
SIP 5069+2i, REST 8080+i, RTP 20000+1000(i-1) .. +999; override with the environment variables
TUTTI_PROXY_PORT, TUTTI_REDIS_PORT, TUTTI_NODE_SIP_BASE, TUTTI_NODE_HTTP_BASE, TUTTI_NODE_RTP_BASE,
TUTTI_NODE_RTP_PORTS (ports per node, 1000: 500 calls), and the folder with TUTTI_CLUSTER_RUN.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.cluster.kamailio_config import Node, ProxySettings, RedisTarget, write_all, write_dispatcher_list

HOST = "127.0.0.1"
RUN = Path(os.environ.get("TUTTI_CLUSTER_RUN", ROOT / "run" / "cluster"))   # every file it writes
KEY_PREFIX = "tutti:"


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


PROXY_PORT = _env("TUTTI_PROXY_PORT", 5060)
REDIS_PORT = _env("TUTTI_REDIS_PORT", 6379)
SIP_BASE = _env("TUTTI_NODE_SIP_BASE", 5071)
HTTP_BASE = _env("TUTTI_NODE_HTTP_BASE", 8081)
RTP_BASE = _env("TUTTI_NODE_RTP_BASE", 20000)
RTP_PORTS = _env("TUTTI_NODE_RTP_PORTS", 1000)


def node_ports(i: int) -> tuple[int, int, int]:
    """SIP, HTTP and first RTP port of node i (0-based)."""
    return SIP_BASE + 2 * i, HTTP_BASE + i, RTP_BASE + RTP_PORTS * i


def _pid(name: str) -> int | None:
    try:
        pid = int((RUN / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def _spawn(name: str, cmd: list[str]) -> int:
    """Start ``cmd`` detached in its own session, log to run/cluster/<name>.log, record its pid."""
    with open(RUN / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=RUN)
    (RUN / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def _wait(what: str, ready: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not come up in {timeout:.0f}s (see {RUN}/*.log)")


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _has_cluster_mode() -> bool:
    from bridge.config import Config

    return "cluster" in Config.model_fields


def node_config(base: dict[str, Any], i: int, *, cluster_mode: bool) -> dict[str, Any]:
    """The operator's config.yaml with this node's ports, data directory and cluster block."""
    sip, http, rtp = node_ports(i)
    cfg = dict(base)
    cfg["sip"] = {**base.get("sip", {}), "host": HOST, "port": sip, "advertise_host": HOST}
    cfg["rtp"] = {**base.get("rtp", {}), "host": HOST, "port_min": rtp, "port_max": rtp + RTP_PORTS - 1}
    cfg["http"] = {**base.get("http", {}), "host": HOST, "port": http, "public_url": None}
    cfg["data_dir"] = str(RUN / f"node{i + 1}" / "data")
    security = dict(base.get("security", {}))
    security["trusted_proxies"] = sorted(set(security.get("trusted_proxies", [])) | {HOST})
    cfg["security"] = security
    if cluster_mode:
        cfg["cluster"] = {**base.get("cluster", {}), "enabled": True, "node_id": f"node{i + 1}",
                          "redis_url": f"redis://{HOST}:{REDIS_PORT}/0", "key_prefix": KEY_PREFIX,
                          "advertise_sip": f"sip:{HOST}:{sip}", "advertise_http": f"http://{HOST}:{http}"}
    return cfg


def _nodes(count: int) -> list[Node]:
    return [Node(f"node{i + 1}", f"sip:{HOST}:{node_ports(i)[0]}") for i in range(count)]


def up(count: int, config: Path) -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load(config.read_text()) or {}
    if _pid("redis") is None:
        _spawn("redis", ["redis-server", "--port", str(REDIS_PORT), "--bind", HOST, "--dir", str(RUN),
                         "--daemonize", "no", "--appendonly", "yes"])
        _wait("redis-server", lambda: _tcp_open(REDIS_PORT))
    cluster_mode = _has_cluster_mode()
    for i in range(count):
        name = f"node{i + 1}"
        if _pid(name) is not None:
            continue
        (RUN / name).mkdir(exist_ok=True)
        path = RUN / name / "config.yaml"
        path.write_text(yaml.safe_dump(node_config(base, i, cluster_mode=cluster_mode), sort_keys=False))
        _spawn(name, [sys.executable, "-m", "bridge", "--config", str(path)])
        _wait(name, lambda i=i: _http_ok(node_ports(i)[1]))
        print(f"{name}: SIP {HOST}:{node_ports(i)[0]}, REST http://{HOST}:{node_ports(i)[1]}")
    settings = ProxySettings(run_dir=RUN, listen_host=HOST, listen_port=PROXY_PORT,
                             redis=RedisTarget(HOST, REDIS_PORT, 0), key_prefix=KEY_PREFIX)
    known = max(count, _running_nodes())
    if _pid("kamailio") is None:
        write_all(settings, _nodes(known))
        _spawn("kamailio", ["kamailio", "-DD", "-E", "-f", str(settings.config_path), "-Y", str(RUN),
                            "-m", "64", "-M", "8", "-w", str(RUN)])
        _wait("kamailio", lambda: settings.ctl_socket.exists() and _kamcmd(settings, "core.uptime"))
    else:
        write_dispatcher_list(settings, _nodes(known))
        _kamcmd(settings, "dispatcher.reload")
    print(f"kamailio: dial sip:<room>@{HOST}:{PROXY_PORT} ({known} nodes; cluster mode "
          f"{'on' if cluster_mode else 'off: rooms are hashed, not pinned'})")


def _running_nodes() -> int:
    n = 0
    while _pid(f"node{n + 1}") is not None:
        n += 1
    return n


def _kamcmd(settings: ProxySettings, *args: str) -> bool:
    out = subprocess.run(["kamcmd", "-s", f"unix:{settings.ctl_socket}", *args], check=False,
                         capture_output=True, text=True, timeout=5)
    return out.returncode == 0


def down() -> None:
    names = ["kamailio"] + [p.stem for p in sorted(RUN.glob("node*.pid"))] + ["redis"]
    for name in names:
        pid = _pid(name)
        if pid is None:
            continue
        os.killpg(pid, signal.SIGTERM)  # its own session: the process and what it forked
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _pid(name) is not None:
            time.sleep(0.1)
        if _pid(name) is not None:
            os.killpg(pid, signal.SIGKILL)
        (RUN / f"{name}.pid").unlink(missing_ok=True)
        print(f"stopped {name} ({pid})")


def status() -> None:
    for pidfile in sorted(RUN.glob("*.pid")):
        pid = _pid(pidfile.stem)
        print(f"{pidfile.stem}: {'running, pid ' + str(pid) if pid else 'not running'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local cluster: redis-server, N bridge nodes, Kamailio")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("nodes", nargs="?", type=int, default=3)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml", help="the nodes' base config")
    args = parser.parse_args(argv)
    if args.command == "up":
        if not 1 <= args.nodes <= 16:
            parser.error("1..16 nodes")
        up(args.nodes, args.config.resolve())
    elif args.command == "down":
        down()
    else:
        status()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
