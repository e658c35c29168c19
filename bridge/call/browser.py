"""Browser participants in the call core: seated in rooms like SIP callers, without SIP.

A browser (WebRTC) participant arrives over HTTP signalling, already past its PIN check,
with a port the adapter built (``bridge/adapters/webrtc.py``: aiortc decodes and encodes
Opus; the room sees L16 at the room's rate through the ordinary ``RtpPort`` protocol). Here it
becomes a ``Participant`` of kind ``webrtc``: listed, muted, kicked and announced (join/leave
events, webhooks) through the same paths as any caller. Sans-IO: no aiortc, no sockets.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge.control import events as ev
from bridge.control.participants import Participant
from bridge.control.roles import permissions

if TYPE_CHECKING:
    from bridge.call.core import CallCore

log = logging.getLogger("bridge.calls")

L16_ROOM_RATES = (8000, 16000, 48000)


class BrowserRefused(Exception):
    """Why a browser cannot join: ``reason`` is the prompt name a caller would hear."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class BrowserConnection:
    """The ``RoomConnection`` of a browser: its port and the room-rate L16 codec."""

    room_port: Any
    codec: str
    payload_type: int = 96
    encoder_opts: dict[str, Any] = field(default_factory=dict)


def room_codec(rate: int) -> str:
    """The codec name that carries PCM at ``rate`` unchanged (``L16/<rate>``)."""
    return f"L16/{rate if rate in L16_ROOM_RATES else 48000}"


class BrowserSeats:
    """The browser participants of one call core, by participant id."""

    def __init__(self, core: CallCore) -> None:
        self.core = core
        self.seated: dict[str, Participant] = {}

    def join(self, conf_id: str, name: str, role: str, port: Any, now: float) -> Participant:
        """Seat a browser in ``conf_id`` (PIN already checked); raises ``BrowserRefused``."""
        core = self.core
        core.now = now
        conf = core.directory.resolve_dial(conf_id)
        refusal = core._not_open(conf)
        if refusal is not None or conf is None or conf.id != conf_id:
            raise BrowserRefused(refusal or "ended")
        live = core.rooms.get(conf.id)
        refusal = live.refuses(role) if live is not None else None
        if refusal is not None:
            raise BrowserRefused(refusal)
        if live is None:
            live = core.open_room(conf)
        p = Participant(f"web-{secrets.token_hex(6)}", "webrtc", "browser", name, core.wall(),
                        conference_id=conf.id)
        core.book.seat(p)
        live.join(p, BrowserConnection(port, room_codec(conf.rate)), role, core.wall())
        self.seated[p.participant_id] = p
        return p

    def leave(self, pid: str, reason: ev.LeaveReason, now: float | None = None) -> bool:
        """The browser left (or was removed): out of its room, listed as disconnected."""
        if now is not None:
            self.core.now = now
        p = self.seated.pop(pid, None)
        if p is None:
            return False
        core = self.core
        live = core.rooms.get(p.conference_id)
        if live is not None and pid in live.members:
            live.leave(pid, reason, core.wall())
            core.book.left(p)
            if not live.members:
                del core.rooms[p.conference_id]
                core.bus.publish(ev.ConferenceEnded(p.conference_id, reason=live.end_reason))
        log.info("%s (browser) left %s: %s", pid, p.conference_id, reason)
        return True

    def set_muted(self, pid: str, muted: bool, now: float) -> bool:
        """The page's own mute button; False when the role may not unmute itself (a listener)."""
        self.core.now = now
        p = self.seated.get(pid)
        live = self.core.rooms.get(p.conference_id) if p is not None else None
        if p is None or live is None or (not muted and not permissions(p.role).unmute_self):
            return False
        return live.set_muted(pid, muted)
