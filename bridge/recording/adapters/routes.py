"""REST routes of recordings (same auth and error shape as the rest of the API).

- ``POST /v2/conferences/{id}/recordings`` — start (body: ``format`` wav|mp3|ogg, ``channels``
  single|dual, ``custom_file_name``, ``play_beep``, ``multitrack``, ``pause_behavior``); 201.
- ``POST /v2/conferences/{id}/recordings/{recording_id}/actions/stop|pause|resume``
  (``recording_id`` may be ``current``).
- ``GET /v2/conferences/{id}/recordings``, ``GET /v2/recordings`` — the account's recordings.
- ``GET /v2/recordings/{recording_id}`` — metadata; ``DELETE`` removes it and its files.
- ``GET /v2/recordings/{recording_id}/download?file=mix|dual|multitrack|sidecar`` — the file,
  with HTTP Range; authenticated, or with the ``expires``/``signature`` of a webhook's link.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ...adapters.http_api import account_of
from ...config import Config
from ...control.errors import ControlError, not_found
from ..model import FILE_KINDS, RecordingInfo, info_view
from ..service import RecordingService
from .store import RecordingStore

ACTIONS = ("stop", "pause", "resume")


def base_url(config: Config) -> str:
    if config.http.public_url:
        return config.http.public_url.rstrip("/")
    host = config.http.host if config.http.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"{'https' if config.http.tls else 'http'}://{host}:{config.http.port}"


class RecordingRoutes:
    def __init__(self, service: RecordingService, store: RecordingStore | None, config: Config) -> None:
        self.service = service
        self.store = store
        self.config = config

    def add_routes(self, app: web.Application) -> None:
        conf = "/v2/conferences/{conference_id}/recordings"
        app.router.add_post(conf, self.start)
        app.router.add_get(conf, self.list_conference, allow_head=False)
        app.router.add_post(conf + "/{recording_id}/actions/{action}", self.action)
        app.router.add_get("/v2/recordings", self.list_account, allow_head=False)
        app.router.add_get("/v2/recordings/{recording_id}", self.get, allow_head=False)
        app.router.add_delete("/v2/recordings/{recording_id}", self.delete)
        app.router.add_get("/v2/recordings/{recording_id}/download", self.download)

    def urls(self, info: RecordingInfo) -> dict[str, str]:
        base = base_url(self.config)
        return {kind: f"{base}/v2/recordings/{info.id}/download?file={kind}" for kind in info.files}

    def signed_urls(self, recording_id: str, kinds: list[str]) -> dict[str, str]:
        assert self.store is not None
        base = base_url(self.config)
        return {kind: f"{base}/v2/recordings/{recording_id}/download?{self.store.signed_query(recording_id, kind)}"
                for kind in kinds}

    def _view(self, info: RecordingInfo) -> dict[str, Any]:
        return info_view(info, self.urls(info))

    async def start(self, request: web.Request) -> web.Response:
        account = account_of(request)
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            raise ControlError(400, "invalid_json", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise ControlError(400, "invalid_json", "the body must be a JSON object")
        info = self.service.start(account, request.match_info["conference_id"], body)
        return web.json_response({"data": self._view(info)}, status=201)

    async def action(self, request: web.Request) -> web.Response:
        account = account_of(request)
        action = request.match_info["action"]
        if action not in ACTIONS:
            raise not_found("no such action")
        rid = request.match_info["recording_id"]
        method = getattr(self.service, action)
        info = method(account, request.match_info["conference_id"], None if rid == "current" else rid)
        return web.json_response({"data": self._view(info)})

    async def list_conference(self, request: web.Request) -> web.Response:
        items = self.service.list(account_of(request), request.match_info["conference_id"])
        return web.json_response({"data": [self._view(i) for i in items], "total": len(items)})

    async def list_account(self, request: web.Request) -> web.Response:
        items = self.service.list(account_of(request))
        return web.json_response({"data": [self._view(i) for i in items], "total": len(items)})

    async def get(self, request: web.Request) -> web.Response:
        info = self.service.get(account_of(request), request.match_info["recording_id"])
        return web.json_response({"data": self._view(info)})

    async def delete(self, request: web.Request) -> web.Response:
        info = self.service.get(account_of(request), request.match_info["recording_id"])
        await asyncio.to_thread(self.service.delete, info.account_id or "", info.id)
        return web.json_response({"data": self._view(info)})

    async def download(self, request: web.Request) -> web.StreamResponse:
        rid = request.match_info["recording_id"]
        kind = request.query.get("file", "mix")
        if kind not in FILE_KINDS and not kind.startswith("multitrack."):
            raise ControlError(422, "invalid_parameters", f"file: one of {', '.join(FILE_KINDS)}")
        signature = request.query.get("signature")
        if signature is not None and self.store is not None:
            if not self.store.check_signature(rid, kind, request.query.get("expires", ""), signature):
                raise ControlError(403, "link_expired", "the link's signature is invalid or it has expired")
            info = self.store.get(rid)
            if info is None:
                raise not_found("recording not found")
        else:
            info = self.service.get(account_of(request), rid)
        path = self.store.path(info, kind) if self.store is not None else None
        if path is None or info.state != "saved":
            raise not_found("file not found")
        # FileResponse answers Range requests (206) and HEAD by itself.
        return web.FileResponse(path, headers={"Content-Disposition": f'attachment; filename="{path.name}"'})
