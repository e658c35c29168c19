"""Kamailio for cluster tests: generated configuration, started in the foreground in its own session
(process group, so teardown stops it and every child it forked), logging into its run directory.
(redis-server: tests/support/redis_server.py; bridge nodes: tests/support/bridge_proc.py.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bridge.cluster.kamailio_config import Node, ProxySettings, write_all, write_dispatcher_list
from tests.e2e.peers.ports import HOST

KAMAILIO = os.environ.get("KAMAILIO_BIN", "kamailio")
KAMCMD = os.environ.get("KAMCMD_BIN", "kamcmd")


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
