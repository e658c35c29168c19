"""Real HTTP against the control API: an aiohttp server on 127.0.0.1 with an ephemeral port."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge.adapters.http_api import build_http_app
from bridge.adapters.storage import ConferenceStore
from bridge.config import Config, parse_config
from bridge.control.model import Action, Conference, ParticipantView
from bridge.control.service import ConferenceService

TOKEN_A = "token-a"
TOKEN_B = "token-b"
START = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class FakeLive:
    """LiveRooms for tests: participants by conference, and a log of what was asked of the media."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[ParticipantView]] = {}
        self.actions: list[tuple[str, str, str]] = []
        self.ended: list[str] = []
        self.changed: list[Conference] = []
        self.dialled: list[ParticipantView] = []
        self.texts: list[str | None] = []

    def add(self, conf_id: str, pid: str, number: str = "+14155559999", name: str = "John Doe",
            joined_at: datetime = START, **kw: Any) -> None:
        held = kw.get("on_hold", False)
        view = ParticipantView(pid, number, name, kw.get("muted", False), False, held,
                               "member", joined_at, status="held" if held else "connected")
        self.rooms.setdefault(conf_id, []).append(view)

    def participants(self, conf_id: str) -> list[ParticipantView]:
        return list(self.rooms.get(conf_id, []))

    def act(self, conf_id: str, participant_id: str, action: Action) -> bool:
        people = self.rooms.get(conf_id, [])
        for i, p in enumerate(people):
            if p.participant_id == participant_id:
                self.actions.append((conf_id, participant_id, action))
                if action == "kick":
                    del people[i]
                elif action in ("mute", "unmute"):
                    people[i] = dataclasses.replace(p, muted=action == "mute")
                else:
                    people[i] = dataclasses.replace(p, deaf=action == "deaf")
                return True
        return False

    def end_conference(self, conf_id: str, reason: str = "ended_via_api") -> None:
        self.ended.append(conf_id)
        self.rooms.pop(conf_id, None)

    def conference_changed(self, conf: Conference) -> None:
        self.changed.append(conf)

    def dial_out(self, conf: Conference, number: str, name: str, role: str, muted: bool,
                 sms_text: str | None = None) -> ParticipantView:
        self.texts.append(sms_text)
        view = ParticipantView(f"part_out{len(self.dialled)}", number, name, muted, False, False, role, None,
                               status="dialing", kind="sip_outbound", created_at=START)
        self.dialled.append(view)
        self.rooms.setdefault(conf.id, []).append(view)
        return view


def make_config(data_dir: Path) -> Config:
    return parse_config({
        "data_dir": str(data_dir),
        "sip": {"advertise_host": "192.0.2.10"},
        "accounts": [
            {"id": "acct_a", "tokens": [TOKEN_A], "token_env": "TUTTI_TEST_EXTRA_TOKEN"},
            {"id": "acct_b", "tokens": [TOKEN_B]},
        ],
        "rooms": [{"name": "demo", "dial_in_code": "1000", "account": "acct_a", "max_participants": 30}],
    })


@dataclasses.dataclass
class Env:
    base: str
    http: aiohttp.ClientSession
    service: ConferenceService
    store: ConferenceStore
    live: FakeLive
    clock: Clock
    config: Config
    runner: web.AppRunner

    async def call(self, method: str, path: str, *, token: str | None = TOKEN_A, bearer: bool = False,
                   json: Any = None, data: str | bytes | None = None) -> tuple[int, Any]:
        headers = {}
        if token is not None:
            headers = {"Authorization": f"Bearer {token}"} if bearer else {"X-Auth-Token": token}
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.http.request(method, self.base + path, headers=headers, json=json, data=data) as r:
            text = await r.text()
            assert r.content_type == "application/json" or r.status == 204, (r.status, text)
            return r.status, (await r.json() if text else None)

    async def stop(self) -> None:
        await self.http.close()
        await self.runner.cleanup()
        self.store.close()


async def start_env(data_dir: Path, clock: Clock, live: FakeLive | None = None) -> Env:
    config = make_config(data_dir)
    store = ConferenceStore.for_config(config)
    live = live or FakeLive()
    service = ConferenceService(store, config, live, clock)
    runner = web.AppRunner(build_http_app(service, config=config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return Env(f"http://127.0.0.1:{port}", aiohttp.ClientSession(), service, store, live, clock, config, runner)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await start_env(tmp_path, Clock())
    yield e
    await e.stop()
