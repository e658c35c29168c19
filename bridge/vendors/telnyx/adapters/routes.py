"""Telnyx's conference API over aiohttp, under ``/telnyx/v2`` (README "Telnyx API").

Point the Telnyx SDK's ``base_url`` at ``http://<bridge>:<port>/telnyx/v2`` and use one of the
account's API tokens as its API key (``Authorization: Bearer``). Every error is Telnyx-shaped
(``{"errors": [{"code", "title", "detail", "source"}]}``), 401 and unknown routes included.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from ....adapters.http_api import SERVICE, account_of
from ....adapters.media_fetch import MediaFetchError
from ....adapters.storage import stored
from ....call.callcontrol import CallControlError, CallInfo
from ....call.dialed_calls import DialedCall
from ....config import TrunkConfig
from ....control.errors import ControlError
from ....control.model import OPEN_STATUSES, Action, Conference, ParticipantView
from ....control.service import ConferenceService
from .. import validation as v
from .. import views
from ....recording.service import RecordingService
from ..commands import CommandLog
from ..dial import dial_webhooks, parse_dial

log = logging.getLogger(__name__)

BASE = "/telnyx/v2"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Our ControlError statuses -> (HTTP status, Telnyx code)
_MAP = {400: (422, "10015"), 401: (401, "10009"), 403: (403, "10010"), 404: (404, "10005"),
        409: (422, "10015"), 413: (413, "10015"), 429: (429, "10011")}
NOT_IN_BRIDGE = ("leave", "speak", "send_dtmf", "gather_using_audio")


class CallControlPort(Protocol):
    """The call side's call-control commands (``bridge.adapters.call_io.CallAdapter``)."""

    def call_command(self, command: str, ccid: str, account: str, **args: Any) -> None: ...

    def call_info(self, ccid: str, account: str) -> CallInfo: ...

    def dial_call(self, conf: Conference, number: str, role: str, muted: bool, trunk: TrunkConfig,
                  timeout_s: float, watch: DialedCall | None = None) -> ParticipantView: ...

    async def fetch_audio(self, url: str) -> None: ...

    def whisper(self, conf_id: str, participant_id: str, targets: list[str] | None) -> bool: ...

    async def play(self, conf_id: str, location: str, media: str, loops: int | None) -> bool: ...

    def stop_playback(self, conf_id: str) -> bool: ...

    def whispers(self, conf_id: str) -> dict[str, list[str]]: ...


_CALL_ERRORS = {"not_found": "10005", "already_answered": "90018", "not_answered": "90018",
                "in_conference": "90018", "refused": "90018"}


def _call_error(err: CallControlError, field: str | None) -> v.TelnyxError:
    status = 404 if err.code == "not_found" and field is None else 422
    return v.TelnyxError(status, _CALL_ERRORS.get(err.code, "10015"), str(err), field)


def _fail(status: int, code: str, detail: str, pointer: str | None = None) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="telnyx"'} if status == 401 else None
    return web.json_response(views.error(code, detail, None if pointer is None else pointer),
                             status=status, headers=headers)


def _telnyx_errors(handler: _Handler) -> _Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except v.TelnyxError as err:
            return _fail(err.status, err.telnyx_code, err.message, err.pointer)
        except ControlError as err:
            status, code = _MAP.get(err.status, (err.status, "10007"))
            if err.code == "missing_field":
                code = "10004"
            field = err.code[len("invalid_"):] if err.code.startswith("invalid_") else None
            return _fail(status, code, err.message, f"/{field}" if field else None)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _fail(exc.status, "10015" if exc.status == 413 else "10005", exc.reason)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            return _fail(500, "10007", "internal error; see the bridge log")
    return wrapped


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise v.TelnyxError(422, "10015", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise v.TelnyxError(422, "10015", "request body must be a JSON object")
    return body



class TelnyxRoutes:
    def __init__(self, calls: CallControlPort | None = None,
                 recordings: Callable[[], RecordingService | None] = lambda: None) -> None:
        self.commands = CommandLog()
        self.calls = calls
        self.recordings = recordings

    def add_routes(self, app: web.Application) -> None:
        confs = BASE + "/conferences"
        one = confs + "/{conference_id}"
        w = _telnyx_errors
        app.router.add_post(confs, w(self.create))
        app.router.add_post(BASE + "/calls", w(self.dial))
        app.router.add_post(BASE + "/calls/{call_control_id}/actions/answer", w(self.answer))
        app.router.add_post(BASE + "/calls/{call_control_id}/actions/hangup", w(self.hangup))
        app.router.add_get(confs, w(self.list_conferences), allow_head=False)
        app.router.add_get(one, w(self.get), allow_head=False)
        app.router.add_get(one + "/participants", w(self.participants), allow_head=False)
        app.router.add_get(one + "/participants/{participant_id}", w(self.participant), allow_head=False)
        for name, handler in (("join", self.join), ("mute", self.mute), ("unmute", self.unmute), ("hold", self.hold),
                              ("unhold", self.unhold), ("update", self.update), ("end", self.end),
                              ("record_start", self.record_start), ("record_stop", self.record_stop),
                              ("record_pause", self.record_pause), ("record_resume", self.record_resume),
                              ("play", self.play), ("stop", self.stop)):
            app.router.add_post(f"{one}/actions/{name}", w(handler))
        for name in NOT_IN_BRIDGE:
            app.router.add_post(f"{one}/actions/{name}", w(self.unsupported))
        app.router.add_route("*", BASE + "/{tail:.*}", w(self.no_route))

    @staticmethod
    def _svc(request: web.Request) -> ConferenceService:
        return request.app[SERVICE]

    def _conf(self, request: web.Request, account: str) -> Conference:
        return self._svc(request).get_owned(account, request.match_info["conference_id"])

    async def no_route(self, request: web.Request) -> web.Response:
        raise v.TelnyxError(404, "10005", f"no such route: {request.method} {request.path}")

    async def unsupported(self, request: web.Request) -> web.Response:
        account_of(request)
        action = request.path.rsplit("/", 1)[-1]
        raise v.TelnyxError(422, "90061", f"the {action} action is not available on this bridge")

    def _call(self, ccid: str, account: str, field: str | None) -> CallInfo:
        if self.calls is None:
            raise v.TelnyxError(404 if field is None else 422, "10005", "no call control on this bridge", field)
        try:
            return self.calls.call_info(ccid, account)
        except CallControlError as err:
            raise _call_error(err, field) from None

    def _call_command(self, command: str, ccid: str, account: str, field: str | None, **args: Any) -> None:
        assert self.calls is not None   # _call found the call first
        try:
            self.calls.call_command(command, ccid, account, **args)
        except CallControlError as err:
            raise _call_error(err, field) from None

    async def create(self, request: web.Request) -> web.Response:
        """A conference from an answered call under call control; the call is its first participant."""
        account = account_of(request)
        spec = v.parse_create(await _body(request))
        svc = self._svc(request)
        done = spec.command_id and self.commands.seen(account, "create", spec.command_id, time.monotonic())
        made = self.commands.result(account, "create", spec.command_id) if done and spec.command_id else None
        if made is not None:
            return web.json_response({"data": views.conference(svc.get_owned(account, made), svc.clock())})
        call = self._call(spec.call_control_id, account, "call_control_id")
        if not call.answered:
            raise v.TelnyxError(422, "90018", "answer the call before creating a conference from it",
                                "call_control_id")
        if call.conference_id:
            raise v.TelnyxError(422, "90018", f"the call is already in {call.conference_id}", "call_control_id")
        await self._prefetch(spec.settings.get("hold_audio_url"), "hold_audio_url")
        settings = {**spec.settings, "webhook_url": call.webhook_url}
        if call.webhook_failover_url:
            settings["webhook_failover_url"] = call.webhook_failover_url
        conf = svc.create(account, settings)
        try:
            self._call_command("join", spec.call_control_id, account, "call_control_id", conf_id=conf.id)
        except v.TelnyxError:
            svc.end(conf.id)
            raise
        self.commands.record(account, "create", spec.command_id, time.monotonic(), conf.id)
        await stored(svc)
        return web.json_response({"data": views.conference(svc.get_owned(account, conf.id), svc.clock())})

    async def dial(self, request: web.Request) -> web.Response:
        """``POST /v2/calls`` with ``conference_config``: dial a number into a conference."""
        account = account_of(request)
        spec = parse_dial(await _body(request))
        svc = self._svc(request)
        if spec.command_id and self.commands.seen(account, "dial", spec.command_id, time.monotonic()):
            made = self.commands.result(account, "dial", spec.command_id)
            if made is not None:
                return web.json_response({"data": views.dialled_call(made)})
        trunk = next((t for t in svc.config.trunks if t.name == spec.connection_id), None)
        if trunk is None or self.calls is None:
            raise v.invalid("connection_id", f"no trunk named {spec.connection_id!r} on this bridge")
        trunk = trunk.model_copy(update={"from_user": spec.from_user.lstrip("+") if spec.from_user else trunk.from_user,
                                         "from_display": spec.from_display or trunk.from_display})
        named = [c for c in svc.list(account) if c.name == spec.conference_name and c.status in OPEN_STATUSES]
        if spec.conference_id is None and not named:
            raise v.invalid("conference_config/conference_name", "no open conference with that name")
        conf = svc.get_owned(account, spec.conference_id) if spec.conference_id is not None else named[0]
        watch = dial_webhooks(spec, account, svc.config, time.time())
        person = self.calls.dial_call(conf, spec.to, spec.role, spec.muted, trunk, spec.timeout_s, watch)
        self.commands.record(account, "dial", spec.command_id, time.monotonic(), person.participant_id)
        return web.json_response({"data": views.dialled_call(person.participant_id)})

    async def _call_action(self, request: web.Request, command: str) -> web.Response:
        account = account_of(request)
        ccid = request.match_info["call_control_id"]
        body = await _body(request)
        cid = v.command_id(body)
        state = v.parse_call_command(body)
        self._call(ccid, account, None)
        if self.commands.seen(account, f"call:{ccid}", cid, time.monotonic()):
            return web.json_response(views.command_ok())
        self._call_command(command, ccid, account, None, client_state=state)
        self.commands.record(account, f"call:{ccid}", cid, time.monotonic())
        return web.json_response(views.command_ok())

    async def answer(self, request: web.Request) -> web.Response:
        return await self._call_action(request, "answer")

    async def hangup(self, request: web.Request) -> web.Response:
        return await self._call_action(request, "hangup")

    async def list_conferences(self, request: web.Request) -> web.Response:
        account = account_of(request)
        filters = v.parse_filters(request.query, ("name", "status"))
        number, size = v.parse_page(request.query)
        svc = self._svc(request)
        now = svc.clock()
        items = [views.conference(c, now) for c in svc.list(account)]
        items = [i for i in items if all(i[k] == val for k, val in filters.items())]
        items.sort(key=lambda i: i["expires_at"] or "9999", reverse=True)  # Telnyx: by expires_at, descending
        return web.json_response(views.page(items, number, size))

    async def get(self, request: web.Request) -> web.Response:
        account = account_of(request)
        conf = self._conf(request, account)
        return web.json_response({"data": views.conference(conf, self._svc(request).clock())})

    async def participants(self, request: web.Request) -> web.Response:
        account = account_of(request)
        filters = v.parse_filters(request.query, ("muted", "on_hold", "whispering"))
        number, size = v.parse_page(request.query)
        conf = self._conf(request, account)
        whispers = self.calls.whispers(conf.id) if self.calls is not None else {}
        items = [views.participant(conf, p, whispers.get(p.participant_id))
                 for p in self._svc(request).participants(account, conf.id)]
        for key in ("muted", "on_hold"):
            want = v.bool_filter(key, filters.get(key))
            items = [i for i in items if want is None or i[key] == want]
        whispering = v.bool_filter("whispering", filters.get("whispering"))
        if whispering is not None:
            items = [i for i in items if bool(i["whisper_call_control_ids"]) == whispering]
        return web.json_response(views.page(items, number, size))

    async def participant(self, request: web.Request) -> web.Response:
        account = account_of(request)
        conf = self._conf(request, account)
        pid = request.match_info["participant_id"]
        found = next((p for p in self._svc(request).participants(account, conf.id) if p.participant_id == pid), None)
        if found is None:
            raise v.TelnyxError(404, "10005", "participant not found in this conference")
        whispers = self.calls.whispers(conf.id) if self.calls is not None else {}
        return web.json_response({"data": views.participant(conf, found, whispers.get(pid))})

    # -- actions --------------------------------------------------------------------------------

    def _in_conference(self, request: web.Request, account: str, conf: Conference) -> dict[str, ParticipantView]:
        people = self._svc(request).participants(account, conf.id)
        return {p.participant_id: p for p in people if p.status in ("connected", "held")}

    def _targets(self, present: dict[str, ParticipantView], ids: list[str] | None, field: str) -> list[str]:
        if ids is None:
            return list(present)
        unknown = [i for i in ids if i not in present]
        if unknown:
            raise v.TelnyxError(422, "10005", f"not in this conference: {', '.join(unknown[:5])}", field)
        return ids

    async def _command(self, request: web.Request, run: Callable[[str, Conference, dict[str, Any]], None],
                       audio: Callable[[dict[str, Any]], str | None] | None = None) -> web.Response:
        """Run an action once per ``command_id`` (60 s); a repeat answers ok and does nothing.
        ``audio(body)``: the body checked, the audio URL it names (fetched before ``run``)."""
        account = account_of(request)
        conf = self._conf(request, account)
        body = await _body(request)
        cid = v.command_id(body)
        if self.commands.seen(account, conf.id, cid, time.monotonic()):
            log.info("%s: command_id %s repeated within 60 s; ignored", conf.id, cid)
            return web.json_response(views.command_ok())
        if audio is not None:
            await self._prefetch(audio(body), "audio_url")
        run(account, conf, body)
        self.commands.record(account, conf.id, cid, time.monotonic())
        await stored(self._svc(request))
        return web.json_response(views.command_ok())

    async def _prefetch(self, url: object, field: str) -> None:
        """Audio named by URL is fetched (and checked) before the command runs: what cannot be
        fetched or decoded is a 422 now rather than silence later."""
        if self.calls is None or not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return
        try:
            await self.calls.fetch_audio(url)
        except MediaFetchError as err:
            raise v.invalid(field, str(err)) from None

    def _whisper(self, conf: Conference, pid: str, targets: list[str] | None) -> None:
        if self.calls is None or not self.calls.whisper(conf.id, pid, targets):
            if targets:
                raise v.TelnyxError(422, "90018", "whisper needs a live conference", "supervisor_role")

    def _act_all(self, request: web.Request, account: str, conf: Conference, ids: list[str], action: Action) -> None:
        for pid in ids:
            self._svc(request).act(account, conf.id, pid, action)

    async def join(self, request: web.Request) -> web.Response:
        def run(account: str, conf: Conference, body: dict[str, Any]) -> None:
            spec = v.parse_join(body)
            self._call(spec.call_control_id, account, "call_control_id")
            present = self._in_conference(request, account, conf)
            if spec.whisper_to:
                self._targets(present, spec.whisper_to, "whisper_call_control_ids")
            self._call_command("join", spec.call_control_id, account, "call_control_id", conf_id=conf.id,
                               role=spec.role, muted=spec.muted, client_state=spec.client_state)
            if spec.whisper_to:
                self._whisper(conf, spec.call_control_id, spec.whisper_to)
        return await self._command(request, run)

    async def mute(self, request: web.Request) -> web.Response:
        def run(account: str, conf: Conference, body: dict[str, Any]) -> None:
            ids = self._targets(self._in_conference(request, account, conf), v.parse_mute(body), "call_control_ids")
            self._act_all(request, account, conf, ids, "mute")
        return await self._command(request, run)

    async def unmute(self, request: web.Request) -> web.Response:
        def run(account: str, conf: Conference, body: dict[str, Any]) -> None:
            ids = self._targets(self._in_conference(request, account, conf), v.parse_mute(body), "call_control_ids")
            self._act_all(request, account, conf, ids, "unmute")
        return await self._command(request, run)

    async def hold(self, request: web.Request) -> web.Response:
        def run(account: str, conf: Conference, body: dict[str, Any]) -> None:
            ids, music = v.parse_hold(body)
            targets = self._targets(self._in_conference(request, account, conf), ids, "call_control_ids")
            for pid in targets:
                self._svc(request).hold(account, conf.id, pid, True, music)
        return await self._command(request, run, lambda body: v.parse_hold(body)[1])

    async def unhold(self, request: web.Request) -> web.Response:
        def run(account: str, conf: Conference, body: dict[str, Any]) -> None:
            ids = self._targets(self._in_conference(request, account, conf), v.parse_unhold(body), "call_control_ids")
            for pid in ids:
                self._svc(request).hold(account, conf.id, pid, False)
        return await self._command(request, run)

    async def update(self, request: web.Request) -> web.Response:
        def run(account: str, conf: Conference, body: dict[str, Any]) -> None:
            spec = v.parse_update(body)
            present = self._in_conference(request, account, conf)
            self._targets(present, [spec.call_control_id], "call_control_id")
            if spec.whisper_to:
                self._targets(present, spec.whisper_to, "whisper_call_control_ids")
            self._act_all(request, account, conf, [spec.call_control_id], "mute" if spec.muted else "unmute")
            self._whisper(conf, spec.call_control_id, spec.whisper_to)
        return await self._command(request, run)

    async def play(self, request: web.Request) -> web.Response:
        """``play``: audio into the whole conference (see bridge/call/conference_playback.py)."""
        account = account_of(request)
        conf = self._conf(request, account)
        body = await _body(request)
        cid = v.command_id(body)
        if self.commands.seen(account, conf.id, cid, time.monotonic()):
            return web.json_response(views.command_ok())
        spec = v.parse_play(body)
        if self.calls is None:
            raise v.TelnyxError(422, "90061", "playback is not available on this bridge")
        location = spec.location
        if not spec.is_url:
            found = self._svc(request).media_path(account, spec.location)
            if found is None:
                raise v.invalid("media_name", f"no such media: {spec.location}")
            location = found
        try:
            played = await self.calls.play(conf.id, location, spec.location, spec.loops)
        except MediaFetchError as err:
            raise v.invalid("audio_url", str(err)) from None
        if not played:
            raise v.TelnyxError(422, "90018", "nobody is in the conference to hear it")
        self.commands.record(account, conf.id, cid, time.monotonic())
        return web.json_response(views.command_ok())

    async def stop(self, request: web.Request) -> web.Response:
        def run(account: str, conf: Conference, body: dict[str, Any]) -> None:
            v.parse_stop(body)
            if self.calls is None or not self.calls.stop_playback(conf.id):
                raise v.TelnyxError(422, "90018", "nothing is playing in this conference")
        return await self._command(request, run)

    async def end(self, request: web.Request) -> web.Response:
        def run(account: str, conf: Conference, body: dict[str, Any]) -> None:
            v.parse_end(body)
            if conf.status in ("ended", "expired"):
                raise v.TelnyxError(422, "10015", f"conference is already {views.STATUS[conf.status]}")
            self._svc(request).delete(account, conf.id)
        return await self._command(request, run)


    # -- recording (the same service as the Audian routes; Telnyx's option names) -----------------

    def _recording_service(self) -> RecordingService:
        service = self.recordings()
        if service is None:
            raise v.TelnyxError(422, "90061", "recording is not available on this bridge")
        return service

    async def record_start(self, request: web.Request) -> web.Response:
        def run(account: str, conf: Conference, body: dict[str, Any]) -> None:
            self._recording_service().start(account, conf.id, {k: x for k, x in body.items() if k != "command_id"})
        return await self._command(request, run)

    async def _record_control(self, request: web.Request,
                              verb: Callable[[RecordingService], Callable[[str, str, str | None], object]]
                              ) -> web.Response:
        def run(account: str, conf: Conference, body: dict[str, Any]) -> None:
            verb(self._recording_service())(account, conf.id, v.parse_recording_control(body))
        return await self._command(request, run)

    async def record_stop(self, request: web.Request) -> web.Response:
        return await self._record_control(request, lambda service: service.stop)

    async def record_pause(self, request: web.Request) -> web.Response:
        return await self._record_control(request, lambda service: service.pause)

    async def record_resume(self, request: web.Request) -> web.Response:
        return await self._record_control(request, lambda service: service.resume)


def telnyx_routes(calls: CallControlPort | None,
                  recordings: Callable[[], RecordingService | None] = lambda: None) -> Callable[[web.Application], None]:
    """For ``build_http_app(..., extra_routes=[...])``; ``calls``: the call side (call control);
    ``recordings``: the recording service, once it exists."""
    return TelnyxRoutes(calls, recordings).add_routes
