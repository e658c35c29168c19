"""Processes of a cluster on one machine: redis-server, Kamailio and K bridge nodes on loopback.

Each runs in its own session (process group) so teardown can stop it and every child it forked,
and each writes its log into its own directory (printed by the fixtures when a test fails).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.cluster.kamailio_config import Node, ProxySettings, RedisTarget, write_all, write_dispatcher_list
from tests.e2e.peers.ports import HOST

KAMAILIO = os.environ.get("KAMAILIO_BIN", "kamailio")
KAMCMD = os.environ.get("KAMCMD_BIN", "kamcmd")
REDIS_SERVER = os.environ.get("REDIS_SERVER_BIN", "redis-server")


def _stop_group(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """SIGTERM the process group of ``proc`` (started with start_new_session), then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"


# --- Redis: a tiny RESP client, so the harness needs no Redis library --------------------------

def _encode(args: Sequence[str | int]) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _read_reply(f: Any) -> Any:
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(f"redis error: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RuntimeError(f"bad redis reply {line!r}")


@dataclass
class RedisServer:
    workdir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def target(self) -> RedisTarget:
        return RedisTarget(HOST, self.port, 0)

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # No persistence: a test cluster starts empty every time.
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
               "--dir", str(self.workdir), "--logfile", str(self.log_path), "--daemonize", "no",
               "--protected-mode", "yes"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.proc.returncode}:\n{_tail(self.log_path, 20)}")
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer in {timeout}s:\n{_tail(self.log_path, 20)}")

    def command(self, *args: str | int, timeout: float = 2.0) -> Any:
        with socket.create_connection((HOST, self.port), timeout=timeout) as sock:
            sock.sendall(_encode(args))
            with sock.makefile("rb") as f:
                return _read_reply(f)

    def stop(self) -> None:
        _stop_group(self.proc)

    def log_tail(self, lines: int = 20) -> str:
        return _tail(self.log_path, lines)


# --- Kamailio ---------------------------------------------------------------------------------

def sip_options(port: int, user: str = "", timeout: float = 1.0, method: str = "OPTIONS") -> int | None:
    """Send one out-of-dialog request (OPTIONS by default) over UDP to 127.0.0.1:port; the final
    reply's status code, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout)
        lport = sock.getsockname()[1]
        target = f"sip:{user + '@' if user else ''}{HOST}:{port}"
        call_id = uuid.uuid4().hex
        msg = (f"{method} {target} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {HOST}:{lport};branch=z9hG4bK{call_id[:16]};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:probe@{HOST}>;tag={call_id[:8]}\r\nTo: <{target}>\r\n"
               f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n")
        sock.sendto(msg.encode(), (HOST, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(65535)
            except OSError:
                return None
            first = data.split(b"\r\n", 1)[0].split()
            if len(first) >= 2 and first[1].isdigit() and int(first[1]) >= 200:
                return int(first[1])
        return None


@dataclass
class KamailioProxy:
    settings: ProxySettings
    nodes: list[Node]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.settings.listen_port

    @property
    def log_path(self) -> Path:
        return self.settings.run_dir / "kamailio.log"

    def start(self, timeout: float = 15.0) -> KamailioProxy:
        config = write_all(self.settings, self.nodes)
        # -DD: stay in the foreground (the children are forked, the creator does not daemonize);
        # -E: log to stderr (our file); -Y: runtime dir of its own, so no root and no /run needed.
        cmd = [KAMAILIO, "-DD", "-E", "-f", str(config), "-Y", str(self.settings.run_dir),
               "-P", str(self.settings.run_dir / "kamailio.pid"), "-m", "64", "-M", "8",
               "-w", str(self.settings.run_dir)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio exited {self.proc.returncode}:\n{self.log_tail(40)}")
            if sip_options(self.port, timeout=0.3) == 200:
                return self
        raise RuntimeError(f"kamailio did not answer OPTIONS in {timeout}s:\n{self.log_tail(40)}")

    def kamcmd(self, *args: str, timeout: float = 5.0) -> str:
        out = subprocess.run([KAMCMD, "-s", f"unix:{self.settings.ctl_socket}", *args], check=False,
                             capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"kamcmd {' '.join(args)} failed: {out.stderr or out.stdout}")
        return out.stdout

    def set_nodes(self, nodes: Sequence[Node]) -> None:
        """Regenerate the dispatcher list and make the running proxy read it."""
        self.nodes = list(nodes)
        write_dispatcher_list(self.settings, self.nodes)
        self.kamcmd("dispatcher.reload")

    def node_states(self) -> dict[str, str]:
        """URI -> dispatcher flags (``AP`` active+probing, ``IP`` inactive, ...) from dispatcher.list."""
        states: dict[str, str] = {}
        uri = ""
        for line in self.kamcmd("dispatcher.list").splitlines():
            key, _, value = line.strip().partition(":")
            if key == "URI":
                uri = value.strip()
            elif key == "FLAGS" and uri:
                states[uri] = value.strip()
        return states

    def wait_node_state(self, uri: str, prefix: str, timeout: float = 10.0) -> float:
        """Seconds until the dispatcher shows ``uri`` with flags starting with ``prefix``."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.node_states().get(uri, "").startswith(prefix):
                return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(f"{uri} not {prefix} after {timeout}s: {self.node_states()}\n{self.log_tail(30)}")

    def stop(self) -> None:
        _stop_group(self.proc)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)


@dataclass
class ClusterInfo:
    """What a test needs to address the cluster."""

    redis: RedisServer
    proxy: KamailioProxy
    key_prefix: str = "tutti:"
    extra: dict[str, Any] = field(default_factory=dict)

    def room_key(self, user: str) -> str:
        return f"{self.key_prefix}room:{user}:node"
