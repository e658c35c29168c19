"""Browser participants in the call core: seated in rooms like SIP callers, without SIP.

A browser (WebRTC) participant arrives over HTTP signalling, already past its PIN check,
with a port the adapter built (``bridge/adapters/webrtc_rtp.py``: the browser's Opus packets
through an RTP session's jitter buffer, the room's Opus packets back). The room seats it as an
Opus leg like a SIP Opus caller's: its own decoder (in-band FEC), the shared Opus encodes, the
loss its RTCP reports (``report_loss``) choosing its encode's FEC. Here it
becomes a ``Participant`` of kind ``webrtc``: listed, muted, kicked and announced (join/leave
events, webhooks) through the same paths as any caller. Sans-IO: no aiortc, no sockets.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge.call.leg import encoder_options, jitter_min_ms, loss_depth
from bridge.control import events as ev
from bridge.control.participants import Participant
from bridge.control.roles import permissions

if TYPE_CHECKING:
    from bridge.call.core import CallCore
    from bridge.config import Config

log = logging.getLogger("bridge.calls")

OPUS_PT = 111   # the room lists it; the adapter's RTP session is fed headers with it


class BrowserRefused(Exception):
    """Why a browser cannot join: ``reason`` is the prompt name a caller would hear."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class BrowserConnection:
    """The ``RoomConnection`` of a browser: its port and Opus."""

    room_port: Any
    codec: str = "opus"
    payload_type: int = OPUS_PT
    encoder_opts: dict[str, Any] = field(default_factory=dict)


def browser_rtp(config: Config) -> dict[str, Any]:
    """A browser port's jitter buffer settings: those of a SIP Opus caller (rtp.jitter_*,
    media.opus_fec_lookahead_ms, media.opus_loss_depth)."""
    return {"jitter_min_ms": jitter_min_ms(config, "opus"), "jitter_max_ms": config.rtp.jitter_max_ms,
            "loss_depth": loss_depth(config, "opus")}


class BrowserSeats:
    """The browser participants of one call core, by participant id."""

    def __init__(self, core: CallCore) -> None:
        self.core = core
        self.seated: dict[str, Participant] = {}

    def join(self, conf_id: str, name: str, role: str, port: Any, now: float, fmtp: str = "") -> Participant:
        """Seat a browser in ``conf_id`` (PIN already checked); raises ``BrowserRefused``.
        ``fmtp``: its offer's Opus fmtp (a maxaveragebitrate caps what it is sent)."""
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
        live.join(p, BrowserConnection(port, encoder_opts=encoder_options(core.config, "opus", fmtp)),
                  role, core.wall())
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

    def report_loss(self, pid: str, fraction_lost: float) -> None:
        """An RTCP report from the browser: the fraction of our packets it lost (0..1)."""
        p = self.seated.get(pid)
        live = self.core.rooms.get(p.conference_id) if p is not None else None
        if live is not None and pid in live.members:
            live.room.report_loss(pid, fraction_lost)

    def set_muted(self, pid: str, muted: bool, now: float) -> bool:
        """The page's own mute button; False when the role may not unmute itself (a listener)."""
        self.core.now = now
        p = self.seated.get(pid)
        live = self.core.rooms.get(p.conference_id) if p is not None else None
        if p is None or live is None or (not muted and not permissions(p.role).unmute_self):
            return False
        return live.set_muted(pid, muted)
