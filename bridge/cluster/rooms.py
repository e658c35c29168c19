"""``LiveRooms`` across nodes: a room mixed here is handled locally; a room another node mixes
gets its commands over Redis (``P node:<owner>:cmd``) and its listing from that node's snapshot.

Commands are fire-and-forget pub/sub messages: the owner applies them at its next tick, and its
next snapshot shows the result. A command sent while the owner dies is lost with the owner's
calls (the survivors then announce those participants as left, reason ``node_lost``).
"""

from __future__ import annotations

from typing import Any, cast

from ..control.errors import ControlError
from ..control.model import Action, Conference, EndReason, LiveRooms, ParticipantView
from .node import ClusterNode


class ClusterRooms:
    def __init__(self, local: LiveRooms, node: ClusterNode) -> None:
        self.local = local
        self.node = node

    def _command(self, owner: str, op: str, conf_id: str, **fields: object) -> None:
        self.node.send(owner, {"op": op, "conf": conf_id, "from": self.node.me.node_id, **fields})

    def _part_here(self, conf_id: str) -> bool:
        """This node holds a part of a room another node owns (README "One room across nodes")."""
        return self.node.is_part(conf_id)

    def participants(self, conf_id: str) -> list[ParticipantView]:
        room = self.node.remote_room(conf_id)
        if room is None:
            return self.local.participants(conf_id)
        here = self.local.participants(conf_id) if self._part_here(conf_id) else []
        return list(room.participants) + here

    def act(self, conf_id: str, participant_id: str, action: Action) -> bool:
        room = self.node.remote_room(conf_id)
        if room is None:
            return self.local.act(conf_id, participant_id, action)
        if self._part_here(conf_id) and self.local.act(conf_id, participant_id, action):
            return True          # a caller of this node's part
        if not room.has(participant_id):
            return False
        self._command(room.node_id, "act", conf_id, pid=participant_id, action=action)
        return True

    def hold(self, conf_id: str, participant_id: str, on_hold: bool, music: str | None = None) -> bool:
        room = self.node.remote_room(conf_id)
        if room is None:
            return self.local.hold(conf_id, participant_id, on_hold, music)
        if self._part_here(conf_id) and self.local.hold(conf_id, participant_id, on_hold, music):
            return True
        if not room.has(participant_id):
            return False
        self._command(room.node_id, "hold", conf_id, pid=participant_id, on_hold=on_hold, music=music)
        return True

    def end_conference(self, conf_id: str, reason: EndReason = "ended_via_api") -> None:
        room = self.node.remote_room(conf_id)
        if room is None:
            self.local.end_conference(conf_id, reason)
        else:   # the owner announces the end (one conference.ended in the cluster)
            self._command(room.node_id, "end", conf_id, reason=reason)

    def conference_changed(self, conf: Conference) -> None:
        # The other nodes hear of the change on ``P conf-changes`` and apply it to their part.
        self.local.conference_changed(conf)

    def dial_out(self, conf: Conference, number: str, name: str, role: str, muted: bool,
                 sms_text: str | None = None) -> ParticipantView:
        self.here_only(conf.id, "add participants")
        return self.local.dial_out(conf, number, name, role, muted, sms_text)

    def here_only(self, conf_id: str, what: str) -> None:
        """Refuse (409, naming the owner's API) what only the node mixing the room can do."""
        room = self.node.remote_room(conf_id)
        if room is None:
            return
        where = f" ({room.http})" if room.http else ""
        raise ControlError(409, "conference_on_other_node",
                           f"conference {conf_id} is live on node {room.node_id}{where}; {what} through that node's API")


class ClusterCallControl:
    """The Telnyx room commands (play, stop playback, whisper, dial into a conference) for rooms mixed
    here; for a room another node mixes they answer 409 naming that node instead of doing nothing."""

    def __init__(self, local: Any, rooms: ClusterRooms) -> None:
        self.local = local
        self.rooms = rooms

    def __getattr__(self, name: str) -> Any:      # call_command, call_info, fetch_audio, whispers
        return getattr(self.local, name)

    def dial_call(self, conf: Conference, *args: Any, **kwargs: Any) -> ParticipantView:
        self.rooms.here_only(conf.id, "add participants")
        return cast(ParticipantView, self.local.dial_call(conf, *args, **kwargs))

    def whisper(self, conf_id: str, participant_id: str, targets: list[str] | None) -> bool:
        self.rooms.here_only(conf_id, "whisper")
        return bool(self.local.whisper(conf_id, participant_id, targets))

    async def play(self, conf_id: str, location: str, media: str, loops: int | None) -> bool:
        self.rooms.here_only(conf_id, "play audio")
        return bool(await self.local.play(conf_id, location, media, loops))

    def stop_playback(self, conf_id: str) -> bool:
        self.rooms.here_only(conf_id, "stop playback")
        return bool(self.local.stop_playback(conf_id))
