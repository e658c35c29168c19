"""Two bridge nodes sharing one redis-server: definitions made on one are dialable on the
other, the other's API controls the room (a mute through node A is heard on node B), and a
caller who reaches the wrong node is sent to the owner with a 302."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.helpers import PREFIX, client, wait_for
from tests.e2e.calls import dial_all, hang_up_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import DEMO_TOKEN, BridgeProcess
from tests.support.raw_sip import raw_invite
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]


def telnyx(node: BridgeProcess, path: str, body: dict[str, object]) -> tuple[int, object]:
    req = urllib.request.Request(node.base_url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {DEMO_TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def join_page_redirect(node: BridgeProcess, conf_id: str) -> str:
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(f"{node.base_url}/conferences/{conf_id}/join?x=1", headers={"Accept": "text/html"})
    try:
        opener.open(req, timeout=10)
    except urllib.error.HTTPError as err:
        assert err.code == 307, err.code
        return str(err.headers["Location"])
    raise AssertionError("no redirect")


def test_mute_through_node_a_is_heard_on_node_b(node_factory: Callable[..., BridgeProcess],
                                                redis_server: RedisServer, ports: PortAllocator,
                                                tmp_path: Path) -> None:
    node_a = node_factory("node-a")
    node_b = node_factory("node-b")
    r = client(redis_server)
    # A conference made through A's API is listed by B and dialable on B.
    status, made = node_a.api("PUT", "/v2/accounts/acct1/conferences", {"data": {"name": "shared"}})
    assert status == 201, made
    conf = made["data"]
    conf_id, code = conf["id"], conf["dial_in_code"]
    listed = wait_for(lambda: node_b.api("GET", f"/v2/accounts/acct1/conferences/{conf_id}")[0] == 200, 3)
    assert listed, "node B does not know the conference node A created"
    base = f"/v2/accounts/acct1/conferences/{conf_id}/participants"
    specs = [("speaker", "PCMU", 500.0), ("listener", "PCMU", None)]
    with participants(tmp_path, ports, specs) as people:
        speaker, listener = people
        dial_all(node_b, people, conf_id)
        assert wait_for(lambda: r.get(f"{PREFIX}conf:{conf_id}:owner")) == "node-b"
        assert wait_for(lambda: r.get(f"{PREFIX}room:{code}:node")) == f"sip:127.0.0.1:{node_b.sip_port}"
        # A lists B's participants (from B's snapshot).
        def listing_on_a() -> dict[str, dict[str, object]]:
            st, body = node_a.api("GET", base)
            return {p["caller_id_number"]: p for p in body["data"]} if st == 200 else {}
        by_name = wait_for(lambda: len(listing_on_a()) == 2 and listing_on_a())
        assert set(by_name) == {"speaker", "listener"}, by_name
        # A caller of the live room who reaches A is sent to B.
        assert raw_invite(node_a.sip_port, ports.block(4), code) == (
            302, f"<sip:{code}@127.0.0.1:{node_b.sip_port}>")
        t0 = time.monotonic()
        talk(2.0)
        pid = by_name["speaker"]["participant_id"]
        status, body = node_a.api("POST", f"{base}/{pid}", {"data": {"action": "mute"}})
        assert status == 200 and body["data"]["muted"] is True, body
        t_mute = time.monotonic() - t0
        muted_on_b = wait_for(lambda: any(p["muted"] for p in node_b.api("GET", base)[1]["data"]
                                          if p["participant_id"] == pid), 2)
        assert muted_on_b, "B's own listing does not show the mute"
        talk(2.5)
        status, body = node_a.api("POST", f"{base}/{pid}", {"data": {"action": "unmute"}})
        assert status == 200, body
        t_unmute = time.monotonic() - t0
        talk(2.0)
        hang_up_all(people)
        samples, rate = listener.heard()
    assert audio.tone_seconds(samples, rate, 500.0, 0.5, t_mute - 0.3) > 0.8, "speaker not heard before the mute"
    assert audio.tone_seconds(samples, rate, 500.0, t_mute + 0.4, t_unmute - 0.2) == 0.0, "muted through A, still heard on B"
    assert audio.tone_seconds(samples, rate, 500.0, t_unmute + 0.5, t_unmute + 1.5) > 0.5, "unmute through A not heard"
    assert wait_for(lambda: r.get(f"{PREFIX}conf:{conf_id}:owner") is None, 2.5)
    # Settings changed on B reach A's memory; the definition itself is in Redis.
    status, body = node_b.api("POST", f"/v2/accounts/acct1/conferences/{conf_id}", {"data": {"name": "renamed"}})
    assert status == 200, body
    assert wait_for(lambda: node_a.api("GET", f"/v2/accounts/acct1/conferences/{conf_id}")[1]["data"]["name"]
                    == "renamed", 3)
    assert json.loads(r.hget(f"{PREFIX}conferences", conf_id))["name"] == "renamed"


def test_kick_and_end_through_node_a_reach_callers_on_node_b(node_factory: Callable[..., BridgeProcess],
                                                             redis_server: RedisServer, ports: PortAllocator,
                                                             tmp_path: Path) -> None:
    node_a = node_factory("node-a")
    node_b = node_factory("node-b")
    status, made = node_a.api("PUT", "/v2/accounts/acct1/conferences", {"data": {"name": "ending"}})
    assert status == 201, made
    conf_id = made["data"]["id"]
    base = f"/v2/accounts/acct1/conferences/{conf_id}/participants"
    assert wait_for(lambda: node_b.api("GET", f"/v2/accounts/acct1/conferences/{conf_id}")[0] == 200, 3)
    with participants(tmp_path, ports, [("one", "PCMU", None), ("two", "PCMU", None)]) as people:
        dial_all(node_b, people, conf_id)
        listing = wait_for(lambda: len(node_a.api("GET", base)[1]["data"]) == 2 and node_a.api("GET", base)[1]["data"])
        one = next(p for p in listing if p["caller_id_number"] == "one")
        # Only the owner can dial into the room or play into it: A says so and names B.
        status, body = node_a.api("POST", f"/v2/conferences/{conf_id}/participants", {"phone_number": "+15550100"})
        assert status == 409 and node_b.base_url in json.dumps(body), body
        status, body = telnyx(node_a, f"/telnyx/v2/conferences/{conf_id}/actions/stop", {})
        assert status == 422 and node_b.base_url in json.dumps(body), body     # Telnyx's shape of a 409
        status, body = node_a.api("POST", f"/v2/conferences/{conf_id}/recordings", {})
        assert status == 409 and node_b.base_url in json.dumps(body), body
        # The join page (WebRTC) of the room is B's: A redirects browsers there.
        assert join_page_redirect(node_a, conf_id) == f"{node_b.base_url}/conferences/{conf_id}/join?x=1"
        status, body = node_a.api("POST", f"/conferences/{conf_id}/join/session", {})
        assert status == 409 and node_b.base_url in json.dumps(body), body
        status, _ = node_a.api("DELETE", f"{base}/{one['participant_id']}")
        assert status in (200, 204)
        people[0].phone.wait_event("CALL_CLOSED", timeout=5)        # B sent the BYE
        status, body = node_a.api("DELETE", f"/v2/accounts/acct1/conferences/{conf_id}")
        assert status == 200, body
        people[1].phone.wait_event("CALL_CLOSED", timeout=10)       # after the closing prompt
    status, body = node_b.api("GET", f"/v2/accounts/acct1/conferences/{conf_id}")
    assert body["data"]["status"] == "ended"


def test_an_expiring_conference_is_ended_once_by_its_owner(node_factory: Callable[..., BridgeProcess],
                                                           redis_server: RedisServer, ports: PortAllocator,
                                                           tmp_path: Path) -> None:
    """Both nodes' sweeps find the conference expired; one of them ends it, through the owner when
    that is the other node: the caller on B gets the BYE, and conference.ended is announced once."""
    from datetime import datetime, timedelta, timezone

    from bridge.control.model import Conference

    node_a = node_factory("node-a")
    node_b = node_factory("node-b")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    conf = Conference(id="conf_short", account_id="acct1", name="short", dial_in_code="55501234", created_at=now,
                      expires_at=now + timedelta(seconds=6))
    r = client(redis_server)
    r.hset(f"{PREFIX}conferences", conf.id, json.dumps(conf.to_record()))   # as a node's API write does
    r.publish(f"{PREFIX}conf-changes", conf.id)
    assert wait_for(lambda: node_b.api("GET", f"/v2/conferences/{conf.id}")[0] == 200, 3)

    def ended() -> list[str]:
        return [n.workdir.name for n in (node_a, node_b)
                for line in n.log_path.read_text(errors="replace").splitlines()
                if "conf_short #" in line and "conference.ended" in line]
    with participants(tmp_path, ports, [("late", "PCMU", None)]) as people:
        dial_all(node_b, people, conf.id)
        people[0].phone.wait_event("CALL_CLOSED", timeout=15)     # expired: closing prompt, then BYE
    assert wait_for(ended, 3)
    time.sleep(1.5)     # both sweeps have run again since
    assert ended() == ["node-b"], ended()
    assert node_a.api("GET", f"/v2/conferences/{conf.id}")[1]["status"] == "expired"
