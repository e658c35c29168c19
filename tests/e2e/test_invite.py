"""E-mail invitations delivered to a real SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

import pytest

from tests.e2e.peers.ports import PortAllocator

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


@pytest.fixture
def smtp_server(ports: PortAllocator) -> Iterator[tuple[int, _Inbox]]:
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    inbox = _Inbox()
    port = ports.port()
    controller = controller_mod.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def _unfold(ics: str) -> dict[str, str]:
    lines = ics.replace("\r\n ", "").split("\r\n")
    return {k: v for k, _, v in (line.partition(":") for line in lines if line)}


def test_invitation_arrives_with_join_details_and_a_valid_ics(bridge_factory: Any, smtp_server: Any) -> None:
    port, inbox = smtp_server
    bridge = bridge_factory(smtp={"host": "127.0.0.1", "port": port, "starttls": False,
                                  "sender": "Bridge <bridge@example.org>", "access_number": "+1 555 0100"})
    start = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0, second=0)
    status, conf = bridge.api("POST", "/v2/conferences", {
        "name": "Quarterly review", "pin": "2468", "scheduled_for": start.isoformat().replace("+00:00", "Z"),
        "duration_minutes": 45})
    assert status == 201, conf
    status, body = bridge.api("POST", f"/v2/conferences/{conf['id']}/invitations",
                              {"emails": ["ada@example.org", "grace@example.com"]})
    assert status == 202, body
    assert body["sent"] == 2
    deadline = time.monotonic() + 10
    while len(inbox.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(rcpt[0] for rcpt, _ in inbox.messages) == ["ada@example.org", "grace@example.com"]
    _, msg = inbox.messages[0]
    assert msg["Subject"] == "Invitation: Quarterly review"
    assert msg["From"] == "Bridge <bridge@example.org>"
    text = msg.get_body(("plain",)).get_content()
    for needle in (conf["join_url"], conf["sip_uri"], "+1 555 0100", conf["dial_in_code"], "PIN: 2468",
                   start.strftime("%d %B %Y, %H:%M UTC")):
        assert needle in text, f"{needle!r} not in the invitation:\n{text}"
    ics_parts = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(ics_parts) == 1 and ics_parts[0].get_filename() == "invite.ics"
    raw = ics_parts[0].get_content()
    raw = raw if isinstance(raw, str) else raw.decode()
    assert raw.startswith("BEGIN:VCALENDAR\r\n") and raw.endswith("END:VCALENDAR\r\n")
    long = [line for line in raw.split("\r\n") if len(line.encode()) > 75]
    assert long == [], "lines must be folded at 75 octets"
    fields = _unfold(raw)
    assert fields["VERSION"] == "2.0" and fields["BEGIN"] in ("VCALENDAR", "VEVENT")
    assert fields["DTSTART"] == start.strftime("%Y%m%dT%H%M%SZ")
    assert fields["DTEND"] == (start + timedelta(minutes=45)).strftime("%Y%m%dT%H%M%SZ")
    assert fields["URL"] == conf["join_url"]
    assert fields["SUMMARY"] == "Quarterly review"
    assert fields["UID"].startswith(conf["id"] + "@")


def test_invitation_refusals(bridge_factory: Any, smtp_server: Any) -> None:
    port, inbox = smtp_server
    plain = bridge_factory()
    status, conf = plain.api("POST", "/v2/conferences", {"name": "x"})
    status, body = plain.api("POST", f"/v2/conferences/{conf['id']}/invitations", {"emails": ["a@example.org"]})
    assert status == 409 and "smtp.host" in body["message"]

    bridge = bridge_factory(smtp={"host": "127.0.0.1", "port": port, "starttls": False, "burst": 3})
    status, conf = bridge.api("POST", "/v2/conferences", {"name": "open now"})
    url = f"/v2/conferences/{conf['id']}/invitations"
    for bad in (["not-an-address"], ["a@b"], [], "a@example.org", ["ok@example.org", "x y@example.org"]):
        status, body = bridge.api("POST", url, {"emails": bad})
        assert status == 400, (bad, body)
    assert inbox.messages == []
    status, body = bridge.api("POST", url, {"emails": ["a@example.org", "b@example.org"]})
    assert status == 202 and body["ics"] is False
    status, body = bridge.api("POST", url, {"emails": ["c@example.org", "d@example.org"]})
    assert status == 429 and body["error"] == "rate_limited"
    status, _ = bridge.api("POST", url, {"emails": ["a@example.org"]}, token="test-token-acct2")
    assert status == 404                       # another account's conference
    deadline = time.monotonic() + 5
    while len(inbox.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(inbox.messages) == 2
    assert all(not list(m.iter_attachments()) for _, m in inbox.messages)   # no .ics without a time
