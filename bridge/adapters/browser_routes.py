"""The join page and its signalling: browsers join conferences over HTTP + WebRTC.

Routes (all under the conference's public ``join_url``, no API token: the PIN is the key):

- ``GET  /conferences/{id}/join``: the page for ``Accept: text/html``, else the JSON join info;
- ``POST /conferences/{id}/join/session``: ``{name, pin, sdp}`` -> ``{participant_id, token,
  role, sdp}``. The PIN is judged here, before any peer connection exists, and wrong PINs
  are slowed down and locked out per address (the SIP IVR's ``PinGuard``);
- ``GET  /conferences/{id}/join/session/{pid}/events?token=``: server-sent events, a ``state``
  snapshot after every domain event of the conference and ``ended`` with the reason;
- ``POST /conferences/{id}/join/session/{pid}/{mute|unmute|leave|moderate}`` with the token.

A session token is bound to one participant of one conference: another conference's id in the
path is a 404, whatever the token.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bridge.adapters.call_io import CallAdapter
from bridge.adapters.http_api import JOIN_PAGE, json_object
from bridge.adapters.webrtc import BrowserPeer, page_ice_servers
from bridge.call.browser import BrowserRefused, browser_rtp
from bridge.config import Config
from bridge.control import events as ev
from bridge.control import keypad as kp
from bridge.control.errors import ControlError, bad_request, not_found
from bridge.control.ivr import RoomTarget
from bridge.control.model import Action
from bridge.control.pin_guard import PinGuard
from bridge.control.roles import permissions
from bridge.control.service import ConferenceService

log = logging.getLogger("bridge.webrtc")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
MAX_NAME = 64
_REFUSALS = {
    "room_full": "The conference is full.", "room_locked": "The conference is locked.",
    "not_started": "The conference has not started yet.", "ended": "The conference has ended.",
}
_LEFT = {
    "kicked": "You were removed from the conference by a moderator.",
    "conference_ended": "The conference has ended.", "ended_via_api": "The conference has ended.",
    "hangup": "You left the conference.", "shutdown": "The bridge is shutting down.",
}


@dataclass
class Session:
    pid: str
    conf_id: str
    token: str
    role: str
    peer: BrowserPeer
    listeners: list[asyncio.Queue[tuple[str, dict[str, Any]]]] = field(default_factory=list)
    ended: str | None = None


class BrowserGateway:
    """Browser sessions of this node: signalling, the per-node cap, live state for the pages."""

    def __init__(self, config: Config, calls: CallAdapter, service: ConferenceService, pins: PinGuard,
                 bus: ev.EventBus) -> None:
        self.config = config
        self.calls = calls
        self.service = service
        self.pins = pins
        self.sessions: dict[str, Session] = {}
        self._pending = 0            # peers being set up (counted against the cap)
        self._closing: set[asyncio.Task[None]] = set()
        bus.subscribe("webrtc", self.on_event)

    # -- live state -------------------------------------------------------------------------

    def snapshot(self, conf_id: str, me: str) -> dict[str, Any]:
        core = self.calls.core
        live = core.rooms.get(conf_id)
        people = [{
            "id": p.participant_id, "name": p.caller_id_name or p.caller_id_number or "Caller",
            "role": p.role, "muted": p.muted, "talking": p.talking, "on_hold": p.on_hold,
            "kind": p.kind, "me": p.participant_id == me,
        } for p in core.participants(conf_id) if p.status in ("connected", "held")]
        return {
            "participants": people,
            "locked": bool(live and live.locked),
            "recording": bool(live and live.recording and live.recording.active is not None),
        }

    def _send(self, s: Session, kind: str, data: dict[str, Any]) -> None:
        for q in s.listeners:
            if q.full():
                q.get_nowait()
            q.put_nowait((kind, data))

    def on_event(self, event: ev.DomainEvent) -> None:
        for s in list(self.sessions.values()):
            if s.conf_id != event.conference_id:
                continue
            if isinstance(event, ev.ParticipantLeft) and event.participant_id == s.pid:
                self._end(s, event.reason)
            elif isinstance(event, ev.ConferenceEnded) and s.ended is None:
                self._end(s, "conference_ended")
            elif s.ended is None:
                self._send(s, "state", self.snapshot(s.conf_id, s.pid))

    def _end(self, s: Session, reason: str) -> None:
        if s.ended is not None:
            return
        s.ended = reason
        self._send(s, "ended", {"reason": reason, "message": _LEFT.get(reason, "The call has ended.")})
        self.sessions.pop(s.pid, None)
        task = asyncio.get_running_loop().create_task(s.peer.close())
        self._closing.add(task)                      # held until done (the loop keeps weak refs)
        task.add_done_callback(self._closing.discard)

    def _peer_closed(self, pid: str) -> None:
        """The browser's connection failed or closed: it left, as a SIP caller's BYE."""
        s = self.sessions.get(pid)
        if s is not None and s.ended is None:
            self.calls.core.browsers.leave(pid, "hangup", self.calls.loop.time())
            self.calls.after_control()

    # -- signalling -------------------------------------------------------------------------

    async def join(self, conf_id: str, source: str, body: dict[str, Any]) -> dict[str, Any]:
        cfg = self.service.config.webrtc        # follows a configuration reload
        conf = self.service.get(conf_id)
        if conf is None or conf.account_id is None:
            raise not_found()
        if not cfg.enabled:
            raise ControlError(403, "webrtc_disabled", "joining from a browser is turned off on this bridge")
        name, pin, sdp = body.get("name"), body.get("pin", ""), body.get("sdp")
        if (not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME
                or any(ord(c) < 32 or ord(c) == 127 for c in name)):
            raise bad_request("invalid_name", f"name is required (1-{MAX_NAME} characters, no control characters)")
        if not isinstance(pin, str) or not isinstance(sdp, str) or not sdp.startswith("v=0"):
            raise bad_request("invalid_body", "pin must be a string and sdp an SDP offer")
        now = time.monotonic()
        wait = self.pins.wait(source, conf.id, now)
        if wait > 0:
            raise ControlError(429, "too_many_attempts", "Too many wrong PINs from this address: "
                               f"try again in {'a while' if wait == float('inf') else f'{wait:.0f} s'}.",
                               ) from None
        role = RoomTarget(conf.id, tuple(conf.member_pins), tuple(conf.moderator_pins)).role_for(pin.strip())
        if role is None:
            self.pins.failed(source, conf.id, now)
            raise ControlError(403, "wrong_pin", "That PIN is not right. Check it and try again.")
        self.pins.succeeded(source, conf.id)
        if len(self.sessions) + self._pending >= cfg.max_participants:
            raise ControlError(503, "browser_capacity", "This bridge has as many browser participants as it "
                               f"takes ({cfg.max_participants}, config.yaml webrtc.max_participants); "
                               "dial in by phone or try later.")
        self._pending += 1
        holder: list[str] = []
        core = self.calls.core
        peer = BrowserPeer(cfg, browser_rtp(core.config), lambda: self._peer_closed(holder[0]) if holder else None)
        try:
            try:
                answer = await peer.answer(sdp)
            except ValueError as err:      # no audio, no Opus, or SDP aiortc cannot parse
                raise bad_request("invalid_sdp", f"the offer cannot be answered: {err}") from None
            try:
                p = core.browsers.join(conf.id, name.strip(), role, peer.port, self.calls.loop.time(), peer.fmtp)
            except BrowserRefused as err:
                raise ControlError(409, err.reason, _REFUSALS.get(err.reason, "You cannot join now.")) from None
            finally:
                self.calls.after_control()
        except BaseException:
            self._pending -= 1
            await peer.close()
            raise
        self._pending -= 1
        holder.append(p.participant_id)
        pid = p.participant_id
        peer.port.on_loss = lambda fraction: core.browsers.report_loss(pid, fraction)
        token = secrets.token_urlsafe(24)
        self.sessions[p.participant_id] = Session(p.participant_id, conf.id, token, p.role, peer)
        return {"participant_id": p.participant_id, "token": token, "role": p.role,
                "moderator": permissions(p.role).control, "sdp": answer}

    def session(self, request: web.Request) -> Session:
        m = request.match_info
        s = self.sessions.get(m["participant_id"])
        token = request.query.get("token") or request.headers.get("X-Session-Token") or ""
        if s is None or s.conf_id != m["conference_id"] or not hmac.compare_digest(
                s.token.encode(), token.encode("utf-8", "surrogateescape")):
            raise not_found("no such browser session")
        return s

    def act(self, s: Session, action: str, target: str | None) -> None:
        core, now = self.calls.core, self.calls.loop.time()
        try:
            if action in ("mute", "unmute"):
                if not core.browsers.set_muted(s.pid, action == "mute", now):
                    raise ControlError(403, "not_allowed", "You are here to listen: you cannot unmute yourself.")
            elif action == "leave":
                core.browsers.leave(s.pid, "hangup", now)
            else:
                self._moderate(s, action, target, now)
        finally:
            self.calls.after_control()

    def _moderate(self, s: Session, action: str, target: str | None, now: float) -> None:
        core = self.calls.core
        live = core.rooms.get(s.conf_id)
        member = live.members.get(s.pid) if live is not None else None
        if live is None or member is None or not permissions(member.participant.role).control:
            raise ControlError(403, "not_moderator", "only a moderator may do this")
        if action in ("kick", "mute_other", "unmute_other"):
            if not target or target not in live.members:
                raise not_found("participant not found in this conference")
            verb: Action = "kick" if action == "kick" else "mute" if action == "mute_other" else "unmute"
            core.act(s.conf_id, target, verb, now)
        elif action in ("lock", "unlock"):
            live._keypad_action(member, kp.SetLocked(action == "lock"))
        elif action in ("mute_all", "unmute_all"):
            live._keypad_action(member, kp.MuteAllNonModerators(action == "mute_all"))
        elif action == "record":
            if live.recording is None:
                raise ControlError(409, "recording_unavailable", "recording is not available on this bridge")
            live._keypad_action(member, kp.ToggleRecording(s.pid))
        else:
            raise bad_request("invalid_action", "action must be kick, mute_other, unmute_other, lock, unlock, "
                              "mute_all, unmute_all or record")
        self.on_event(ev.DomainEvent(s.conf_id))   # the pages see locks and recording at once

    async def close(self) -> None:
        for s in list(self.sessions.values()):
            await s.peer.close()


# -- routes ------------------------------------------------------------------------------------


def browser_routes(gateway: BrowserGateway) -> Any:
    """``extra_routes`` entry for ``build_http_app``; the JSON join route stays as it was for JSON."""

    async def page(request: web.Request) -> web.StreamResponse:
        conf = gateway.service.get(request.match_info["conference_id"])
        if conf is None or conf.account_id is None:
            raise not_found()
        html = (WEB_DIR / "join.html").read_text(encoding="utf-8")
        boot = json.dumps({"id": conf.id, "name": conf.name, "member_pin": bool(conf.member_pins),
                           "moderator_pin": bool(conf.moderator_pins),
                           "ice_servers": page_ice_servers(gateway.service.config.webrtc)})
        html = html.replace("__BOOT__", boot.replace("<", "\\u003c")).replace(
            "__TITLE__", _escape(conf.name or conf.id))
        return web.Response(text=html, content_type="text/html", headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
                                       "connect-src 'self'; img-src 'self' data:",
            "Cache-Control": "no-store", "X-Frame-Options": "DENY"})

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        types = {"join.js": "application/javascript", "join.css": "text/css"}
        if name not in types:
            raise not_found()
        return web.Response(body=(WEB_DIR / name).read_bytes(), content_type=types[name],
                            headers={"Cache-Control": "max-age=300"})

    async def join(request: web.Request) -> web.Response:
        body = await json_object(request)
        answer = await gateway.join(request.match_info["conference_id"], request.remote or "", body)
        return web.json_response(answer, status=201)

    async def events(request: web.Request) -> web.StreamResponse:
        s = gateway.session(request)
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(64)
        s.listeners.append(queue)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await resp.prepare(request)
        try:
            queue.put_nowait(("state", gateway.snapshot(s.conf_id, s.pid)))
            while True:
                try:
                    kind, data = await asyncio.wait_for(queue.get(), 15.0)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                await resp.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
                if kind == "ended":
                    break
        except ConnectionResetError:
            pass                          # the page went away; its peer connection says the rest
        finally:
            s.listeners.remove(queue)
        return resp

    async def action(request: web.Request) -> web.Response:
        s = gateway.session(request)
        verb = request.match_info["action"]
        target = None
        if verb == "moderate":
            body = await json_object(request)
            if not isinstance(body.get("action"), str):
                raise bad_request("invalid_body", 'moderate takes {"action": ..., "participant_id": ...}')
            verb, target = body["action"], body.get("participant_id")
        elif verb not in ("mute", "unmute", "leave"):
            raise not_found()
        gateway.act(s, verb, target if isinstance(target, str) else None)
        return web.Response(status=204)

    def add(app: web.Application) -> None:
        base = "/conferences/{conference_id}/join"
        app.router.add_get("/web/{name}", asset, allow_head=False)
        app.router.add_post(base + "/session", join)
        app.router.add_get(base + "/session/{participant_id}/events", events, allow_head=False)
        app.router.add_post(base + "/session/{participant_id}/{action}", action)
        app[JOIN_PAGE] = page

    return add


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))
