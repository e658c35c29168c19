"""Where a message came from / goes to: the adapter's view of a transport path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Addr = tuple[str, int]


@dataclass(frozen=True)
class Flow:
    transport: Literal["udp", "tcp"]
    remote: Addr
    conn_id: int | None = None  # TCP connection id assigned by the adapter

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


@dataclass
class Outgoing:
    data: bytes
    flow: Flow
