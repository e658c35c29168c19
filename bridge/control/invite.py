"""E-mail invitations: the message (text + an iCalendar event for scheduled conferences).

Pure: building and validating only; ``bridge/adapters/invite_routes.py`` sends over SMTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from bridge.control.errors import bad_request
from bridge.control.model import Conference

MAX_RECIPIENTS = 50
# Deliberately plain (RFC 5321 mailbox, no quoted local parts or IP literals): one address, no names.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{1,253}$)"
                      r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


@dataclass(frozen=True)
class JoinDetails:
    join_url: str
    sip_uri: str
    access_uri: str
    access_number: str | None


def parse_recipients(body: dict[str, object]) -> list[str]:
    """``{"emails": [...]}``: 1-50 distinct valid addresses, or a 400 naming the bad one."""
    emails = body.get("emails")
    if not isinstance(emails, list) or not emails:
        raise bad_request("invalid_emails", "emails must be a non-empty list of e-mail addresses")
    if len(emails) > MAX_RECIPIENTS:
        raise bad_request("too_many_emails", f"at most {MAX_RECIPIENTS} addresses per invitation")
    out: list[str] = []
    for item in emails:
        if not isinstance(item, str) or not _ADDRESS.match(item.strip()):
            raise bad_request("invalid_email", f"not a valid e-mail address: {str(item)[:100]!r}")
        if item.strip().lower() not in (o.lower() for o in out):
            out.append(item.strip())
    return out


def _when(conf: Conference) -> str:
    if conf.scheduled_for is None:
        return "Any time (the conference is open now)"
    start = conf.scheduled_for.astimezone(timezone.utc)
    text = start.strftime("%A %d %B %Y, %H:%M UTC")
    return text + (f" ({conf.duration_minutes} minutes)" if conf.duration_minutes else "")


def body_text(conf: Conference, links: JoinDetails) -> str:
    lines = [
        f"You are invited to the conference \"{conf.name or conf.id}\".",
        "",
        f"When: {_when(conf)}",
        f"Join from your browser: {links.join_url}",
        f"Join from a SIP phone: {links.sip_uri}",
    ]
    if conf.dial_in_code:
        number = links.access_number or links.access_uri
        lines.append(f"Dial in: {number}, then enter the conference code {conf.dial_in_code}")
    if conf.member_pins:
        lines.append(f"PIN: {conf.member_pins[0]}")
    lines += ["", "-- tutti-bridge"]
    return "\n".join(lines) + "\n"


def _ics_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 3.1: lines longer than 75 octets continue on lines starting with a space."""
    raw = line.encode("utf-8")
    parts: list[str] = []
    while len(raw) > (75 if not parts else 74):     # a continuation's leading space counts
        cut = 75 if not parts else 74
        while cut > 0 and (raw[cut] & 0xC0) == 0x80:   # never split a UTF-8 sequence
            cut -= 1
        parts.append(raw[:cut].decode("utf-8"))
        raw = raw[cut:]
    parts.append(raw.decode("utf-8"))
    return "\r\n ".join(parts)


def ics(conf: Conference, links: JoinDetails, now: datetime, host: str) -> str | None:
    """An iCalendar VEVENT for a scheduled conference (None when it has no start time)."""
    if conf.scheduled_for is None:
        return None
    start = conf.scheduled_for.astimezone(timezone.utc)
    end = start + timedelta(minutes=conf.duration_minutes or 60)
    fmt = "%Y%m%dT%H%M%SZ"
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tutti-bridge//invite//EN", "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{conf.id}@{host}",
        f"DTSTAMP:{now.astimezone(timezone.utc).strftime(fmt)}",
        f"DTSTART:{start.strftime(fmt)}",
        f"DTEND:{end.strftime(fmt)}",
        f"SUMMARY:{_ics_escape(conf.name or conf.id)}",
        f"LOCATION:{_ics_escape(links.join_url)}",
        f"URL:{links.join_url}",
        f"DESCRIPTION:{_ics_escape(body_text(conf, links))}",
        "END:VEVENT", "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)


def message(conf: Conference, links: JoinDetails, sender: str, to: str, now: datetime, host: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"Invitation: {conf.name or conf.id}"
    msg["Date"] = formatdate(now.timestamp(), localtime=False)
    msg["Message-ID"] = make_msgid(domain=host)
    msg.set_content(body_text(conf, links))
    event = ics(conf, links, now, host)
    if event is not None:
        msg.add_attachment(event.encode("utf-8"), maintype="text", subtype="calendar",
                           filename="invite.ics", params={"method": "PUBLISH"})
    return msg
