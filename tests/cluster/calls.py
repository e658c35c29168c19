"""SIPp callers through the front proxy: one SIPp process places one call per listed room."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.cluster.harness import Cluster
from tests.e2e.peers.ports import PortAllocator
from tests.e2e.peers.sipp import SippProcess

ROOM_CALL = Path(__file__).resolve().parent / "scenarios" / "room_call.xml"


def room_callers(cluster: Cluster, ports: PortAllocator, workdir: Path, users: Sequence[str], *,
                 hold_ms: int, rate: float = 20.0, timeout: float = 60.0) -> SippProcess:
    """Background SIPp placing ``len(users)`` calls, the n-th to ``sip:users[n]@proxy``, each held
    ``hold_ms`` then hung up (BYE through the proxy)."""
    workdir.mkdir(parents=True, exist_ok=True)
    inf = workdir / "rooms.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{u};\n" for u in users))
    p = ports.sipp()
    return SippProcess(
        ROOM_CALL, cluster.target, local_port=p.sip, media_port=p.media, calls=len(users),
        limit=len(users), rate=rate, extra_args=["-inf", str(inf), "-d", str(hold_ms)],
        timeout=timeout, workdir=workdir,
    )
