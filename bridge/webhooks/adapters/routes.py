"""REST routes of the webhooks (same auth and error shape as the rest of the API).

- ``GET  /v2/conferences/{conference_id}/webhooks`` — the conference's deliveries, oldest first
  (``?limit=`` 1-1000, default 200, the newest ones): event, destination, attempts, last status,
  next attempt.
- ``POST /v2/conferences/{conference_id}/webhooks/{webhook_id}/redeliver`` — send a delivered or
  dead delivery again (same id and body; 202), 409 while it is still pending.
- ``GET  /v2/webhooks/keys`` — the account's Telnyx Ed25519 public key (base64) and FreeClimb
  signing secret, to verify our requests with the vendors' own SDKs.
"""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from ...adapters.http_api import SERVICE, account_of, int_query
from ...control.errors import ControlError, not_found
from ..model import Delivery
from .dispatcher import Dispatcher


def _time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def delivery_view(d: Delivery) -> dict[str, object]:
    state = "retrying" if d.state == "pending" and d.attempts > 0 else d.state
    return {
        "id": d.id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "form": d.form,
        "url": d.url,
        "failover_url": d.failover_url,
        "state": state,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_attempt_at": _time(d.last_attempt_at),
        "next_attempt_at": _time(d.next_attempt_at) if d.state == "pending" else None,
        "delivered_at": _time(d.delivered_at),
        "delivered_to": d.delivered_to,
        "occurred_at": _time(d.created_at),
    }


class WebhookRoutes:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def add_routes(self, app: web.Application) -> None:
        base = "/v2/conferences/{conference_id}/webhooks"
        app.router.add_get(base, self.list, allow_head=False)
        app.router.add_post(base + "/{webhook_id}/redeliver", self.redeliver)
        app.router.add_get("/v2/webhooks/keys", self.keys, allow_head=False)

    async def list(self, request: web.Request) -> web.Response:
        account = account_of(request)
        conf = request.app[SERVICE].get_owned(account, request.match_info["conference_id"])
        limit = int_query(request, "limit", 200, 1, 1000)
        rows = await self.dispatcher.store.for_conference(conf.id, limit)
        return web.json_response({"conference_id": conf.id, "webhooks": [delivery_view(d) for d in rows],
                                  "total": len(rows)})

    async def redeliver(self, request: web.Request) -> web.Response:
        account = account_of(request)
        conf = request.app[SERVICE].get_owned(account, request.match_info["conference_id"])
        webhook_id = request.match_info["webhook_id"]
        again = await self.dispatcher.redeliver(webhook_id, conf.id)
        if again is None:
            if await self.dispatcher.store.get(webhook_id, conf.id) is not None:
                raise ControlError(409, "webhook_pending", "the webhook is still pending; it will be sent")
            raise not_found("webhook not found")
        return web.json_response(delivery_view(again), status=202)

    async def keys(self, request: web.Request) -> web.Response:
        account = account_of(request)
        keys = self.dispatcher.keys.get(account)
        if keys is None:
            raise not_found("no keys for this account")
        return web.json_response({
            "account_id": account,
            "telnyx_public_key": keys.telnyx.public_key_b64,
            "freeclimb_signing_secret": keys.freeclimb.secret,
        })
