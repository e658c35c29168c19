"""Reloading ``config.yaml`` while calls are up (SIGHUP or ``POST /v2/admin/reload``).

Reloadable: ``rooms`` (reconciled with the live rooms, ``ConferenceService.reload_rooms``),
``accounts`` (API tokens), ``admin`` (admin tokens) and ``log_level``. Everything else (listen
addresses and ports, RTP, media, webhooks, data_dir, log_format) keeps its running value until
a restart; the answer and the log line name those keys. A file that does not load or validate
is refused with the key path of the error and nothing changes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..config import Config, ConfigError, parse_config
from ..control.errors import ControlError
from ..control.service import RoomChanges

log = logging.getLogger("bridge.config")

RELOADABLE = ("rooms", "accounts", "admin", "log_level")


def restart_needed(running: Config, new: Config) -> list[str]:
    """Keys (``sip.port``) whose new value only a restart would apply."""
    old_data, new_data = running.model_dump(), new.model_dump()
    keys: list[str] = []
    for key, old in old_data.items():
        value = new_data.get(key)
        if key in RELOADABLE or old == value:
            continue
        if isinstance(old, dict) and isinstance(value, dict):
            keys.extend(f"{key}.{k}" for k in old if old[k] != value.get(k))
        else:
            keys.append(key)
    return keys


def merge(running: Config, new: Config) -> Config:
    """The running config with ``new``'s reloadable parts, validated again as a whole
    (e.g. ``webhooks.accounts`` must not name an account the new file removed)."""
    data = running.model_dump()
    fresh = new.model_dump()
    for key in RELOADABLE:
        data[key] = fresh[key]
    return parse_config(data)


@dataclass
class ReloadResult:
    rooms: RoomChanges
    accounts_changed: bool
    restart_required: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "reloaded",
            "rooms": {"added": self.rooms.added, "changed": self.rooms.changed, "removed": self.rooms.removed},
            "accounts_changed": self.accounts_changed,
            "restart_required": self.restart_required,
        }


class Reloader:
    """``load`` reads and validates the file (with the command line's overrides); ``apply``
    switches the running bridge to a merged config. One reload at a time."""

    def __init__(self, load: Callable[[], Config], apply: Callable[[Config], ReloadResult],
                 on_result: Callable[[str], None] = lambda result: None) -> None:
        self.load = load
        self.apply = apply
        self.on_result = on_result          # "applied" or "refused" (the metrics count them)
        self._lock = asyncio.Lock()

    async def reload(self, origin: str) -> ReloadResult:
        async with self._lock:
            try:
                new = await asyncio.to_thread(self.load)
                result = self.apply(new)
            except ConfigError as err:
                self.on_result("refused")
                log.error("configuration reload (%s) refused; the running configuration is kept: %s", origin, err)
                raise
            self.on_result("applied")
            r = result.rooms
            log.info("configuration reloaded (%s): rooms added %s, changed %s, removed %s; accounts %s%s",
                     origin, r.added or "none", r.changed or "none", r.removed or "none",
                     "changed" if result.accounts_changed else "unchanged",
                     f"; needs a restart to apply: {', '.join(result.restart_required)}"
                     if result.restart_required else "")
            return result


def _admin(request: web.Request, tokens: tuple[str, ...]) -> None:
    """401 unless the request carries one of the admin tokens (compared in constant time)."""
    given = request.headers.get("X-Auth-Token", "").strip()
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if not given and scheme.lower() == "bearer":
        given = value.strip()
    if not tokens:
        raise ControlError(401, "unauthorized", "no admin token is configured (admin.tokens); reload with SIGHUP")
    if not given:
        raise ControlError(401, "unauthorized", "missing token: send X-Auth-Token or Authorization: Bearer")
    raw = given.encode("utf-8", "surrogateescape")
    if not any(hmac.compare_digest(raw, t.encode("utf-8")) for t in tokens):
        raise ControlError(401, "unauthorized", "invalid admin token")


def reload_routes(reloader: Reloader | None, admin_tokens: Callable[[], tuple[str, ...]]) -> Callable[
        [web.Application], None]:
    """``POST /v2/admin/reload`` for ``build_http_app``'s ``extra_routes``."""

    async def reload(request: web.Request) -> web.Response:
        _admin(request, admin_tokens())
        if reloader is None:
            raise ControlError(503, "reload_unavailable", "this bridge was not started from a configuration file")
        try:
            result = await reloader.reload("REST")
        except ConfigError as err:
            raise ControlError(400, "invalid_config", str(err)) from None
        return web.json_response(result.as_json())

    def add(app: web.Application) -> None:
        app.router.add_post("/v2/admin/reload", reload)

    return add
