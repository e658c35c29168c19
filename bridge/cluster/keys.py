"""Redis key names of the cluster (README "Shared state in Redis").

The contract with the Kamailio front (P is ``cluster.key_prefix``, default ``tutti:``):

- ``P room:<dial-user>:node`` = the owner's ``cluster.advertise_sip`` (e.g. ``sip:127.0.0.1:5071``),
  PX = ``cluster.lease_ttl_s``, for every dial string that reaches a live conference on that node
  (its conference id, its config room name, its dial-in code). Written when the room becomes live
  on a node (first leg joins), refreshed every ``cluster.heartbeat_s`` while live, deleted
  (compare-and-delete, Lua) when the room empties or by the survivor that reaps a lost node.
  Kamailio does ``GET P room:$rU:node`` and routes there if present, else hashes on ``$rU``.
- ``P conf:<conf_id>:owner`` = node id, ``SET NX PX`` lease: the authority. A node receiving a call
  for a conference whose lease another live node holds answers ``302 Moved Temporarily`` with
  ``Contact: <sip:<dial-user>@owner-host:port>`` and never mixes the room itself.
- ``P node:<node_id>`` = JSON ``{sip, http, started_at}``, PX = 3 x heartbeat (the registry).

Kamailio needs nothing else; every other key here is the nodes' own business.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..control.model import Conference


@dataclass(frozen=True)
class Keys:
    prefix: str = "tutti:"

    def room_node(self, user: str) -> str:
        """The owner's advertise_sip for a dial string of a live room (Kamailio routes on it)."""
        return f"{self.prefix}room:{user}:node"

    def conf_owner(self, conf_id: str) -> str:
        """The owning node's id: the lease, the authority over who mixes the room."""
        return f"{self.prefix}conf:{conf_id}:owner"

    def participants(self, node_id: str, conf_id: str) -> str:
        """Hash participant id -> JSON ParticipantView, mirrored by the node mixing the room
        (per node: a survivor cleaning up a dead node never touches the new owner's entries)."""
        return f"{self.prefix}node:{node_id}:participants:{conf_id}"

    def node(self, node_id: str) -> str:
        """The registry entry: JSON {sip, http, started_at}, expiring after 3 heartbeats."""
        return f"{self.prefix}node:{node_id}"

    def node_rooms(self, node_id: str) -> str:
        """Set of the conference ids the node owns (what the survivors clean up if it dies)."""
        return f"{self.prefix}node:{node_id}:rooms"

    def node_cmd(self, node_id: str) -> str:
        """Pub/sub channel of the commands for the rooms a node owns."""
        return f"{self.prefix}node:{node_id}:cmd"

    def reap(self, node_id: str) -> str:
        """SET NX by the one survivor that announces a lost node's departures."""
        return f"{self.prefix}reap:{node_id}"

    def once(self, what: str, conf_id: str) -> str:
        """SET NX by the one node that does ``what`` for a conference (e.g. end it when it expires)."""
        return f"{self.prefix}once:{what}:{conf_id}"

    @property
    def nodes(self) -> str:
        """Set of every node id that registered (a member whose registry key expired is dead)."""
        return f"{self.prefix}nodes"

    @property
    def conferences(self) -> str:
        """Hash conference id -> JSON conference definition."""
        return f"{self.prefix}conferences"

    @property
    def media(self) -> str:
        """Hash media id -> JSON media metadata."""
        return f"{self.prefix}media"

    def media_bytes(self, media_id: str) -> str:
        """The uploaded file's bytes."""
        return f"{self.prefix}media:{media_id}:bytes"

    @property
    def conf_changes(self) -> str:
        """Pub/sub: a conference id whose definition changed (re-read the hash)."""
        return f"{self.prefix}conf-changes"

    @property
    def media_changes(self) -> str:
        """Pub/sub: a media id added or deleted (re-read the hash)."""
        return f"{self.prefix}media-changes"

    @property
    def room_changes(self) -> str:
        """Pub/sub: an owner's snapshot of one live room (owner, participants) or its end."""
        return f"{self.prefix}room-changes"


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client decodes replies; the stubs still say bytes | str)."""
    return value.decode() if isinstance(value, bytes) else value


def dial_users(conf: Conference) -> tuple[str, ...]:
    """Every Request-URI user that reaches ``conf``: its id, its config room name, its dial-in code."""
    users = [conf.id]
    if conf.source == "config" and conf.name:
        users.append(conf.name)
    if conf.dial_in_code:
        users.append(conf.dial_in_code)
    return tuple(dict.fromkeys(users))
