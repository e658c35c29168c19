"""pytest fixtures for end-to-end tests; import them from a conftest.py:

    from e2e.peers.fixtures import *  # noqa: F403  (or pytest_plugins = [...])

Every peer a fixture starts is stopped in teardown, even when the test failed, and
its log tail is printed then (pytest shows it only for failing tests).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .baresip import Baresip, codec_tone_wav
from .ports import PortAllocator
from .sipp import SippProcess, SippResult, run_sipp

__all__ = [
    "needs_baresip",
    "needs_sipp",
    "port_allocator",
    "baresip_factory",
    "sipp_runner",
    "tone_factory",
    "SippRunner",
]

needs_baresip = pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip not installed")
needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp not installed")


@pytest.fixture(scope="session")
def port_allocator() -> PortAllocator:
    """One per session, so no two peers of a run ever share a port."""
    return PortAllocator()


@pytest.fixture
def tone_factory(tmp_path: Path) -> Callable[..., Path]:
    """``tone_factory(freq_hz, codecs="PCMU", seconds=1.5, **tone_wav_kwargs) -> Path``."""
    counter = iter(range(1_000_000))

    def make(freq_hz: float, codecs: str = "PCMU", seconds: float = 1.5, **kwargs: float) -> Path:
        path = tmp_path / f"tone-{next(counter)}-{int(freq_hz)}Hz.wav"
        return codec_tone_wav(path, freq_hz, codecs, seconds, **kwargs)

    return make


@pytest.fixture
def baresip_factory(tmp_path: Path, port_allocator: PortAllocator) -> Iterator[Callable[..., Baresip]]:
    """``baresip_factory(name, *, codecs=..., mic_wav=..., auto_answer=..., ...) -> Baresip``.

    Returns a started instance with its own ports and directory under tmp_path.
    """
    started: list[Baresip] = []

    def make(name: str, **kwargs: Any) -> Baresip:
        peer = Baresip(name, tmp_path, port_allocator.baresip(), **kwargs)
        started.append(peer)
        return peer.start()

    yield make
    for peer in started:
        try:
            peer.stop()
        finally:
            print(peer.log_tail(40))


class SippRunner:
    """Runs SIPp with fresh ports and a run directory under the test's tmp_path."""

    def __init__(self, tmp_path: Path, ports: PortAllocator) -> None:
        self._tmp = tmp_path
        self._ports = ports
        self._count = 0
        self.processes: list[SippProcess] = []
        self.results: list[SippResult] = []

    def workdir(self) -> Path:
        """A fresh run directory (SIPp's cwd: relative pcap paths resolve here)."""
        self._count += 1
        path = self._tmp / f"sipp-{self._count}"
        path.mkdir()
        return path

    def run(self, scenario: str | Path, target: str, *, workdir: Path | None = None, **kwargs: Any) -> SippResult:
        ports = self._ports.sipp()
        result = run_sipp(
            scenario, target, local_port=ports.sip, media_port=ports.media,
            workdir=workdir or self.workdir(), **kwargs,
        )
        self.results.append(result)
        return result

    def start(self, scenario: str | Path, target: str, *, workdir: Path | None = None, **kwargs: Any) -> SippProcess:
        """Background SIPp (e.g. a uas: reach it at ``127.0.0.1:{proc.local_port}``)."""
        ports = self._ports.sipp()
        proc = SippProcess(
            scenario, target, local_port=ports.sip, media_port=ports.media,
            workdir=workdir or self.workdir(), **kwargs,
        )
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.processes:
            result = proc.stop()
            if not result.ok:
                print(result.report(2000))
        for result in self.results:
            if not result.ok:
                print(result.report(2000))


@pytest.fixture
def sipp_runner(tmp_path: Path, port_allocator: PortAllocator) -> Iterator[SippRunner]:
    runner = SippRunner(tmp_path, port_allocator)
    yield runner
    runner.close()
