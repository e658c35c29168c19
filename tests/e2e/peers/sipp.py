"""Run SIPp 3.6.1 scenarios and collect what it says about them.

Every run gets its own directory holding the error, statistics, message and log
traces, so a failing assertion can print exactly what SIPp saw.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from .ports import HOST

SIPP = os.environ.get("SIPP_BIN", "sipp")
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
BUILTIN = {"uac", "uas", "regexp", "branchc", "branchs", "3pcc-C-A", "3pcc-C-B", "3pcc-A", "3pcc-B"}

# SIPp exit codes (sipp -h): 0 all calls succeeded, 1 at least one failed,
# 97 exit on internal command, 99 normal exit without calls processed,
# 253 (-3) exit on fatal error, 254 (-2) fatal error binding a socket.
EXIT_OK = 0
EXIT_CALLS_FAILED = 1


def scenario_path(name: str | Path) -> Path:
    """Resolve ``basic_call``, ``basic_call.xml`` or a path to a scenario file."""
    path = Path(name)
    if path.is_file():
        return path.resolve()
    candidate = SCENARIOS / (path.name if path.suffix == ".xml" else f"{path.name}.xml")
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(f"no SIPp scenario {name!r} (looked in {SCENARIOS})")


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    command: list[str]
    timed_out: bool = False
    successful: int = 0
    failed: int = 0
    stats: dict[str, str] = field(default_factory=dict)

    @property
    def error_log(self) -> Path:
        return self.workdir / "errors.log"

    @property
    def stat_csv(self) -> Path:
        return self.workdir / "stat.csv"

    @property
    def message_log(self) -> Path:
        return self.workdir / "messages.log"

    @property
    def action_log(self) -> Path:
        return self.workdir / "logs.log"

    def _read(self, path: Path, limit: int) -> str:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-limit:]

    def errors(self) -> str:
        return self._read(self.error_log, 1 << 20)

    def messages(self) -> str:
        return self._read(self.message_log, 1 << 22)

    def logs(self) -> str:
        return self._read(self.action_log, 1 << 20)

    @property
    def ok(self) -> bool:
        return self.returncode == EXIT_OK and not self.timed_out and self.failed == 0

    def report(self, limit: int = 4000) -> str:
        """Everything a failing assertion should show, most useful first."""
        parts = [
            f"sipp exit={self.returncode} timed_out={self.timed_out} "
            f"successful={self.successful} failed={self.failed}",
            "cmd: " + " ".join(self.command),
        ]
        for title, text in (
            ("errors.log", self._read(self.error_log, limit)),
            ("stderr", self.stderr[-limit:]),
            ("logs.log", self._read(self.action_log, limit)),
            ("messages.log (tail)", self._read(self.message_log, limit)),
        ):
            if text.strip():
                parts.append(f"--- {title} ---\n{text}")
        return "\n".join(parts)

    def assert_ok(self, calls: int = 1) -> None:
        if not (self.ok and self.successful >= calls):
            raise AssertionError(f"SIPp expected {calls} successful call(s)\n{self.report()}")


def parse_stats(path: Path) -> dict[str, str]:
    """Last row of SIPp's ``-trace_stat`` CSV (';'-separated), keyed by column name."""
    try:
        rows = list(csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";"))
    except OSError:
        return {}
    rows = [r for r in rows if r]
    if len(rows) < 2:
        return {}
    return {k: v for k, v in zip(rows[0], rows[-1]) if k}


def build_command(
    scenario: str | Path,
    target: str,
    *,
    workdir: Path,
    local_port: int,
    media_port: int,
    service: str = "room1",
    calls: int = 1,
    limit: int | None = None,
    rate: float | None = None,
    keys: Mapping[str, str | int] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float | None = None,
) -> list[str]:
    name = str(scenario)
    if name in BUILTIN:
        scen = ["-sn", name]
    else:
        scen = ["-sf", str(scenario_path(scenario))]
    cmd = [SIPP]
    if target:
        cmd.append(target)
    cmd += scen
    cmd += [
        "-i", HOST, "-p", str(local_port), "-mp", str(media_port),
        "-s", service,
        "-m", str(calls),
        "-l", str(limit if limit is not None else calls),
        "-nostdin",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-trace_stat", "-stf", str(workdir / "stat.csv"), "-fd", "1",
        "-trace_msg", "-message_file", str(workdir / "messages.log"),
        "-trace_logs", "-log_file", str(workdir / "logs.log"),
        "-trace_screen", "-screen_file", str(workdir / "screen.log"),
    ]
    if rate is not None:
        cmd += ["-r", str(rate)]
    if timeout is not None:
        # SIPp's own global timeout, so it exits (and writes stats) before we kill it.
        cmd += ["-timeout", f"{max(1, int(timeout))}s", "-timeout_error"]
    for key, value in (keys or {}).items():
        cmd += ["-key", key, str(value)]
    cmd += list(extra_args)
    return cmd


class SippProcess:
    """SIPp running in the background (e.g. a UAC waiting for the bridge's BYE)."""

    def __init__(
        self,
        scenario: str | Path,
        target: str,
        *,
        local_port: int,
        media_port: int,
        service: str = "room1",
        calls: int = 1,
        limit: int | None = None,
        rate: float | None = None,
        keys: Mapping[str, str | int] | None = None,
        extra_args: Sequence[str] = (),
        timeout: float = 30.0,
        workdir: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="sipp-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.local_port = local_port
        self.media_port = media_port
        self.command = build_command(
            scenario, target, workdir=self.workdir, local_port=local_port, media_port=media_port,
            service=service, calls=calls, limit=limit, rate=rate, keys=keys,
            extra_args=extra_args, timeout=timeout,
        )
        self._stdout = (self.workdir / "stdout.txt").open("wb")
        self._stderr = (self.workdir / "stderr.txt").open("wb")
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr,
            cwd=self.workdir, start_new_session=True,
        )
        self.started_at = time.monotonic()
        self.result: SippResult | None = None

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to exit; on timeout kill it and return a result with timed_out set."""
        if self.result is not None:
            return self.result
        budget = timeout if timeout is not None else self.timeout + 5.0
        timed_out = False
        try:
            self.proc.wait(budget)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
        return self._finish(timed_out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)  # the session created in __init__
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(1.0)
                    break
                except subprocess.TimeoutExpired:
                    continue

    def stop(self) -> SippResult:
        """Kill if still running and collect whatever it wrote."""
        if self.result is not None:
            return self.result
        was_running = self.running()
        self.kill()
        return self._finish(was_running)

    def _finish(self, timed_out: bool) -> SippResult:
        self._stdout.close()
        self._stderr.close()
        stats = parse_stats(self.workdir / "stat.csv")
        code = self.proc.returncode if self.proc.returncode is not None else -9
        self.result = SippResult(
            returncode=code,
            stdout=(self.workdir / "stdout.txt").read_text(errors="replace"),
            stderr=(self.workdir / "stderr.txt").read_text(errors="replace"),
            workdir=self.workdir,
            command=self.command,
            timed_out=timed_out,
            successful=_int(stats.get("SuccessfulCall(C)")),
            failed=_int(stats.get("FailedCall(C)")),
            stats=stats,
        )
        return self.result

    def __enter__(self) -> SippProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def run_sipp(
    scenario: str | Path,
    target: str,
    *,
    local_port: int,
    media_port: int,
    service: str = "room1",
    calls: int = 1,
    limit: int | None = None,
    rate: float | None = None,
    keys: Mapping[str, str | int] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
    workdir: Path | None = None,
) -> SippResult:
    """Run SIPp to completion (bounded by ``timeout`` seconds) and return its result."""
    proc = SippProcess(
        scenario, target, local_port=local_port, media_port=media_port, service=service,
        calls=calls, limit=limit, rate=rate, keys=keys, extra_args=extra_args,
        timeout=timeout, workdir=workdir,
    )
    return proc.wait(timeout + 5.0)


def reject_uas_scenario(status: int, reason: str = "Rejected By Self-Check") -> str:
    """XML of a stand-in UAS that answers one INVITE with ``status`` and absorbs the ACK.

    For harness self-checks of the negative UAC scenarios without the bridge. SIPp
    validates response codes when it loads a scenario, before ``-key`` substitution,
    so the code is baked into the text: write it to a file and pass its path.
    """
    if not 300 <= status <= 699:
        raise ValueError("a rejecting UAS needs a final non-2xx status")
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas_reject_{status}">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 {status} {reason}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""
