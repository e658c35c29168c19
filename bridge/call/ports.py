"""What the call core needs from the outside world, as small interfaces.

The core never opens a socket, reads a file or asks the clock: the adapter
(``bridge/adapters/call_io.py``) implements these, and the unit tests fake them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bridge.control.model import Conference
from bridge.media.ports import AudioSource
from bridge.rtp.srtp import SrtpKeys

Datagram = Callable[[bytes, tuple[Any, ...]], None]


class NoMediaPorts(Exception):
    """No RTP port pair is free: the call is refused with 503."""


class LegTransport(Protocol):
    """One leg's media connection (for SIP legs, its RTP/RTCP socket pair)."""

    port: int

    def send_rtcp(self, data: bytes, addr: tuple[str, int]) -> None: ...

    def set_srtp(self, keys: SrtpKeys | None) -> None:
        """New SRTP keys for this leg after a re-offer (None: no change)."""

    def room_port(self, session: Any, steady_rx: bool, srtp: SrtpKeys | None = None) -> Any:
        """The port a room pops frames from and packetises into (``RtpPort``); with SRTP keys
        its traffic is protected and it never joins a lane."""

    def close(self) -> None: ...


class MediaFactory(Protocol):
    def open(self, leg_id: str, on_rtp: Datagram, on_rtcp: Datagram) -> LegTransport:
        """Bind the leg's media; raises ``NoMediaPorts`` when none is free."""


class Prompts(Protocol):
    """Audio a room plays: prompts by name, hold music, one after the other."""

    def prompt(self, names: Sequence[str], rate: int) -> AudioSource: ...

    def music(self, location: str | None, rate: int) -> AudioSource: ...

    def then(self, first: AudioSource, second: AudioSource) -> AudioSource: ...


class Directory(Protocol):
    """Conference lookups (the conference service)."""

    def resolve_dial(self, user: str) -> Conference | None: ...

    def redirect(self, conf_id: str, user: str) -> str | None:
        """Cluster mode: the Contact of a 302 to the node that mixes the room (None: mix it here)."""

    def part_nodes(self) -> Sequence[str]:
        """host:port of the nodes a full room may spread to (``cascade.part_nodes``, or in cluster
        mode every live node of the registry)."""


class RoomConnection(Protocol):
    """What a room needs to seat a participant: its port and its codec."""

    @property
    def room_port(self) -> Any: ...

    @property
    def codec(self) -> str: ...

    @property
    def payload_type(self) -> int: ...

    @property
    def encoder_opts(self) -> dict[str, Any]: ...
