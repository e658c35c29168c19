"""POST one delivery: fresh signature, timeout, no redirects, small response read, SSRF guard.

Success is any 2xx. A delivery with a failover URL that fails on its primary URL (error
status, timeout, refused connection) is sent to the failover URL in the same attempt, as Telnyx
does. Redirects are never followed (a 3xx is a failure). The response body is read up to
``max_response_bytes`` and dropped. The destination address is checked against the SSRF
policy right before connecting: a host name through a resolver that drops forbidden addresses
(so the address checked is the address connected to; DNS rebinding gets nowhere), an IP
literal directly. Name resolution runs in aiohttp's resolver (a thread), never blocking the loop.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ...config import WebhooksConfig
from ..model import Delivery, Outcome
from ..urls import AddressPolicy, ForbiddenDestination, check_address, literal_address

Signer = Callable[[bytes, int], dict[str, str]]
USER_AGENT = "tutti-bridge-webhooks"


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then keeps only addresses the policy allows."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._inner = DefaultResolver()
        self._policy = policy

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = []
        for r in results:
            try:
                check_address(r["host"], self._policy)
            except ForbiddenDestination:
                continue
            allowed.append(r)
        if not allowed:
            raise OSError(f"forbidden: {host} resolves only to non-public addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class Sender:
    def __init__(self, config: WebhooksConfig, policy: AddressPolicy, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.policy = policy
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.policy),
            limit=self.config.max_in_flight,
            limit_per_host=self.config.max_in_flight_per_destination,
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,      # never through a proxy from the environment
            auto_decompress=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, d: Delivery, signer: Signer | None) -> Outcome:
        first = await self.post(d, d.url, signer)
        if first.ok or not d.failover_url:
            return first
        second = await self.post(d, d.failover_url, signer)
        if second.ok:
            return second
        return Outcome(False, f"{first.status}; failover: {second.status}")

    async def post(self, d: Delivery, url: str, signer: Signer | None) -> Outcome:
        session = self._session
        if session is None:
            return Outcome(False, "sender closed")
        host = urlsplit(url).hostname or ""
        literal = literal_address(host)
        if literal is not None:
            try:
                check_address(str(literal), self.policy)
            except ForbiddenDestination as err:
                return Outcome(False, f"forbidden: {err}")
        headers: dict[str, Any] = {
            "Content-Type": "application/json",
            "X-Tutti-Webhook-Id": d.id,
            "X-Tutti-Attempt": str(d.attempts + 1),
        }
        if signer is not None:
            headers.update(signer(d.body, int(self.clock())))
        try:
            async with session.post(url, data=d.body, headers=headers, allow_redirects=False) as resp:
                if self.config.max_response_bytes:
                    await resp.content.read(self.config.max_response_bytes)
                if 200 <= resp.status < 300:
                    return Outcome(True, str(resp.status), delivered_to=url)
                return Outcome(False, str(resp.status))
        except asyncio.TimeoutError:
            return Outcome(False, f"timeout after {self.config.timeout_s:g} s")
        except aiohttp.ClientConnectorError as err:
            return Outcome(False, f"connect: {_short(err.os_error)}")
        except (aiohttp.ClientError, OSError) as err:
            return Outcome(False, f"error: {_short(err)}")


def _short(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text[:200]
