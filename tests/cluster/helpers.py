"""Cluster test helpers: bridges in cluster mode sharing one redis-server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from tests.support.redis_server import RedisServer

PREFIX = "tutti:"


def client(server: RedisServer) -> "redis.Redis[str]":
    return redis.Redis.from_url(server.url, decode_responses=True)


def wait_for(check: Callable[[], Any], timeout: float = 8.0, step: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (bounded); returns the last value."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(step)
        value = check()
    return value
