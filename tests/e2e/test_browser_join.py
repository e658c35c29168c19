"""Joining from a browser: headless Chromium (Debian's, driven by Playwright) on the join page.

The browser's fake microphone plays a tone file; a baresip caller in the same room records
what it hears and plays its own tone, which the page captures with WebAudio. Both directions
are judged by their spectrum (Goertzel), never by the bridge's own counters.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import BROWSER_HZ, conference, join, listing, page_heard, wait_listed
from tests.e2e.calls import participants
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip"), pytest.mark.timeout(120)]

SIP_HZ = 500.0


def _tampered(token: str) -> str:
    """The token with its last character changed (never to itself: urlsafe tokens may end in "x")."""
    return token[:-1] + ("y" if token.endswith("x") else "x")


def test_browser_and_sip_caller_hear_each_other(
    bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path, chromium: Any
) -> None:
    """Must-show 1 and 4: the page joins room1 by name; a baresip caller records the browser's
    tone and the page hears the caller's tone; the page is listed like any caller; screenshot."""
    conf = conference(bridge, "room1")
    with participants(tmp_path, ports, [("sip", "PCMU", SIP_HZ)]) as (sip,):
        sip.phone.dial(f"sip:room1@127.0.0.1:{bridge.sip_port}")
        sip.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        page = chromium.new_page(viewport={"width": 760, "height": 520})
        join(page, conf["join_url"], "Ada Lovelace")
        page.wait_for_selector("#call:not([hidden])", timeout=15000)
        me = wait_listed(bridge, conf["id"], "Ada Lovelace")
        page.wait_for_selector("#people li:nth-child(2)", timeout=5000)   # the SIP caller is on the page
        time.sleep(1.0)
        heard, rate = page_heard(page, 2500)
        page.screenshot(path=str(tmp_path / "join-page.png"))
        assert (tmp_path / "join-page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("TUTTI_SCREENSHOT_DIR"):     # how docs/join-page.png is refreshed
            shutil.copy(tmp_path / "join-page.png", Path(os.environ["TUTTI_SCREENSHOT_DIR"]) / "join-page.png")
        clean = wait_listed(bridge, conf["id"], "Ada Lovelace")
        sip.phone.hangup()
        sip.phone.wait_event("CALL_CLOSED", timeout=10)
        samples, srate = sip.heard()
    assert me["role"] == "member"
    assert clean["send_expected_loss"] == 0, clean     # loopback loses nothing: no FEC planned for it
    assert audio.has_tone(heard, rate, SIP_HZ, min_rel_db=-15, min_seconds=1.0), (
        f"the page did not hear the caller's {SIP_HZ} Hz: {audio.tone_level_db(heard, rate, SIP_HZ):.1f} dB")
    assert audio.tone_level_db(heard, rate, BROWSER_HZ) < -30, "the page heard its own tone"
    talk = audio.segment(samples, srate, 1.0, len(samples) / srate - 0.3)
    assert audio.has_tone(talk, srate, BROWSER_HZ, min_rel_db=-15, min_seconds=1.0), (
        f"the caller did not hear the browser's {BROWSER_HZ} Hz: "
        f"{audio.tone_level_db(talk, srate, BROWSER_HZ):.1f} dB")


def test_wrong_pin_is_refused_then_the_right_one_joins(bridge_factory: Any, chromium: Any) -> None:
    """Must-show 2: the PIN is judged by the bridge; a wrong one is a message on the page."""
    bridge = bridge_factory(rooms=[{"name": "locked1", "account": "acct1", "member_pins": ["4321"],
                                    "moderator_pins": ["9999"]}])
    conf = conference(bridge, "locked1")
    page = chromium.new_page()
    join(page, conf["join_url"], "Grace", pin="1111")
    error = page.wait_for_selector("#join-error:not([hidden])", timeout=10000)
    assert "PIN" in error.inner_text()
    assert page.is_hidden("#call")
    assert listing(bridge, conf["id"]) == []
    page.fill("#pin", "4321")
    page.click("#join")
    page.wait_for_selector("#call:not([hidden])", timeout=15000)
    assert wait_listed(bridge, conf["id"], "Grace")["role"] == "member"
    assert page.is_hidden("#mod")                        # members get no moderator controls
    boss = chromium.new_page()
    join(boss, conf["join_url"], "Boss", pin="9999")
    boss.wait_for_selector("#mod:not([hidden])", timeout=15000)
    assert wait_listed(bridge, conf["id"], "Boss")["role"] == "moderator"
    boss.click("#mute-all")                              # the moderator mutes everyone else
    page.wait_for_selector("#mute[aria-pressed=true]", timeout=5000)
    assert wait_listed(bridge, conf["id"], "Grace")["muted"] is True
    boss.click("#record")                                # recording, seen on every page
    page.wait_for_selector("#rec:not([hidden])", timeout=10000)
    boss.click("#lock")                                  # a locked conference turns newcomers away
    page.wait_for_selector("#locked:not([hidden])", timeout=5000)
    late = chromium.new_page()
    join(late, conf["join_url"], "Late", pin="4321")
    assert "locked" in late.wait_for_selector("#join-error:not([hidden])", timeout=10000).inner_text()
    # Guessing is slowed down per address: after the free failures the bridge answers 429.
    url = f"{bridge.base_url}/conferences/{conf['id']}/join/session"
    codes = [page.request.post(url, data={"name": "x", "pin": str(n), "sdp": "v=0\r\n"}).status
             for n in range(4)]
    assert codes == [403, 403, 403, 429], codes


def test_page_mute_silences_the_browser_and_a_rest_kick_ends_its_session(
    bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path, chromium: Any
) -> None:
    """Must-show 3: after Mute on the page the SIP caller no longer hears the browser's tone;
    removing the browser over REST ends the page's session with a message."""
    conf = conference(bridge, "room1")
    with participants(tmp_path, ports, [("sip", "PCMU", None)]) as (sip,):
        sip.phone.dial(f"sip:room1@127.0.0.1:{bridge.sip_port}")
        sip.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        t0 = time.monotonic()
        page = chromium.new_page()
        join(page, conf["join_url"], "Ada")
        page.wait_for_selector("#call:not([hidden])", timeout=15000)
        me = wait_listed(bridge, conf["id"], "Ada")
        time.sleep(2.5)
        page.get_by_role("button", name="Mute").click()
        t_mute = time.monotonic() - t0
        page.wait_for_selector("#people li.me-muted, #mute[aria-pressed=true]", timeout=5000)
        time.sleep(2.5)
        assert wait_listed(bridge, conf["id"], "Ada")["muted"] is True
        status, _ = bridge.api("DELETE", f"/v2/conferences/{conf['id']}/participants/{me['id']}")
        assert status == 204
        page.wait_for_selector("#ended:not([hidden])", timeout=10000)
        assert "removed" in page.inner_text("#ended-msg")
        sip.phone.hangup()
        sip.phone.wait_event("CALL_CLOSED", timeout=10)
        samples, srate = sip.heard()
    before = audio.segment(samples, srate, max(0.0, t_mute - 2.0), t_mute - 0.3)
    after = audio.segment(samples, srate, t_mute + 0.7, t_mute + 2.3)
    assert audio.has_tone(before, srate, BROWSER_HZ, min_rel_db=-15, min_seconds=0.8), (
        f"before mute: {audio.tone_level_db(before, srate, BROWSER_HZ):.1f} dB")
    assert not audio.has_tone(after, srate, BROWSER_HZ, min_rel_db=-15, min_seconds=0.2), (
        f"after mute the caller still heard the browser: {audio.tone_level_db(after, srate, BROWSER_HZ):.1f} dB")
    assert not [p for p in listing(bridge, conf["id"]) if p["name"] == "Ada"]


def test_join_url_is_json_for_api_clients_and_sessions_are_bound_to_theirconference(
    bridge: BridgeProcess, chromium: Any
) -> None:
    conf = conference(bridge, "room1")
    other = conference(bridge, "room2")
    status, body = bridge.api("GET", f"/conferences/{conf['id']}/join")
    assert status == 200 and body["id"] == conf["id"] and "sdp" not in body
    page = chromium.new_page()
    page.goto(conf["join_url"])
    page.fill("#name", "Ada")
    with page.expect_response(lambda r: r.url.endswith("/join/session")) as answer:
        page.click("#join")
    session = answer.value.json()
    page.wait_for_selector("#call:not([hidden])", timeout=15000)
    pid, token = session["participant_id"], session["token"]
    headers = {"X-Session-Token": token}
    # The same participant and token under another conference's id: 404, nothing changes.
    res = page.request.post(f"{bridge.base_url}/conferences/{other['id']}/join/session/{pid}/mute", headers=headers)
    assert res.status == 404
    assert wait_listed(bridge, conf["id"], "Ada")["muted"] is False
    res = page.request.post(f"{bridge.base_url}/conferences/{conf['id']}/join/session/{pid}/mute",
                            headers={"X-Session-Token": _tampered(token)})
    assert res.status == 404
    res = page.request.post(f"{bridge.base_url}/conferences/{conf['id']}/join/session/{pid}/mute", headers=headers)
    assert res.status == 204
    page.wait_for_selector("#mute[aria-pressed=true]", timeout=5000)    # the page follows the event stream
    assert wait_listed(bridge, conf["id"], "Ada")["muted"] is True
    # A member is no moderator.
    res = page.request.post(f"{bridge.base_url}/conferences/{conf['id']}/join/session/{pid}/moderate",
                            headers=headers, data={"action": "lock"})
    assert res.status == 403


def test_browser_cap_refuses_with_a_message(bridge_factory: Any, chromium: Any) -> None:
    bridge = bridge_factory(webrtc={"max_participants": 1})
    conf = conference(bridge, "room1")
    first = chromium.new_page()
    join(first, conf["join_url"], "One")
    first.wait_for_selector("#call:not([hidden])", timeout=15000)
    second = chromium.new_page()
    join(second, conf["join_url"], "Two")
    error = second.wait_for_selector("#join-error:not([hidden])", timeout=10000)
    assert "browser participants" in error.inner_text()
    assert [p["name"] for p in listing(bridge, conf["id"])] == ["One"]


class _Hooks(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_browser_participant_is_announced_by_webhooks_like_a_caller(
    bridge_factory: Any, ports: PortAllocator, chromium: Any
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", ports.port()), _Hooks)
    _Hooks.bodies = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        bridge = bridge_factory(webhooks={"allow_networks": ["127.0.0.1/32"], "initial_backoff_s": 0.2,
                                          "accounts": [{"account": "acct1", "url": url}]})
        conf = conference(bridge, "room1")
        page = chromium.new_page()
        join(page, conf["join_url"], "Ada")
        page.wait_for_selector("#call:not([hidden])", timeout=15000)
        pid = wait_listed(bridge, conf["id"], "Ada")["id"]
        page.get_by_role("button", name="Leave").click()
        page.wait_for_selector("#ended:not([hidden])", timeout=10000)
        deadline = time.monotonic() + 15
        names: list[str] = []
        while time.monotonic() < deadline:
            events = [json.loads(b) for b in list(_Hooks.bodies)]
            names = [e["data"]["event_type"] for e in events if pid in json.dumps(e)]
            if "conference.participant.left" in names:
                break
            time.sleep(0.1)
        assert "conference.participant.joined" in names and "conference.participant.left" in names, names
    finally:
        server.shutdown()
        server.server_close()
