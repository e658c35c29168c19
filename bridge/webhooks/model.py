"""One delivery: an event body bound for one destination, and what happened to it so far."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

Form = Literal["telnyx", "freeclimb"]
State = Literal["pending", "delivered", "dead"]


@dataclass(frozen=True)
class Delivery:
    """An outbox row. ``body`` is the exact bytes sent (signed at send time with a fresh timestamp).

    ``id`` is stable across retries and restarts (the Telnyx ``data.id``; FreeClimb bodies have no
    id field, so it travels in the ``X-Tutti-Webhook-Id`` header); ``position`` orders deliveries
    within their lane (same conference, same destination URL).
    """

    id: str
    conference_id: str
    account_id: str | None
    event_id: str
    event_type: str
    form: Form
    url: str
    failover_url: str | None
    body: bytes
    created_at: float          # unix seconds: when the event happened (the retry horizon counts from it)
    position: int = 0          # assigned by the outbox store when persisted
    state: State = "pending"
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_status: str | None = None
    last_attempt_at: float | None = None
    delivered_at: float | None = None
    delivered_to: str | None = None

    @property
    def lane(self) -> tuple[str, str]:
        return (self.conference_id, self.url)

    def replace(self, **changes: object) -> "Delivery":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt (primary URL, then the failover URL if the primary failed)."""

    ok: bool
    status: str                 # "200", "500", "timeout", "connect: ...", "forbidden: ..."
    delivered_to: str | None = None
