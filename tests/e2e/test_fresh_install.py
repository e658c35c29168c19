"""A newcomer's first minutes, from scratch: the README's first command in a fresh clone run with
the distribution's python3, and the wheel installed into a fresh venv outside the repository.

Both install the project (pip's cache makes that fast after the first run), so they are marked
slow. The clone holds only committed files: commit before running the first test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.calls import dial_all, participants
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import DEMO_TOKEN, BridgeProcess, default_rooms

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DISTRO_PYTHON = Path("/usr/bin/python3")


def plain_env() -> dict[str, str]:
    """The environment of a user without pyenv or an activated venv: python3 is the distribution's."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYENV_VERSION", "PYTHONPATH", "PYTHONHOME", "PYTHON", "VENV")}
    env["PATH"] = ":".join(d for d in env.get("PATH", "").split(":")
                           if d and "/.pyenv/" not in d and not (Path(d).parent / "pyvenv.cfg").exists())
    return env


def sip_options(port: int, timeout: float = 2.0) -> str:
    """Send one out-of-dialog OPTIONS over UDP; the status line of the answer ('' if none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        tag = uuid.uuid4().hex[:10]
        request = (
            f"OPTIONS sip:room1@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{tag}\r\n"
            f"From: probe <sip:probe@127.0.0.1:{local}>;tag={tag}\r\n"
            f"To: <sip:room1@127.0.0.1:{port}>\r\n"
            f"Call-ID: {tag}@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\n"
            f"Contact: <sip:probe@127.0.0.1:{local}>\r\n"
            "Max-Forwards: 70\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), ("127.0.0.1", port))
        try:
            data, _ = sock.recvfrom(65535)
        except OSError:
            return ""
    return data.decode(errors="replace").split("\r\n", 1)[0]


def new_bridge(workdir: Path, ports: PortAllocator, **extra: object) -> BridgeProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    lo = ports.block(40)
    return BridgeProcess(workdir=workdir, sip_port=ports.port(), http_port=ports.port(), rtp_range=(lo, lo + 39),
                         rooms=default_rooms(), extra=dict(extra))


@pytest.fixture
def launched() -> Iterator[list[BridgeProcess]]:
    """Bridges started by `launch`; each is stopped with SIGTERM, and its process group killed."""
    started: list[BridgeProcess] = []
    yield started
    for bridge in started:
        assert bridge.proc is not None
        bridge.stop()
        try:
            os.killpg(bridge.proc.pid, signal.SIGKILL)  # an interrupted install's pip, if any
        except ProcessLookupError:
            pass


def launch(bridge: BridgeProcess, argv: list[str], cwd: Path, env: dict[str, str], timeout: float,
           started: list[BridgeProcess]) -> float:
    """Start ``argv`` (which must end up running the bridge on bridge's config) and wait until it
    answers SIP OPTIONS with 200 and an authenticated REST request; returns the seconds taken."""
    t0 = time.monotonic()
    with open(bridge.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        bridge.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
    started.append(bridge)
    while time.monotonic() - t0 < timeout:
        if bridge.proc.poll() is not None:
            pytest.fail(f"exited with {bridge.proc.returncode}:\n{bridge.log_tail()}")
        try:
            status, body = bridge.api("GET", "/v2/conferences", token=DEMO_TOKEN)
        except OSError:
            time.sleep(0.5)
            continue
        assert status == 200, body
        assert bridge.api("GET", "/v2/conferences", token="not-a-token")[0] == 401
        assert sip_options(bridge.sip_port) == "SIP/2.0 200 OK"
        return time.monotonic() - t0
    pytest.fail(f"no answer in {timeout:.0f} s:\n{bridge.log_tail()}")


@pytest.mark.skipif(not DISTRO_PYTHON.exists(), reason="no distribution python3 at /usr/bin/python3")
@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_readme_first_command_in_a_fresh_clone(tmp_path: Path, ports: PortAllocator,
                                               launched: list[BridgeProcess]) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=60)
    env = plain_env()
    found = subprocess.run(["bash", "-c", "command -v python3"], check=False, env=env, capture_output=True, text=True)
    assert Path(found.stdout.strip()).resolve() == DISTRO_PYTHON.resolve(), env["PATH"]

    bridge = new_bridge(tmp_path / "run", ports)
    config = bridge.write_config()
    seconds = launch(bridge, ["bash", "scripts/run.sh", "--config", str(config)], clone, env, 170, launched)
    print(f"installed and answering after {seconds:.1f} s")

    venv_cfg = (clone / ".venv" / "pyvenv.cfg").read_text()
    assert f"executable = {DISTRO_PYTHON.resolve()}" in venv_cfg, venv_cfg
    assert bridge.terminate() == 0, bridge.log_tail()
    assert "shutting down" in bridge.log_path.read_text()


def build_wheel(outdir: Path) -> Path:
    """``python -m build`` (sdist, then the wheel from the sdist) of this checkout."""
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)],
                            check=False, cwd=outdir.parent, capture_output=True, text=True, timeout=170)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = outdir.glob("tutti_bridge-*.whl")
    return wheel


def envelope_match(heard: audio.Samples, heard_rate: int, ref: audio.Samples, ref_rate: int,
                   search_s: float = 3.0) -> float:
    """Best correlation of the reference's 20 ms level envelope with the heard one's, over delays
    from -0.6 s (the caller's recording may start after the first words) to ``search_s``, with at
    least 3/4 of the reference overlapping. Speech has a shape that music, noise, silence or other
    prompts do not reproduce: the 'alone' prompt scores about 0.9 against itself, other long
    prompts below 0.45."""
    def env(x: audio.Samples, rate: int) -> audio.Samples:
        return np.clip(audio.window_rms_dbfs(x, rate, 0.02), -60.0, 0.0)

    h, r = env(heard, heard_rate), env(ref, ref_rate)
    best = -1.0
    for lag in range(-30, int(search_s / 0.02)):
        part = h[max(lag, 0):lag + len(r)]
        ref_part = r[max(-lag, 0):max(-lag, 0) + len(part)]
        if len(part) < 0.75 * len(r) or len(part) != len(ref_part) or np.std(part) == 0:
            continue
        best = max(best, float(np.corrcoef(part, ref_part)[0, 1]))
    return best


@pytest.mark.usefixtures("need_baresip")
def test_wheel_in_a_fresh_venv_plays_its_prompt(tmp_path: Path, ports: PortAllocator,
                                                 launched: list[BridgeProcess]) -> None:
    wheel = build_wheel(tmp_path / "dist")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    elsewhere = tmp_path / "elsewhere"  # the working directory: neither the checkout nor the config's
    elsewhere.mkdir()
    env = plain_env()
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", str(ROOT / "constraints.txt"), str(wheel)],
        check=False, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=170,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import bridge, bridge_codecs; print(bridge.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    installed = Path(where.stdout.strip())
    assert venv in installed.parents and ROOT not in installed.parents, installed

    # A relative data_dir lands beside the config file, whatever the working directory.
    bridge = new_bridge(tmp_path / "etc", ports, data_dir="state")
    config = bridge.write_config()
    tutti = str(venv / "bin" / "tutti-bridge")
    check = subprocess.run([tutti, "--check-config", str(config)], check=False, cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "OK" in check.stdout, check.stdout + check.stderr
    launch(bridge, [tutti, "--config", str(config)], elsewhere, env, 60, launched)
    assert (tmp_path / "etc" / "state" / "bridge.sqlite3").exists()
    assert list(elsewhere.iterdir()) == []

    prompt, prompt_rate = audio.read_wav(installed.parent / "prompts" / "alone.wav")
    prompt_s = len(prompt) / prompt_rate
    with participants(tmp_path, ports, [("caller", "PCMU", None)]) as people:
        dial_all(bridge, people, "room1")  # alone: the "you are the only person" prompt, then music
        time.sleep(prompt_s + 3.0)
        people[0].phone.hangup()
        people[0].phone.wait_event("CALL_CLOSED")
        heard, rate = people[0].heard()

    match = envelope_match(heard, rate, prompt, prompt_rate)
    print(f"alone prompt: envelope correlation {match:.2f}")
    assert match > 0.7, f"the 'alone' prompt not recognised in what the caller heard (r={match:.2f})"
    music = audio.segment(heard, rate, prompt_s + 1.0, len(heard) / rate - 0.3)
    assert audio.active_seconds(music, rate) > 1.0, "no hold music after the prompt"
