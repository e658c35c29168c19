"""Dial-out against trunks beyond the basics: a SHA-256 digest challenge from our own small UAS
(Debian's SIPp checks MD5 only), removing a participant while it rings (CANCEL, 487 ACKed, seen
by SIPp), and the Audian seed's participant examples sent verbatim, up to the 429 of the 11th
add within a second."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.peers.mini_uas import MiniUas
from tests.e2e.peers.ports import PortAllocator
from tests.e2e.peers.sipp import SippProcess
from tests.support.bridge_proc import DEMO_TOKEN, BridgeProcess

pytestmark = [pytest.mark.e2e]
SEED_CONF = "conf_abc123def456"


def wait_status(bridge: BridgeProcess, conf: str, pid: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        code, body = bridge.api("GET", f"/v2/conferences/{conf}/participants")
        assert code == 200, body
        person = next((p for p in body["participants"] if p["id"] == pid), None)
        if person is not None:
            if not seen or seen[-1] != person["status"]:
                seen.append(person["status"])
            if person["status"] == status:
                return dict(person, seen=seen)
        time.sleep(0.1)
    raise AssertionError(f"{pid} never {status} (saw {seen})\n{bridge.log_tail()}")


def test_a_sha256_digest_challenge_from_our_own_uas_is_answered(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator,
) -> None:
    uas_port = ports.port()
    bridge = bridge_factory(trunks=[{"name": "sha", "host": "127.0.0.1", "port": uas_port,
                                     "username": "alice", "password": "secret"}],
                            dial_out={"default_trunk": "sha"})
    with MiniUas(uas_port, algorithm="SHA-256") as uas:
        code, body = bridge.api("POST", "/v2/conferences/conf_room2/participants",
                                {"phone_number": "+12025550300"})
        assert code == 200, body
        wait_status(bridge, "conf_room2", body["id"], "connected")
        uas.wait_for("ACK")
        code, _ = bridge.api("DELETE", f"/v2/conferences/conf_room2/participants/{body['id']}")
        assert code == 204
        uas.wait_for("BYE")
    # First INVITE challenged, the second carried a SHA-256 response our own hashlib agrees with.
    assert uas.seen.auth_ok == [True], (uas.seen.auth_ok, uas.seen.authorizations)
    assert "algorithm=SHA-256" in uas.seen.authorizations[0]
    assert [w for w, _ in uas.seen.events].count("INVITE") == 2


def test_a_wrong_password_is_rejected_as_a_trunk_auth_failure(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator,
) -> None:
    uas_port = ports.port()
    bridge = bridge_factory(trunks=[{"name": "sha", "host": "127.0.0.1", "port": uas_port,
                                     "username": "alice", "password": "not-the-secret"}],
                            dial_out={"default_trunk": "sha"})
    with MiniUas(uas_port, algorithm="SHA-256") as uas:
        code, body = bridge.api("POST", "/v2/conferences/conf_room2/participants",
                                {"phone_number": "+12025550301"})
        assert code == 200, body
        rejected = wait_status(bridge, "conf_room2", body["id"], "rejected")
    assert rejected["leave_reason"] == "trunk_auth_failed"
    assert uas.seen.auth_ok and not any(uas.seen.auth_ok)


@pytest.mark.usefixtures("need_sipp")
def test_delete_while_ringing_sends_cancel_and_acks_the_487(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path,
) -> None:
    trunk_ports = ports.sipp()
    bridge = bridge_factory(trunks=[{"name": "sipp", "host": "127.0.0.1", "port": trunk_ports.sip}],
                            dial_out={"default_trunk": "sipp", "no_answer_timeout_s": 60})
    sipp = SippProcess("trunk_no_answer", "", local_port=trunk_ports.sip, media_port=trunk_ports.media,
                       timeout=25, workdir=tmp_path / "sipp")
    try:
        time.sleep(0.5)
        code, body = bridge.api("POST", "/v2/conferences/conf_room2/participants",
                                {"phone_number": "+12025550400"})
        assert code == 200 and body["status"] == "dialing", body
        time.sleep(1.0)             # the 180 has arrived: CANCEL is allowed now
        code, _ = bridge.api("DELETE", f"/v2/conferences/conf_room2/participants/{body['id']}")
        assert code == 204
        rejected = wait_status(bridge, "conf_room2", body["id"], "rejected", timeout=5)
        assert rejected["leave_reason"] == "canceled"
        result = sipp.wait(10)      # SIPp got our CANCEL, answered 200 + 487 and saw our ACK
        assert result.returncode == 0, (result.stdout, result.stderr)
    finally:
        if sipp.running():
            sipp.proc.kill()


def _seed_bridge(bridge_factory: Callable[..., BridgeProcess], uas_port: int) -> BridgeProcess:
    rooms = [{"name": "abc123def456", "account": "acct1", "rate": 8000}]
    return bridge_factory(rooms=rooms,
                          trunks=[{"name": "carrier", "host": "127.0.0.1", "port": uas_port,
                                   "calls_per_second": 100}],
                          dial_out={"default_trunk": "carrier"})


def test_the_seed_participant_examples_verbatim(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator,
) -> None:
    uas_port = ports.port()
    # The burst's numbers are busy so their legs free their ports at once.
    with MiniUas(uas_port, behaviour=lambda n: 486 if n.startswith("+1303") else "answer") as uas:
        bridge = _seed_bridge(bridge_factory, uas_port)
        url = f"{bridge.base_url}/v2/conferences/{SEED_CONF}/participants"

        # "Add Participant by Phone" (curl), body as printed.
        r = requests.post(url, headers={"X-Auth-Token": DEMO_TOKEN, "Content-Type": "application/json"},
                          data='{\n"phone_number": "+12025551234",\n"name": "John Smith",\n"role": "presenter"\n}',
                          timeout=10)
        assert r.status_code == 200, r.text
        first = r.json()
        assert {k: first[k] for k in ("conference_id", "phone_number", "name", "role", "status", "muted",
                                      "duration", "joined_at")} == {
            "conference_id": SEED_CONF, "phone_number": "+12025551234", "name": "John Smith",
            "role": "presenter", "status": "dialing", "muted": False, "duration": 0, "joined_at": None}
        assert first["id"].startswith("part_") and first["created_at"].endswith("Z")

        # "Add Multiple Participants" (Bearer auth, role defaulting to listener).
        people = [{"phone": "+12025555678", "name": "Jane Doe", "role": "listener"},
                  {"phone": "+12025559999", "name": "Bob Johnson", "role": "listener"}]
        added = []
        for person in people:
            r = requests.post(url, headers={"Authorization": f"Bearer {DEMO_TOKEN}",
                                             "Content-Type": "application/json"},
                              json={"phone_number": person["phone"], "name": person["name"],
                                    "role": person.get("role") or "listener"}, timeout=10)
            assert r.status_code == 200, r.text
            added.append(r.json())

        # "Add With Mute on Entry (Webinar Style)".
        r = requests.post(url, headers={"X-Auth-Token": DEMO_TOKEN, "Content-Type": "application/json"},
                          data='{\n"phone_number": "+14155551234",\n"name": "Participant",\n'
                               '"role": "listener",\n"muted": true\n}', timeout=10)
        assert r.status_code == 200, r.text
        webinar = r.json()
        assert webinar["muted"] is True and webinar["role"] == "listener"

        for p in [first, *added, webinar]:
            wait_status(bridge, SEED_CONF, p["id"], "connected")
        listing = requests.get(url, headers={"X-Auth-Token": DEMO_TOKEN}, timeout=10).json()
        by_id = {p["id"]: p for p in listing["participants"]}
        assert listing["total"] == 4 and listing["active"] == 4
        assert by_id[webinar["id"]]["muted"] is True and by_id[first["id"]]["muted"] is False
        assert all(by_id[p["id"]]["joined_at"] for p in [first, *added, webinar])
        assert [by_id[a["id"]]["name"] for a in added] == ["Jane Doe", "Bob Johnson"]

        # "Max add requests per second: 10": the 11th within one second is refused.
        time.sleep(1.1)
        codes = []
        started = time.monotonic()
        for i in range(11):
            r = requests.post(url, headers={"X-Auth-Token": DEMO_TOKEN},
                              json={"phone_number": f"+130355501{i:02d}", "name": "Attendee",
                                    "role": "listener"}, timeout=10)
            codes.append(r.status_code)
            last = r
        if time.monotonic() - started < 1.0:        # a slow machine may spread them over >1 s
            assert codes == [200] * 10 + [429], codes
            body = last.json()
            assert body["error"] == "rate_limited" and "10" in body["message"], body
        uas.wait_for("INVITE")


@pytest.mark.usefixtures("need_sipp")
def test_a_tcp_trunk_with_a_digest_challenge_connects_and_hangs_up(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path,
) -> None:
    trunk_ports = ports.sipp()
    bridge = bridge_factory(trunks=[{"name": "tcp", "host": "127.0.0.1", "port": trunk_ports.sip,
                                     "transport": "tcp", "username": "alice", "password": "secret"}],
                            dial_out={"default_trunk": "tcp"})
    sipp = SippProcess("trunk_digest_407", "", local_port=trunk_ports.sip, media_port=trunk_ports.media,
                       timeout=25, workdir=tmp_path / "sipp", extra_args=["-t", "t1"])
    try:
        time.sleep(0.5)
        code, body = bridge.api("POST", "/v2/conferences/conf_room2/participants",
                                {"phone_number": "+12025550500"})
        assert code == 200, body
        wait_status(bridge, "conf_room2", body["id"], "connected")
        code, _ = bridge.api("DELETE", f"/v2/conferences/conf_room2/participants/{body['id']}")
        assert code == 204
        result = sipp.wait(10)          # challenge, INVITE with credentials, 200, ACK, our BYE: all over TCP
        assert result.returncode == 0, (result.stdout, result.stderr)
    finally:
        if sipp.running():
            sipp.proc.kill()
    trace = (tmp_path / "sipp").glob("*messages.log")
    text = next(trace).read_text(errors="replace")
    assert "SIP/2.0/TCP" in text and "Proxy-Authorization: Digest" in text
