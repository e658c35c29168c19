"""``POST /v2/conferences/{id}/invitations``: e-mail a conference's join details over SMTP.

The SMTP conversation (smtplib, blocking) runs in a worker thread; a limited number of
addresses per account per hour (config.yaml ``smtp.per_hour`` / ``smtp.burst``) keeps a leaked
token from turning the bridge into a mail cannon.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage

from aiohttp import web

from bridge.adapters.http_api import account_of, json_object, links_of
from bridge.config import SmtpConfig
from bridge.control.errors import ControlError
from bridge.control.invite import JoinDetails, message, parse_recipients
from bridge.control.service import ConferenceService


class _Bucket:
    def __init__(self) -> None:
        self.tokens: dict[str, tuple[float, float]] = {}   # account -> (tokens, at)

    def take(self, account: str, n: int, cfg: SmtpConfig, now: float) -> float:
        """0 when ``n`` invitations may go now (and takes them), else seconds to wait."""
        have, at = self.tokens.get(account, (float(cfg.burst), now))
        have = min(float(cfg.burst), have + (now - at) * cfg.per_hour / 3600.0)
        if n > have:
            self.tokens[account] = (have, now)
            return (n - have) * 3600.0 / cfg.per_hour
        self.tokens[account] = (have - n, now)
        return 0.0


def _send(cfg: SmtpConfig, messages: list[EmailMessage]) -> None:
    assert cfg.host is not None
    with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s) as smtp:
        if cfg.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if cfg.username:
            smtp.login(cfg.username, os.environ.get(cfg.password_env or "", ""))
        for msg in messages:
            smtp.send_message(msg)


def invite_routes(service: ConferenceService, smtp: Callable[[], SmtpConfig]) -> Callable[[web.Application], None]:
    bucket = _Bucket()

    async def invite(request: web.Request) -> web.Response:
        account = account_of(request)
        conf = service.get_owned(account, request.match_info["conference_id"])
        cfg = smtp()
        if not cfg.host:
            raise ControlError(409, "smtp_not_configured", "e-mail invitations need an SMTP server: set "
                               "smtp.host (and smtp.port, smtp.starttls, smtp.sender) in config.yaml")
        to = parse_recipients(await json_object(request))
        wait = bucket.take(account, len(to), cfg, time.monotonic())
        if wait:
            raise ControlError(429, "rate_limited", f"at most {cfg.burst} invitations at once and "
                               f"{cfg.per_hour:g} per hour per account; retry in {wait:.0f} s")
        links = links_of(request)
        details = JoinDetails(f"{links.base_url}/conferences/{conf.id}/join",
                              conf.sip_uri(links.sip_host, links.sip_port), links.access_uri(), cfg.access_number)
        now = service.clock()
        msgs = [message(conf, details, cfg.sender, addr, now, links.sip_host) for addr in to]
        try:
            await asyncio.to_thread(_send, cfg, msgs)
        except (OSError, smtplib.SMTPException) as err:
            raise ControlError(502, "smtp_failed", f"the SMTP server did not take the invitation: {err}") from None
        return web.json_response({"sent": len(to), "recipients": to, "ics": conf.scheduled_for is not None},
                                 status=202)

    def add(app: web.Application) -> None:
        app.router.add_post("/v2/conferences/{conference_id}/invitations", invite)

    return add
