"""Where a message came from / goes to: the adapter's view of a transport path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .headers import Via
from .message import Headers

Addr = tuple[str, int]


@dataclass(frozen=True)
class Flow:
    transport: Literal["udp", "tcp", "tls"]
    remote: Addr
    conn_id: int | None = None  # TCP connection id assigned by the adapter

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


@dataclass
class Outgoing:
    data: bytes
    flow: Flow


def response_flow(via: Via, flow: Flow) -> Flow:
    """Where a response goes (RFC 3261 §18.2.2, RFC 3581): over a connection, back on it; over
    UDP to the source address, at the source port with `rport`, else at the Via sent-by port."""
    if flow.transport != "udp" or via.param("rport") is not None:
        return flow
    return Flow("udp", (flow.remote[0], via.port or 5060), flow.conn_id)


def stamp_via(headers: Headers, via: Via, flow: Flow) -> None:
    """RFC 3261 §18.2.1 received= and RFC 3581 rport= on the top Via we echo back."""
    src_ip, src_port = flow.remote
    stamped = via
    if via.param("rport") is not None:
        stamped = stamped.with_param("rport", str(src_port)).with_param("received", src_ip)
    elif via.host.strip("[]").lower() != src_ip.lower():
        stamped = stamped.with_param("received", src_ip)
    if stamped is not via:
        vias = headers.get_all("Via")
        headers.set_all("Via", [str(stamped)] + vias[1:])
