"""FreeClimb's conference API over aiohttp, under ``/freeclimb/apiserver`` (README "FreeClimb API").

Point the FreeClimb SDK's ``Configuration(host=...)`` at ``http://<bridge>:<port>/freeclimb/apiserver``
and use the bridge account's ``id`` as the FreeClimb account id and any of its API tokens as the
API key (HTTP Basic). Every error is FreeClimb-shaped (``views.error``), including 401, unknown
routes and oversized bodies.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ....adapters.http_api import CONFIG, SERVICE
from ....adapters.storage import stored
from ....control.errors import ControlError, bad_request, not_found
from ....control.model import ParticipantView
from ....control.service import ConferenceService
from .. import validation as v
from .. import views

log = logging.getLogger(__name__)

BASE = "/freeclimb/apiserver"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_UNAUTHORIZED = {"WWW-Authenticate": 'Basic realm="FreeClimb"'}


def _fail(status: int, code: str, message: str) -> web.Response:
    return web.json_response(views.error(status, code, message), status=status,
                             headers=_UNAUTHORIZED if status == 401 else None)


def _freeclimb_errors(handler: _Handler) -> _Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ControlError as err:
            return _fail(err.status, err.code, err.message)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _fail(exc.status, "http_error", exc.reason)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            return _fail(500, "internal_error", "internal error; see the bridge log")
    return wrapped


def _account(request: web.Request) -> str:
    """HTTP Basic: user = the account id, password = one of its API tokens; the path's account must match."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise ControlError(401, "unauthorized", "missing credentials: send HTTP Basic auth (account id, API key)")
    try:
        user, sep, key = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError):
        raise ControlError(401, "unauthorized", "malformed Basic credentials") from None
    ok = False
    for account in request.app[CONFIG].accounts:
        if account.id == user and sep:
            for token in account.all_tokens():
                ok |= hmac.compare_digest(key.encode("utf-8"), token.encode("utf-8"))
    if not ok:
        raise ControlError(401, "unauthorized", "invalid account id or API key")
    if request.match_info.get("account_id") != user:
        raise ControlError(403, "forbidden", "the credentials belong to another account")
    return user


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise bad_request("invalid_json", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("invalid_body", "request body must be a JSON object")
    return body



class FreeClimbRoutes:
    def add_routes(self, app: web.Application) -> None:
        confs = BASE + "/Accounts/{account_id}/Conferences"
        one = confs + "/{conference_id}"
        person = one + "/Participants/{call_id}"
        w = _freeclimb_errors
        app.router.add_post(confs, w(self.create))
        app.router.add_get(confs, w(self.list_conferences), allow_head=False)
        app.router.add_get(one, w(self.get), allow_head=False)
        app.router.add_post(one, w(self.update))
        app.router.add_get(one + "/Participants", w(self.participants), allow_head=False)
        app.router.add_get(person, w(self.participant), allow_head=False)
        app.router.add_post(person, w(self.update_participant))
        app.router.add_delete(person, w(self.remove_participant))
        app.router.add_route("*", BASE + "/{tail:.*}", w(self.no_route))

    @staticmethod
    def _svc(request: web.Request) -> ConferenceService:
        return request.app[SERVICE]

    def _view(self, request: web.Request, account: str, conf_id: str) -> dict[str, Any]:
        svc = self._svc(request)
        conf = svc.get_owned(account, conf_id)
        return views.conference(conf, account, svc.live.participants(conf.id), svc.clock())

    async def no_route(self, request: web.Request) -> web.Response:
        raise ControlError(404, "not_found", f"no such route: {request.method} {request.path}")

    async def create(self, request: web.Request) -> web.Response:
        account = _account(request)
        svc = self._svc(request)
        conf = svc.create(account, v.parse_create(await _body(request)), name_required=False)
        await stored(svc)
        return web.json_response(self._view(request, account, conf.id), status=202)

    async def list_conferences(self, request: web.Request) -> web.Response:
        account = _account(request)
        q = request.query
        v.check_query(q, v.LIST_FILTERS)
        status = v.status_filter(q.get("status"))
        created = v.parse_date_query("dateCreated", q.get("dateCreated"))
        updated = v.parse_date_query("dateUpdated", q.get("dateUpdated"))
        start = v.parse_cursor(q.get("cursor"))
        svc = self._svc(request)
        now = svc.clock()
        items = []
        for conf in svc.list(account):
            item = views.conference(conf, account, svc.live.participants(conf.id), now)
            if status is not None and item["status"] != status:
                continue
            if "alias" in q and conf.name != q["alias"]:
                continue
            if created is not None and conf.created_at.date() != created:
                continue
            if updated is not None and (conf.updated_at or conf.created_at).date() != updated:
                continue
            items.append(item)
        chunk = items[start : start + views.PAGE_SIZE]
        nxt = None
        if start + views.PAGE_SIZE < len(items):
            nxt = request.rel_url.with_query({**q, "cursor": str(start + views.PAGE_SIZE)}).path_qs
            nxt = nxt[len(BASE):]
        return web.json_response(views.page(chunk, "conferences", start, len(items), nxt))

    async def get(self, request: web.Request) -> web.Response:
        account = _account(request)
        return web.json_response(self._view(request, account, request.match_info["conference_id"]))

    async def update(self, request: web.Request) -> web.Response:
        account = _account(request)
        svc = self._svc(request)
        conf_id = request.match_info["conference_id"]
        conf = svc.get_owned(account, conf_id)  # 404 before looking at the body
        settings, status = v.parse_update(await _body(request))
        if conf.read_only and (settings or status):
            raise ControlError(409, "read_only", "conference is defined in config.yaml")
        if settings:
            svc.update(account, conf_id, settings)
        if status == "terminated":
            svc.delete(account, conf_id)
        elif status == "empty":
            for p in svc.participants(account, conf_id):
                if p.status in views.IN_CONFERENCE:
                    svc.act(account, conf_id, p.participant_id, "kick")
        await stored(svc)
        return web.Response(status=204)

    def _in_conference(self, request: web.Request, account: str) -> tuple[Any, list[ParticipantView]]:
        svc = self._svc(request)
        conf = svc.get_owned(account, request.match_info["conference_id"])
        people = [p for p in svc.participants(account, conf.id) if p.status in views.IN_CONFERENCE]
        return conf, people

    def _one(self, request: web.Request, account: str) -> tuple[Any, ParticipantView]:
        conf, people = self._in_conference(request, account)
        call_id = request.match_info["call_id"]
        found = next((p for p in people if p.participant_id == call_id), None)
        if found is None:
            raise not_found("participant not found in this conference")
        return conf, found

    async def participants(self, request: web.Request) -> web.Response:
        account = _account(request)
        q = request.query
        v.check_query(q, v.PARTICIPANT_FILTERS)
        talk = v.parse_bool_query("talk", q.get("talk"))
        listen = v.parse_bool_query("listen", q.get("listen"))
        dtmf = v.parse_bool_query("dtmfPassThrough", q.get("dtmfPassThrough"))
        start = v.parse_cursor(q.get("cursor"))
        conf, people = self._in_conference(request, account)
        items = [views.participant(conf, account, p) for p in people]
        items = [i for i in items if (talk is None or i["talk"] == talk) and (listen is None or i["listen"] == listen)
                 and (dtmf is None or i["dtmfPassThrough"] == dtmf)]
        chunk = items[start : start + views.PAGE_SIZE]
        nxt = None
        if start + views.PAGE_SIZE < len(items):
            nxt = request.rel_url.with_query({**q, "cursor": str(start + views.PAGE_SIZE)}).path_qs[len(BASE):]
        return web.json_response(views.page(chunk, "participants", start, len(items), nxt))

    async def participant(self, request: web.Request) -> web.Response:
        account = _account(request)
        conf, found = self._one(request, account)
        return web.json_response(views.participant(conf, account, found))

    async def update_participant(self, request: web.Request) -> web.Response:
        account = _account(request)
        conf, found = self._one(request, account)
        actions = v.parse_participant_update(await _body(request))
        svc = self._svc(request)
        for action in actions:
            svc.act(account, conf.id, found.participant_id, action)
            if action in ("mute", "unmute"):
                found = dataclasses.replace(found, muted=action == "mute")
            else:
                found = dataclasses.replace(found, deaf=action == "deaf")
        return web.json_response(views.participant(conf, account, found))

    async def remove_participant(self, request: web.Request) -> web.Response:
        account = _account(request)
        conf, found = self._one(request, account)
        self._svc(request).act(account, conf.id, found.participant_id, "kick")
        return web.Response(status=204)


def add_freeclimb_routes(app: web.Application) -> None:
    """For ``build_http_app(..., extra_routes=[...])``."""
    FreeClimbRoutes().add_routes(app)
