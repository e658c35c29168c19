"""The ``cascade:`` block of config.yaml: one conference spread over several bridge nodes.

Kept out of ``bridge/config.py`` (near its size limit); README "One room across nodes".
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# host:port as written into a SIP URI (an IPv4 address or a DNS name; no IPv6: the media is IPv4).
_HOSTPORT = re.compile(r"^[A-Za-z0-9.\-]{1,253}:\d{1,5}$")


def check_hostport(value: str) -> str:
    if not _HOSTPORT.match(value) or not 1 <= int(value.rsplit(":", 1)[1]) <= 65535:
        raise ValueError(f"{value!r}: expected host:port such as 127.0.0.1:5072")
    return value


def sip_hostport(uri: str) -> str:
    """``sip:10.0.0.5:5060;transport=udp`` -> ``10.0.0.5:5060`` (a cluster advertise_sip as a node address)."""
    return uri.split(":", 1)[1].split(";", 1)[0] if ":" in uri else uri


class CascadeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Callers seated on this node per conference before further callers are redirected (302) to
    # a part node; 0 = never (the default).
    part_size: int = Field(default=0, ge=0, le=100000)
    # Where overflow callers go: one entry per conference (a stable hash of its id). Empty in
    # cluster mode: the other live nodes of the registry.
    part_nodes: tuple[str, ...] = ()
    # This node as other nodes dial it (the tutti-owner of a redirect, the node= of a trunk);
    # None: cluster.advertise_sip in cluster mode, else sip.advertise_host (else the address the
    # caller reached us at) and sip.port.
    node_address: str | None = None

    @field_validator("part_nodes")
    @classmethod
    def _nodes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_hostport(v) for v in value)

    @field_validator("node_address")
    @classmethod
    def _node(cls, value: str | None) -> str | None:
        return None if value is None else check_hostport(value)
