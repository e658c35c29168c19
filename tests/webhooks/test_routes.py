"""The REST side: URL checks at create/update, the deliveries list, redeliver and the keys route."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telnyx.lib.webhook_verification import verify_webhook_signature

from bridge.adapters.http_api import build_http_app
from bridge.adapters.storage import ConferenceStore
from bridge.config import parse_config
from bridge.control.events import EventBus
from bridge.control.service import ConferenceService
from bridge.webhooks.adapters.wiring import WebhooksHandle, start_webhooks
from tests.api.conftest import FakeLive
from tests.support.webhook_receiver import Receiver

TOKEN = "tok-1"
OTHER = "tok-2"


class Api:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http

    async def call(self, method: str, path: str, body: Any = None, token: str = TOKEN) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body, headers={"X-Auth-Token": token}) as r:
            return r.status, await r.json()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Api, Receiver, WebhooksHandle, EventBus]]:
    receiver = await Receiver().up()
    config = parse_config({
        "data_dir": str(tmp_path),
        "accounts": [{"id": "acct1", "tokens": [TOKEN]}, {"id": "acct2", "tokens": [OTHER]}],
        "webhooks": {"allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.05, "max_backoff_s": 0.2,
                     "accounts": [{"account": "acct1", "url": receiver.url + "/acct"}]},
    })
    store = ConferenceStore.for_config(config)
    bus = EventBus(lambda: datetime.now(timezone.utc))
    service = ConferenceService(store, config, FakeLive(), lambda: datetime.now(timezone.utc), bus=bus)
    handle = await start_webhooks(bus, service, store, config)
    runner = web.AppRunner(build_http_app(service, config=config, extra_routes=[handle.add_routes]))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    http = aiohttp.ClientSession()
    try:
        yield Api(f"http://127.0.0.1:{port}", http), receiver, handle, bus
    finally:
        await http.close()
        await runner.cleanup()
        await handle.close()
        store.close()
        await receiver.down()


@pytest.mark.parametrize("field, value, code", [
    ("statusCallbackUrl", "http://169.254.169.254/latest", "forbidden_statusCallbackUrl"),
    ("statusCallbackUrl", "http://10.0.0.1/cb", "forbidden_statusCallbackUrl"),
    ("webhook_url", "https://u:p@example.com/h", "invalid_webhook_url"),
    ("webhook_url", "gopher://example.com/", "invalid_webhook_url"),
    ("webhook_failover_url", "http://[fe80::1]/h", "forbidden_webhook_failover_url"),
    ("client_state", "not base64!", "invalid_client_state"),
])
async def test_bad_urls_at_create_and_update_are_400_naming_the_field(
    setup: tuple[Api, Receiver, WebhooksHandle, EventBus], field: str, value: str, code: str,
) -> None:
    api = setup[0]
    status, body = await api.call("POST", "/v2/conferences", {"name": "x", field: value})
    assert status == 400 and body["error"] == code and field in body["message"]
    status, created = await api.call("POST", "/v2/conferences", {"name": "ok"})
    assert status == 201
    status, body = await api.call("PATCH", f"/v2/conferences/{created['id']}", {field: value})
    assert status == 400 and body["error"] == code
    status, body = await api.call("PUT", "/v2/accounts/acct1/conferences", {"data": {"name": "y", field: value}})
    assert status == 400 and body["error"] == code


async def test_deliveries_listed_redelivered_and_keys_served(
    setup: tuple[Api, Receiver, WebhooksHandle, EventBus],
) -> None:
    api, receiver, handle, bus = setup
    status, conf = await api.call("POST", "/v2/conferences", {
        "name": "hooks", "statusCallbackUrl": receiver.url + "/fc", "client_state": "aGF2ZQ==",
    })
    assert status == 201 and conf["client_state"] == "aGF2ZQ=="
    bus.drain()   # the app drains after every media tick
    assert await receiver.wait_for(2, timeout=5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status, listing = await api.call("GET", f"/v2/conferences/{conf['id']}/webhooks")
        if listing["total"] == 2 and all(w["state"] == "delivered" for w in listing["webhooks"]):
            break
        await asyncio.sleep(0.05)
    assert status == 200
    hooks = listing["webhooks"]
    assert [(w["event_type"], w["form"]) for w in hooks] == [
        ("conference.created", "telnyx"), ("conferenceStatus.empty", "freeclimb")]
    for w in hooks:
        assert w["attempts"] == 1 and w["last_status"] == "200" and w["next_attempt_at"] is None
    # another account sees nothing
    status, body = await api.call("GET", f"/v2/conferences/{conf['id']}/webhooks", token=OTHER)
    assert status == 404 and body["error"] == "not_found"
    # redeliver: same id, sent again
    status, again = await api.call("POST", f"/v2/conferences/{conf['id']}/webhooks/{hooks[0]['id']}/redeliver")
    assert status == 202 and again["id"] == hooks[0]["id"]
    assert await receiver.wait_for(3, timeout=5)
    assert receiver.accepted[2].body == receiver.accepted[0].body
    status, body = await api.call("POST", f"/v2/conferences/{conf['id']}/webhooks/nope/redeliver")
    assert status == 404
    # keys: the public key verifies what was received
    status, keys = await api.call("GET", "/v2/webhooks/keys")
    assert status == 200 and keys["freeclimb_signing_secret"].startswith("sigsec_")
    telnyx = next(r for r in receiver.accepted if r.path == "/acct")
    verify_webhook_signature(telnyx.body.decode(), telnyx.headers, keys["telnyx_public_key"])
