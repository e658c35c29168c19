"""Telnyx ``POST /v2/calls`` with ``conference_config``: a number dialled into a conference.

Only the dial-into-a-conference use is offered (the bridge is a conference bridge): a body
without ``conference_config`` is refused, and so is every field we would otherwise ignore.
``connection_id`` names a trunk from ``config.yaml``; ``from`` becomes the caller ID.
``call.initiated``/``call.answered``/``call.hangup`` go to ``webhook_url`` (else to the account's
first call-control application's URL; with neither, no call webhooks) with ``client_state``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bridge.call.dialed_calls import DialedCall
from bridge.config import Config
from bridge.control.errors import ControlError
from bridge.webhooks.urls import AddressPolicy, validate_url

from .validation import _bool, _int, _str, _unknown, _url, client_state, invalid, missing

_NUMBER = re.compile(r"^\+?[0-9*#]{1,19}$")
_FROM = re.compile(r"^\+?[A-Za-z0-9._~-]{1,64}$")


@dataclass(frozen=True)
class DialRequest:
    connection_id: str
    to: str
    from_user: str
    from_display: str | None
    timeout_s: int
    conference_id: str | None
    conference_name: str | None
    role: str              # presenter when it starts the conference on entering
    muted: bool
    command_id: str | None
    webhook_url: str | None = None
    webhook_failover_url: str | None = None
    client_state: str | None = None


def parse_dial(body: Mapping[str, object]) -> DialRequest:
    _unknown(body, ("connection_id", "to", "from", "timeout_secs", "conference_config", "command_id",
                    "from_display_name", "webhook_url", "webhook_failover_url", "client_state"))
    for field in ("connection_id", "to", "from", "conference_config"):
        if body.get(field) is None:
            raise missing(field)
    to = _str("to", body["to"], 20)
    if not _NUMBER.match(to):
        raise invalid("to", "to must be a phone number: digits with an optional leading +")
    from_user = _str("from", body["from"], 64)
    if not _FROM.match(from_user):
        raise invalid("from", "from must be a number or SIP user (letters, digits, + . _ ~ -)")
    display = (_str("from_display_name", body["from_display_name"], 64)
               if body.get("from_display_name") is not None else None)
    timeout = _int("timeout_secs", body["timeout_secs"], 5, 600) if body.get("timeout_secs") is not None else 30
    config = body["conference_config"]
    if not isinstance(config, Mapping):
        raise invalid("conference_config", "conference_config must be an object")
    _unknown(config, ("id", "conference_name", "mute", "start_conference_on_enter"))
    conf_id = _str("conference_config/id", config["id"]) if config.get("id") is not None else None
    name = (_str("conference_config/conference_name", config["conference_name"])
            if config.get("conference_name") is not None else None)
    if (conf_id is None) == (name is None):
        raise invalid("conference_config", "give exactly one of conference_config.id and conference_name")
    muted = config.get("mute") is not None and _bool("conference_config/mute", config["mute"])
    starts = config.get("start_conference_on_enter") is not None and _bool(
        "conference_config/start_conference_on_enter", config["start_conference_on_enter"])
    command = None if body.get("command_id") is None else _str("command_id", body["command_id"])
    urls = {f: _url(f, body[f]) if body.get(f) is not None else None
            for f in ("webhook_url", "webhook_failover_url")}
    state = client_state(body["client_state"]) if body.get("client_state") is not None else None
    return DialRequest(_str("connection_id", body["connection_id"], 64), to, from_user, display, timeout, conf_id, name,
                       "presenter" if starts else "member", muted, command, urls["webhook_url"],
                       urls["webhook_failover_url"], state)


def dial_webhooks(spec: DialRequest, account: str, config: Config, started_at: float) -> DialedCall | None:
    """Where the dialled leg's ``call.*`` webhooks go, or None (then ``client_state`` is refused:
    it would ride on nothing)."""
    apps = [a for a in config.call_control if a.account == account]
    url, failover = spec.webhook_url, spec.webhook_failover_url
    if url is None and apps:
        url, failover = apps[0].webhook_url, failover or apps[0].webhook_failover_url
    if url is None:
        if spec.client_state is not None:
            raise invalid("client_state", "client_state rides on call webhooks: give webhook_url too")
        if failover is not None:
            raise invalid("webhook_failover_url", "a failover URL needs webhook_url")
        return None
    policy = AddressPolicy.from_config(config.webhooks.allow_networks)
    for field, value in (("webhook_url", spec.webhook_url), ("webhook_failover_url", spec.webhook_failover_url)):
        if value is not None:
            try:
                validate_url(field, value, policy)
            except ControlError as err:
                raise invalid(field, str(err)) from None
    return DialedCall(account, spec.connection_id, url, failover, spec.client_state,
                      spec.from_user, spec.to, started_at)
