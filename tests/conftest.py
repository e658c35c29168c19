from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess, default_rooms, stop_all


def _require(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.fail(f"{binary} is not installed; run scripts/test.sh (it installs the real SIP clients)")


@pytest.fixture(scope="session")
def ports() -> PortAllocator:
    """One allocator for the whole run: bridges and peers never share a port."""
    return PortAllocator()


@pytest.fixture
def bridge_factory(tmp_path: Path, ports: PortAllocator) -> Iterator[Callable[..., BridgeProcess]]:
    started: list[BridgeProcess] = []

    def make(rooms: list[dict[str, Any]] | None = None, workdir: Path | None = None, *,
             sip_port: int | None = None, http_port: int | None = None, **extra: Any) -> BridgeProcess:
        wd = workdir or tmp_path / f"bridge{len(started)}"
        wd.mkdir(parents=True, exist_ok=True)
        proc = BridgeProcess(
            workdir=wd,
            sip_port=sip_port or ports.port(),
            http_port=http_port or ports.port(),
            rtp_range=(lambda lo: (lo, lo + 39))(ports.block(40)),  # 20 legs per test bridge
            rooms=rooms if rooms is not None else default_rooms(),
            extra=extra,
        )
        started.append(proc)
        return proc.start()

    yield make
    stop_all(started)


@pytest.fixture
def bridge(bridge_factory: Callable[..., BridgeProcess]) -> BridgeProcess:
    return bridge_factory()


@pytest.fixture
def need_baresip() -> None:
    _require("baresip")


@pytest.fixture
def need_sipp() -> None:
    _require("sipp")
