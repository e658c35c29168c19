"""What the other nodes know of a room this node mixes: its owner and its participants.

The owner writes each participant to ``P node:<owner>:participants:<conf>`` (a hash, for the
survivors if the owner dies) and publishes a snapshot of the room on ``P room-changes`` (so every
node keeps the listing in memory: ``LiveRooms.participants`` must answer without waiting).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..control.model import ParticipantView, parse_iso

_TIMES = ("joined_at", "left_at", "created_at")


def view_to_json(view: ParticipantView) -> str:
    data: dict[str, Any] = dataclasses.asdict(view)
    for name in _TIMES:
        value = data[name]
        data[name] = value.isoformat() if isinstance(value, datetime) else None
    return json.dumps(data)


def view_from_json(text: str) -> ParticipantView:
    data = json.loads(text)
    known = {f.name for f in dataclasses.fields(ParticipantView)}
    kwargs = {k: v for k, v in data.items() if k in known}
    for name in _TIMES:
        kwargs[name] = parse_iso(kwargs.get(name))
    return ParticipantView(**kwargs)


@dataclass(frozen=True)
class RemoteRoom:
    """A room another node mixes, as its last snapshot showed it."""

    conf_id: str
    node_id: str
    sip: str                  # the owner's advertise_sip (where a 302 sends callers)
    participants: tuple[ParticipantView, ...] = ()

    def has(self, participant_id: str) -> bool:
        return any(p.participant_id == participant_id and p.status in ("connected", "held")
                   for p in self.participants)


def snapshot_message(conf_id: str, node_id: str, sip: str, views: list[ParticipantView] | None) -> str:
    """``views`` None: the room is no longer live on ``node_id``."""
    return json.dumps({"conf": conf_id, "node": node_id, "sip": sip, "live": views is not None,
                       "participants": [json.loads(view_to_json(v)) for v in views or []]})


def parse_snapshot(text: str) -> RemoteRoom | tuple[str, str]:
    """A live room, or (conf id, node id) of a room that ended there."""
    data = json.loads(text)
    if not data.get("live"):
        return str(data["conf"]), str(data["node"])
    views = tuple(view_from_json(json.dumps(v)) for v in data.get("participants", []))
    return RemoteRoom(str(data["conf"]), str(data["node"]), str(data["sip"]), views)


def redirect_contact(user: str, owner_sip: str) -> str:
    """``Contact`` of the 302 that sends a caller of ``user`` to the owner (``sip:host:port``)."""
    scheme, _, hostport = owner_sip.partition(":")
    hostport = hostport.split(";", 1)[0].rsplit("@", 1)[-1]
    return f"<{scheme}:{user}@{hostport}>"
