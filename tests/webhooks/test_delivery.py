"""The outbox, dispatcher and sender against real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from freeclimb.utils.request_verifier import RequestVerifier
from telnyx.lib.webhook_verification import verify_webhook_signature

from bridge.adapters.media_clock import MediaClock
from bridge.config import Config, parse_config
from bridge.control.events import (
    ConferenceCreated,
    ConferenceEnded,
    EventBus,
    ParticipantJoined,
    ParticipantLeft,
)
from bridge.control.model import Conference
from bridge.webhooks.adapters.wiring import WebhooksHandle, start_webhooks
from tests.support.webhook_receiver import Receiver, free_port

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def make_config(data_dir: Path, account_url: str | None, **webhooks: Any) -> Config:
    hooks: dict[str, Any] = {
        "timeout_s": 2.0, "initial_backoff_s": 0.05, "max_backoff_s": 0.3, "jitter": 0.5,
        "retry_horizon_hours": 1.0, "allow_networks": ["127.0.0.1/32"], "stats_interval_s": 1.0,
        "accounts": [{"account": "acct1", "url": account_url}] if account_url else [],
    }
    hooks.update(webhooks)
    return parse_config({"data_dir": str(data_dir), "accounts": [{"id": "acct1", "tokens": ["t"]}],
                         "webhooks": hooks})


class Confs:
    """The conference lookup: plain Conference records by id."""

    def __init__(self) -> None:
        self.by_id: dict[str, Conference] = {}

    def add(self, cid: str, **kw: Any) -> Conference:
        conf = Conference(id=cid, account_id="acct1", name=cid, dial_in_code=cid[-4:], created_at=T0, **kw)
        self.by_id[cid] = conf
        return conf

    def get(self, cid: str) -> Conference | None:
        return self.by_id.get(cid)


class Db:
    def __init__(self, path: Path) -> None:
        self.path = path


class Rig:
    def __init__(self, tmp: Path, config: Config) -> None:
        self.tmp = tmp
        self.config = config
        self.bus = EventBus(lambda: datetime.now(timezone.utc))
        self.confs = Confs()
        self.handle: WebhooksHandle | None = None

    async def start(self) -> "Rig":
        self.handle = await start_webhooks(self.bus, self.confs, Db(self.tmp / "bridge.sqlite3"), self.config)
        return self

    def publish(self, *events: Any) -> None:
        for e in events:
            self.bus.publish(e)
        self.bus.drain()

    @property
    def dispatcher(self) -> Any:
        assert self.handle is not None and self.handle.dispatcher is not None
        return self.handle.dispatcher

    async def close(self) -> None:
        if self.handle is not None:
            await self.handle.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().up()
    yield r
    await r.down()


def telnyx_ids(received: list[Any]) -> list[str]:
    return [json.loads(r.body)["data"]["id"] for r in received if r.body.startswith(b'{"data"')]


def scripted(cid: str, people: int) -> list[Any]:
    events: list[Any] = [ConferenceCreated(cid)]
    events += [ParticipantJoined(cid, participant_id=f"{cid}-p{i}") for i in range(people)]
    events += [ParticipantLeft(cid, participant_id=f"{cid}-p{i}") for i in range(people)]
    events.append(ConferenceEnded(cid, reason="ended_via_api"))
    return events


async def test_outage_then_recovery_delivers_everything_in_order(tmp_path: Path, receiver: Receiver) -> None:
    rig = await Rig(tmp_path, make_config(tmp_path, receiver.url + "/telnyx")).start()
    try:
        keys = rig.dispatcher.keys["acct1"]
        for cid in ("conf_a", "conf_b", "conf_c"):
            rig.confs.add(cid, status_callback_url=f"{receiver.url}/freeclimb/{cid}")
        # 1. the receiver answers 500 for a while
        receiver.mode = "fail"
        published = {cid: [rig.bus.publish(e) for e in scripted(cid, 3)] for cid in ("conf_a", "conf_b", "conf_c")}
        rig.bus.drain()
        await asyncio.sleep(0.8)
        failed = len(receiver.requests)
        assert failed >= 6, "retries reached the failing receiver"
        assert receiver.accepted == []
        # 2. then refuses connections
        await receiver.down()
        await asyncio.sleep(0.8)
        stats = rig.dispatcher.stats()
        assert stats["retrying"] >= 3 and stats["delivered"] == 0
        # 3. then comes back: everything arrives
        receiver.mode = "ok"
        await receiver.up()
        expected_telnyx = sum(len(v) for v in published.values())
        expected_fc = 3 * 5  # empty, populated, inProgress, empty, terminated per conference
        assert await receiver.wait_for(expected_telnyx + expected_fc, timeout=20), rig.dispatcher.stats()
        await asyncio.sleep(0.3)
        assert len(receiver.accepted) == expected_telnyx + expected_fc  # no duplicates beyond retries
        ids = telnyx_ids(receiver.accepted)
        assert len(ids) == len(set(ids)) == expected_telnyx
        for cid, events in published.items():
            want = [e.event_id for e in events]
            got = [json.loads(r.body)["data"]["id"].replace("-", "") for r in receiver.accepted
                   if r.path == "/telnyx" and json.loads(r.body)["data"]["payload"]["conference_id"] == cid]
            assert got == want, f"{cid}: in order"
            statuses = [json.loads(r.body)["status"] for r in receiver.accepted if r.path == f"/freeclimb/{cid}"]
            assert statuses == ["empty", "populated", "inProgress", "empty", "terminated"]
        # every request is signed as the vendors sign; their SDKs say so
        for r in receiver.accepted:
            if r.path == "/telnyx":
                verify_webhook_signature(r.body.decode(), r.headers, keys.telnyx.public_key_b64)
            else:
                RequestVerifier.verify_request_signature(
                    r.body.decode(), r.headers["FreeClimb-Signature"], keys.freeclimb.secret, 300)
        stats = rig.dispatcher.stats()
        assert stats["delivered"] == expected_telnyx + expected_fc and stats["pending"] == 0 and stats["dead"] == 0
        rows = await rig.dispatcher.store.for_conference("conf_a")
        assert all(d.state == "delivered" for d in rows) and rows[0].attempts > 1
    finally:
        await rig.close()


async def test_a_receiver_that_never_answers_delays_no_one_else(tmp_path: Path) -> None:
    hang = await Receiver().up()
    fast = await Receiver().up()
    hang.mode = "hang"
    rig = await Rig(tmp_path, make_config(tmp_path, None, timeout_s=3.0, max_in_flight_per_destination=2)).start()
    clock = MediaClock(lambda now: rig.bus.drain())
    clock.start()
    try:
        for i in range(6):  # more stuck lanes than the hanging destination has slots
            rig.confs.add(f"conf_h{i}", webhook_url=hang.url + "/h")
        rig.confs.add("conf_f", webhook_url=fast.url + "/f")
        for i in range(6):
            rig.bus.publish(ConferenceCreated(f"conf_h{i}"))
        await asyncio.sleep(0.3)
        assert 1 <= len(hang.requests) <= 2           # bounded: the hanging receiver's own slots only
        start = time.monotonic()
        for i in range(5):
            rig.bus.publish(ParticipantJoined("conf_f", participant_id=f"p{i}"))
        assert await fast.wait_for(5, timeout=2.0)
        assert time.monotonic() - start < 1.0, "the other destination was served at once"
        assert clock.skipped_ticks == 0
        assert clock.late_ticks <= max(2, clock.ticks // 50), (clock.late_ticks, clock.ticks)
        rows = await rig.dispatcher.store.for_conference("conf_h0")
        assert rows and rows[0].state == "pending"
    finally:
        await clock.stop()
        await rig.close()
        await hang.down()
        await fast.down()


async def test_restart_resumes_pending_rows(tmp_path: Path) -> None:
    port = free_port()   # nothing listens yet: every attempt is refused
    config = make_config(tmp_path, f"http://127.0.0.1:{port}/hook")
    rig = await Rig(tmp_path, config).start()
    rig.confs.add("conf_r")
    published = [rig.bus.publish(ParticipantJoined("conf_r", participant_id=f"p{i}")) for i in range(5)]
    rig.bus.drain()
    await rig.dispatcher.flush()
    await asyncio.sleep(0.3)
    await rig.close()       # as good as a crash for the rows: they are all still pending
    receiver = await Receiver(port).up()
    try:
        rig2 = await Rig(tmp_path, config).start()
        rig2.confs.add("conf_r")
        try:
            assert await receiver.wait_for(5, timeout=10)
            assert [i.replace("-", "") for i in telnyx_ids(receiver.accepted)] == [e.event_id for e in published]
        finally:
            await rig2.close()
    finally:
        await receiver.down()


async def test_dead_letter_and_redeliver(tmp_path: Path, receiver: Receiver) -> None:
    receiver.mode = "fail"
    rig = await Rig(tmp_path, make_config(tmp_path, receiver.url + "/x", retry_horizon_hours=0.0003)).start()
    try:
        rig.confs.add("conf_d")
        rig.publish(ConferenceCreated("conf_d"), ParticipantJoined("conf_d", participant_id="p1"))
        deadline = time.monotonic() + 10
        while rig.dispatcher.stats()["dead"] < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert rig.dispatcher.stats()["dead"] == 2
        rows = await rig.dispatcher.store.for_conference("conf_d")
        assert [d.state for d in rows] == ["dead", "dead"] and rows[0].last_status == "500"
        receiver.mode = "ok"
        again = await rig.dispatcher.redeliver(rows[0].id, "conf_d")
        assert again is not None and again.state == "pending"
        assert await receiver.wait_for(1, timeout=5)
        assert telnyx_ids(receiver.accepted) == [rows[0].id]
    finally:
        await rig.close()


async def test_failover_url_takes_over(tmp_path: Path, receiver: Receiver) -> None:
    rig = await Rig(tmp_path, make_config(tmp_path, None)).start()
    try:
        dead_port = free_port()
        rig.confs.add("conf_f", webhook_url=f"http://127.0.0.1:{dead_port}/p", webhook_failover_url=receiver.url + "/b")
        rig.publish(ConferenceCreated("conf_f"))
        assert await receiver.wait_for(1, timeout=5)
        await asyncio.sleep(0.1)
        [row] = await rig.dispatcher.store.for_conference("conf_f")
        assert row.state == "delivered" and row.delivered_to == receiver.url + "/b" and row.attempts == 1
    finally:
        await rig.close()


async def test_forbidden_address_at_send_time(tmp_path: Path, receiver: Receiver) -> None:
    # The URL was fine when stored, but the policy no longer allows loopback: never connected.
    rig = await Rig(tmp_path, make_config(tmp_path, None, allow_networks=[])).start()
    try:
        rig.confs.add("conf_s", webhook_url=receiver.url + "/x")
        rig.confs.add("conf_n", webhook_url=f"http://localhost:{receiver.port}/x")
        rig.publish(ConferenceCreated("conf_s"), ConferenceCreated("conf_n"))
        await asyncio.sleep(0.5)
        assert receiver.requests == []
        [row] = await rig.dispatcher.store.for_conference("conf_s")
        assert row.state == "pending" and (row.last_status or "").startswith("forbidden")
        [row] = await rig.dispatcher.store.for_conference("conf_n")
        assert "forbidden" in (row.last_status or "")
    finally:
        await rig.close()
