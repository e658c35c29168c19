"""The REST control plane over aiohttp: thin handlers around ``ConferenceService``.

Handlers do no blocking work: the service keeps conferences in memory and the SQLite store
writes on its own worker thread; a handler that changed something awaits ``store.drained()``
so that a 2xx answer means the change is on disk. Every error body is
``{"error": "<code>", "message": "<text>"}``, including 401, unknown routes (404), wrong
methods (405), oversized bodies (413) and anything unexpected (500, logged).
Media uploads (``POST /v2/media``, up to 10 MiB) stream past the 64 KiB JSON body limit and are
decoded in a worker thread (``media_upload``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from ..config import Config
from ..control.errors import ControlError, bad_request, not_found
from ..control.model import Media, iso
from ..control.openapi import openapi_document
from ..control.service import ConferenceService
from ..control.views import (
    Links,
    account_conference,
    account_participant,
    flat_conference,
    flat_participant,
    join_info,
)
from .auth_limit import BadTokenLimiter
from .media_upload import read_upload, remove_file, sniff, store_file
from .storage import stored

log = logging.getLogger(__name__)

SERVICE: web.AppKey[ConferenceService] = web.AppKey("service", ConferenceService)
CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
AUTH_LIMIT: web.AppKey[BadTokenLimiter] = web.AppKey("auth_limit", BadTokenLimiter)
MAX_BODY = 64 * 1024
MAX_PARALLEL_DECODES = 2  # uploads decoding at once; more wait (bounds CPU and memory)
_STATUS_FILTERS = ("created", "active", "empty", "ended", "expired")
_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 411: "length_required", 413: "payload_too_large", 415: "unsupported_media_type",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The browser join page (bridge/adapters/browser_routes.py), served at join_url to Accept: text/html.
JOIN_PAGE: web.AppKey[Handler] = web.AppKey("join_page")


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    limiter, peer = request.app[AUTH_LIMIT], request.remote or ""
    now = time.monotonic()
    wait = limiter.retry_after(peer, now)
    if wait:
        return _error(429, "too_many_requests", "too many bad tokens from this address",
                      {"Retry-After": str(wait)})
    try:
        return await handler(request)
    except ControlError as err:
        headers = {"WWW-Authenticate": 'Bearer realm="tutti-bridge"'} if err.status == 401 else None
        if err.status == 401:
            limiter.failed(peer, now)
        return _error(err.status, err.code, err.message, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = {404: "no such route", 405: f"method {request.method} not allowed here"}.get(
            exc.status, exc.reason
        )
        return _error(exc.status, code, message, headers)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _error(500, "internal_error", "internal error; see the bridge log")


# -- request helpers ------------------------------------------------------------------------


def _token(request: web.Request) -> str | None:
    token = request.headers.get("X-Auth-Token")
    if token:
        return token.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _account(request: web.Request) -> str:
    """The account the token belongs to, or 401. Tokens are compared in constant time."""
    token = _token(request)
    if token is None:
        raise ControlError(401, "unauthorized", "missing token: send X-Auth-Token or Authorization: Bearer")
    given = token.encode("utf-8", "surrogateescape")
    match = None
    # The service's config: a reload (README "Reloading the configuration") swaps in new tokens.
    for account in request.app[SERVICE].config.accounts:
        for known in account.all_tokens():
            if hmac.compare_digest(given, known.encode("utf-8")):
                match = account.id
    if match is None:
        raise ControlError(401, "unauthorized", "invalid token")
    return match


account_of = _account  # for route modules outside this file (bridge.webhooks.adapters.routes)


def _scoped_account(request: web.Request) -> str:
    """Account-scoped routes: the path's account must be the token's, else 404 (nothing leaks)."""
    account = _account(request)
    if request.match_info["account_id"] != account:
        raise not_found("account not found")
    return account


async def _json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise bad_request("invalid_json", "request body is empty; a JSON object is expected")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise bad_request("invalid_json", f"request body is not valid JSON: {str(err)[:200]}") from None
    if not isinstance(body, dict):
        raise bad_request("invalid_body", "request body must be a JSON object")
    return body


json_object = _json_object


async def _data_object(request: web.Request) -> dict[str, Any]:
    """Account-scoped form bodies are wrapped: ``{"data": {...}}``."""
    body = await _json_object(request)
    data = body.get("data")
    if not isinstance(data, dict):
        raise bad_request("invalid_body", 'request body must be {"data": {...}} with an object in "data"')
    return data


def _links(request: web.Request) -> Links:
    config = request.app[CONFIG]
    try:
        req_host = request.url.host or ""
        base = config.http.public_url or f"{request.scheme}://{request.host}"
    except ValueError:  # a Host header yarl cannot parse
        req_host, base = "", f"{request.scheme}://127.0.0.1:{config.http.port}"
    sip_host = config.sip.advertise_host
    if not sip_host:
        sip_host = config.sip.host if config.sip.host not in ("0.0.0.0", "::", "") else (req_host or "127.0.0.1")
    return Links(base.rstrip("/"), sip_host, config.sip.port, config.sip.access_user)


links_of = _links


def _int_query(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not lo <= int(text) <= hi:
        raise bad_request(f"invalid_{name}", f"{name} must be an integer between {lo} and {hi}")
    return int(text)


int_query = _int_query


def _bool_query(request: web.Request, name: str, default: bool) -> bool:
    text = request.query.get(name)
    if text is None:
        return default
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise bad_request(f"invalid_{name}", f"{name} must be true or false")



def _envelope(data: object, status: int = 200, extra: Mapping[str, object] | None = None) -> web.Response:
    body: dict[str, object] = {"data": data, "request_id": f"req_{secrets.token_hex(8)}", "status": "success"}
    body.update(extra or {})
    return web.json_response(body, status=status, headers={"X-Request-Id": str(body["request_id"])})


def _media_view(media: Media) -> dict[str, object]:
    return {
        "id": media.id,
        "media_name": media.media_name,
        "content_type": media.content_type,
        "size": media.size,
        "duration_s": media.duration_s,
        "created_at": iso(media.created_at),
    }


# -- handlers -----------------------------------------------------------------------------


class _Handlers:
    def __init__(self, service: ConferenceService) -> None:
        self.service = service
        self._decoding = asyncio.Semaphore(MAX_PARALLEL_DECODES)

    def _count(self, conf_id: str) -> int:
        return sum(1 for p in self.service.live.participants(conf_id) if p.status in ("connected", "held"))

    def _flat(self, request: web.Request, conf_id: str) -> dict[str, object]:
        conf = self.service.get(conf_id)
        assert conf is not None
        return flat_conference(conf, _links(request), self.service.clock(), self._count(conf_id))

    def _acct(self, request: web.Request, conf_id: str) -> dict[str, object]:
        conf = self.service.get(conf_id)
        assert conf is not None
        return account_conference(conf, _links(request), self.service.clock(), self._count(conf_id))

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def join(self, request: web.Request) -> web.StreamResponse:
        page = request.app.get(JOIN_PAGE)
        accept = request.headers.get("Accept", "")
        if page is not None and "text/html" in accept.split(",")[0]:   # a browser; JSON clients get JSON
            return await page(request)
        conf = self.service.get(request.match_info["conference_id"])
        if conf is None or conf.account_id is None:
            raise not_found()
        return web.json_response(join_info(conf, _links(request), self.service.clock()))

    # media

    async def media_upload(self, request: web.Request) -> web.Response:
        account = _account(request)
        self.service.check_media_upload(account, request.query.get("media_name"))  # fail before reading
        upload = await read_upload(request)
        self.service.check_media_upload(account, upload.media_name)
        kind = sniff(upload.data[:16])
        if kind is None:
            raise bad_request("invalid_media", "the file is not WAV, MP3 or Ogg audio")
        ext, content_type = kind
        media_id = self.service.new_media_id()
        media_dir = self.service.media_dir()
        async with self._decoding:
            duration = await asyncio.to_thread(store_file, media_dir, media_id, ext, upload.data,
                                               self.service.config.media.decode_max_seconds)
        try:
            media = self.service.add_media(
                account, media_id, upload.media_name, content_type, len(upload.data), duration, media_id + ext
            )
        except ControlError:  # the name was taken while this upload was decoding
            await asyncio.to_thread(remove_file, os.path.join(media_dir, media_id + ext))
            raise
        await stored(self.service)
        return web.json_response(_media_view(media), status=201)

    async def media_list(self, request: web.Request) -> web.Response:
        items = [_media_view(m) for m in self.service.list_media(_account(request))]
        return web.json_response({"data": items, "total": len(items)})

    async def media_get(self, request: web.Request) -> web.Response:
        media = self.service.get_media(_account(request), request.match_info["media_id"])
        return web.json_response(_media_view(media))

    async def media_delete(self, request: web.Request) -> web.Response:
        media = self.service.delete_media(_account(request), request.match_info["media_id"])
        await stored(self.service)
        await asyncio.to_thread(remove_file, os.path.join(self.service.media_dir(), media.filename))
        return web.Response(status=204)

    # flat form

    async def flat_list(self, request: web.Request) -> web.Response:
        account = _account(request)
        status = request.query.get("status")
        if status is not None and status not in _STATUS_FILTERS:
            raise bad_request("invalid_status", f"status must be one of: {', '.join(_STATUS_FILTERS)}")
        limit = _int_query(request, "limit", 100, 1, 1000)
        offset = _int_query(request, "offset", 0, 0, 1_000_000)
        confs = [c for c in self.service.list(account) if status is None or c.status == status]
        links, now = _links(request), self.service.clock()
        page = [flat_conference(c, links, now, self._count(c.id)) for c in confs[offset : offset + limit]]
        return web.json_response({"conferences": page, "total": len(confs), "limit": limit, "offset": offset})

    async def flat_create(self, request: web.Request) -> web.Response:
        account = _account(request)
        conf = self.service.create(account, await _json_object(request))
        await stored(self.service)
        return web.json_response(self._flat(request, conf.id), status=201)

    async def flat_get(self, request: web.Request) -> web.Response:
        conf = self.service.get_owned(_account(request), request.match_info["conference_id"])
        return web.json_response(self._flat(request, conf.id))

    async def flat_update(self, request: web.Request) -> web.Response:
        account = _account(request)
        conf_id = request.match_info["conference_id"]
        self.service.get_owned(account, conf_id)  # 404 before looking at the body
        conf = self.service.update(account, conf_id, await _json_object(request))
        await stored(self.service)
        return web.json_response(self._flat(request, conf.id))

    async def flat_delete(self, request: web.Request) -> web.Response:
        conf = self.service.delete(_account(request), request.match_info["conference_id"])
        await stored(self.service)
        return web.json_response(self._flat(request, conf.id))

    async def flat_participants(self, request: web.Request) -> web.Response:
        conf_id = request.match_info["conference_id"]
        people = self.service.participants(_account(request), conf_id)
        now = self.service.clock()
        return web.json_response({
            "participants": [flat_participant(p, conf_id, now) for p in people],
            "total": len(people),
            "active": sum(1 for p in people if p.status == "connected"),
        })

    async def flat_add_participant(self, request: web.Request) -> web.Response:
        account = _account(request)
        conf_id = request.match_info["conference_id"]
        self.service.get_owned(account, conf_id)
        person = self.service.dial_out(account, conf_id, await _json_object(request))
        return web.json_response(flat_participant(person, conf_id, self.service.clock()))

    async def flat_kick(self, request: web.Request) -> web.Response:
        m = request.match_info
        self.service.act(_account(request), m["conference_id"], m["participant_id"], "kick")
        return web.Response(status=204)

    # account-scoped form

    async def acct_list(self, request: web.Request) -> web.Response:
        account = _scoped_account(request)
        confs = self.service.list(account)
        links, now = _links(request), self.service.clock()
        if not _bool_query(request, "paginate", True):
            return _envelope([account_conference(c, links, now, self._count(c.id)) for c in confs])
        size = _int_query(request, "page_size", 50, 1, 100)
        start = _int_query(request, "start_key", 0, 0, 1_000_000)
        page = confs[start : start + size]
        extra: dict[str, object] = {"page_size": len(page), "start_key": str(start)}
        if start + size < len(confs):
            extra["next_start_key"] = str(start + size)
        return _envelope([account_conference(c, links, now, self._count(c.id)) for c in page], extra=extra)

    async def acct_create(self, request: web.Request) -> web.Response:
        account = _scoped_account(request)
        conf = self.service.create(account, await _data_object(request))
        await stored(self.service)
        return _envelope(self._acct(request, conf.id), status=201)

    async def acct_get(self, request: web.Request) -> web.Response:
        conf = self.service.get_owned(_scoped_account(request), request.match_info["conference_id"])
        return _envelope(self._acct(request, conf.id))

    async def acct_update(self, request: web.Request) -> web.Response:
        account = _scoped_account(request)
        conf_id = request.match_info["conference_id"]
        self.service.get_owned(account, conf_id)
        conf = self.service.update(account, conf_id, await _data_object(request))
        await stored(self.service)
        return _envelope(self._acct(request, conf.id))

    async def acct_delete(self, request: web.Request) -> web.Response:
        conf = self.service.delete(_scoped_account(request), request.match_info["conference_id"])
        await stored(self.service)
        return _envelope(self._acct(request, conf.id))

    async def acct_participants(self, request: web.Request) -> web.Response:
        people = self.service.participants(_scoped_account(request), request.match_info["conference_id"])
        # This form lists who is in the conference now; the flat form also lists who left.
        return _envelope([account_participant(p) for p in people if p.status in ("connected", "held")])

    async def acct_action(self, request: web.Request) -> web.Response:
        account = _scoped_account(request)
        m = request.match_info
        self.service.get_owned(account, m["conference_id"])
        data = await _data_object(request)
        if "action" not in data:
            raise bad_request("missing_field", "action is required")
        person = self.service.act(account, m["conference_id"], m["participant_id"], data["action"])
        return _envelope({**account_participant(person), "action": data["action"]})

    async def acct_kick(self, request: web.Request) -> web.Response:
        m = request.match_info
        person = self.service.act(_scoped_account(request), m["conference_id"], m["participant_id"], "kick")
        return _envelope({**account_participant(person), "action": "kick"})


def build_http_app(
    service: ConferenceService, *, config: Config, extra_routes: Sequence[Callable[[web.Application], None]] = ()
) -> web.Application:
    """The aiohttp application serving both API forms, ``/openapi.json`` and the join pages.

    ``extra_routes``: callables adding more routes (e.g. the webhooks' ``add_routes``); they get
    the same middleware (auth errors, error bodies).
    """
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY)
    sec = config.security
    app[AUTH_LIMIT] = BadTokenLimiter(sec.bad_token_limit, sec.bad_token_window_s, sec.bad_token_block_s)
    app[SERVICE] = service
    app[CONFIG] = config
    h = _Handlers(service)
    flat = "/v2/conferences/{conference_id}"
    acct = "/v2/accounts/{account_id}/conferences"
    app.router.add_get("/openapi.json", h.openapi, allow_head=False)
    app.router.add_get("/conferences/{conference_id}/join", h.join, allow_head=False)
    app.router.add_get("/v2/conferences", h.flat_list, allow_head=False)
    app.router.add_post("/v2/conferences", h.flat_create)
    app.router.add_get(flat, h.flat_get, allow_head=False)
    app.router.add_patch(flat, h.flat_update)
    app.router.add_delete(flat, h.flat_delete)
    app.router.add_get(flat + "/participants", h.flat_participants, allow_head=False)
    app.router.add_post(flat + "/participants", h.flat_add_participant)
    app.router.add_delete(flat + "/participants/{participant_id}", h.flat_kick)
    app.router.add_get("/v2/media", h.media_list, allow_head=False)
    app.router.add_post("/v2/media", h.media_upload)
    app.router.add_get("/v2/media/{media_id}", h.media_get, allow_head=False)
    app.router.add_delete("/v2/media/{media_id}", h.media_delete)
    app.router.add_get(acct, h.acct_list, allow_head=False)
    app.router.add_put(acct, h.acct_create)
    app.router.add_get(acct + "/{conference_id}", h.acct_get, allow_head=False)
    app.router.add_post(acct + "/{conference_id}", h.acct_update)
    app.router.add_delete(acct + "/{conference_id}", h.acct_delete)
    app.router.add_get(acct + "/{conference_id}/participants", h.acct_participants, allow_head=False)
    app.router.add_post(acct + "/{conference_id}/participants/{participant_id}", h.acct_action)
    app.router.add_delete(acct + "/{conference_id}/participants/{participant_id}", h.acct_kick)
    for add in extra_routes:
        add(app)
    return app
