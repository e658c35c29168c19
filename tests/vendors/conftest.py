"""Fixtures shared by the vendor SDK end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.webhook_receiver import ThreadedReceiver


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    """A real HTTP receiver for the bridge's webhooks, on its own thread."""
    r = ThreadedReceiver()
    yield r
    r.close()
