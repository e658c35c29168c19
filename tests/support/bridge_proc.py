"""Start a real bridge process on free loopback ports for end-to-end tests."""

from __future__ import annotations

import json
import resource
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEMO_TOKEN = "test-token-acct1"
OTHER_TOKEN = "test-token-acct2"


def default_rooms() -> list[dict[str, Any]]:
    return [
        {"name": "room1", "dial_in_code": "1001", "account": "acct1", "rate": 16000},
        {"name": "room2", "dial_in_code": "1002", "account": "acct1", "rate": 8000},
        {"name": "wide", "dial_in_code": "1003", "account": "acct1", "rate": 48000},
        {"name": "tiny", "account": "acct1", "max_participants": 1},
    ]


@dataclass
class BridgeProcess:
    workdir: Path
    sip_port: int
    http_port: int
    rtp_range: tuple[int, int]
    rooms: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    nofile: int | None = None       # the bridge's open-file limit (soft = hard), e.g. for benchmarks

    @property
    def log_path(self) -> Path:
        return self.workdir / "bridge.log"

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.http_port}"

    @property
    def tls_ca(self) -> str | None:
        """With ``http.tls`` configured: the certificate clients verify the API against."""
        tls = self.extra.get("http", {}).get("tls") if isinstance(self.extra.get("http"), dict) else None
        return str(tls["cert"]) if tls else None

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else None

    def write_config(self) -> Path:
        cfg: dict[str, Any] = {
            "sip": {"host": "127.0.0.1", "port": self.sip_port, "advertise_host": "127.0.0.1"},
            "rtp": {"host": "127.0.0.1", "port_min": self.rtp_range[0], "port_max": self.rtp_range[1]},
            "http": {"host": "127.0.0.1", "port": self.http_port},
            "data_dir": str(self.workdir / "data"),
            "log_level": "debug",
            "accounts": [
                {"id": "acct1", "name": "Test", "tokens": [DEMO_TOKEN]},
                {"id": "acct2", "name": "Other", "tokens": [OTHER_TOKEN]},
            ],
            "rooms": self.rooms,
        }
        for key, value in self.extra.items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key].update(value)
            else:
                cfg[key] = value
        path = self.workdir / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def start(self, timeout: float = 15.0) -> "BridgeProcess":
        config = self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile)))
            if self.nofile else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/openapi.json", timeout=1,
                                            context=self.ssl_context()) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"bridge did not come up in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()

    def api(self, method: str, path: str, body: Any = None, token: str | None = DEMO_TOKEN) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if token:
            req.add_header("X-Auth-Token", token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ssl_context()) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None


def stop_all(procs: list[BridgeProcess], timeout: float = 10.0) -> None:
    """SIGTERM every bridge first, then wait for each: their shutdown graces (BYEs to callers
    who may be gone already) run side by side instead of one after the other."""
    running = [p.proc for p in procs if p.proc is not None and p.proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
