"""A real bridge process killed with SIGKILL while webhooks are queued: after restart all arrive."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from freeclimb.utils.request_verifier import RequestVerifier
from telnyx.lib.webhook_verification import verify_webhook_signature

from tests.support.bridge_proc import BridgeProcess
from tests.support.webhook_receiver import Receiver, free_port

pytestmark = pytest.mark.e2e
CONFERENCES = 5


def webhooks_config(port: int) -> dict[str, Any]:
    return {
        "allow_networks": ["127.0.0.1/32"],
        "initial_backoff_s": 0.2,
        "max_backoff_s": 0.5,
        "timeout_s": 2,
        "accounts": [{"account": "acct1", "url": f"http://127.0.0.1:{port}/acct"}],
    }


def listed(bridge: BridgeProcess, conf_id: str) -> list[dict[str, Any]]:
    status, body = bridge.api("GET", f"/v2/conferences/{conf_id}/webhooks")
    assert status == 200, body
    return list(body["webhooks"])


@pytest.mark.timeout(90)
async def test_kill9_with_queued_webhooks_loses_nothing(bridge_factory: Callable[..., BridgeProcess]) -> None:
    port = free_port()   # the receiver is down: every attempt is refused, so everything stays queued
    bridge = bridge_factory(webhooks=webhooks_config(port))
    conf_ids = []
    for i in range(CONFERENCES):
        status, conf = bridge.api("POST", "/v2/conferences", {
            "name": f"k{i}", "statusCallbackUrl": f"http://127.0.0.1:{port}/fc/{i}",
        })
        assert status == 201, conf
        conf_ids.append(conf["id"])
    # Listed means committed to the outbox (the list only shows persisted rows).
    expected: dict[str, str] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        expected = {w["id"]: w["event_type"] for cid in conf_ids for w in listed(bridge, cid)}
        if len(expected) == 2 * CONFERENCES:
            break
        time.sleep(0.1)
    assert len(expected) == 2 * CONFERENCES
    assert all(w["state"] in ("pending", "retrying") for cid in conf_ids for w in listed(bridge, cid))
    status, keys = bridge.api("GET", "/v2/webhooks/keys")
    assert status == 200

    assert bridge.proc is not None
    bridge.proc.kill()           # SIGKILL: no shutdown code runs
    bridge.proc.wait(10)

    receiver = await Receiver(port).up()
    try:
        await asyncio.to_thread(bridge.start)   # the receiver on this loop keeps answering
        assert await receiver.wait_for(2 * CONFERENCES, timeout=30), bridge.log_tail()
        got: dict[str, str] = {}
        for r in receiver.accepted:
            if r.path == "/acct":
                verify_webhook_signature(r.body.decode(), r.headers, keys["telnyx_public_key"])
                got[json.loads(r.body)["data"]["id"]] = json.loads(r.body)["data"]["event_type"]
            else:
                RequestVerifier.verify_request_signature(
                    r.body.decode(), r.headers["FreeClimb-Signature"], keys["freeclimb_signing_secret"], 300)
                got[r.headers["X-Tutti-Webhook-Id"]] = "conferenceStatus." + json.loads(r.body)["status"]
        assert got == expected
        assert len(receiver.accepted) == len(expected)   # nothing twice
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            states = {w["state"] for cid in conf_ids for w in listed(bridge, cid)}
            if states == {"delivered"}:
                break
            time.sleep(0.1)
        assert states == {"delivered"}
    finally:
        bridge.stop()
        await receiver.down()
