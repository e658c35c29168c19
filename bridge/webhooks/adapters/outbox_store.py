"""The durable outbox: one SQLite table of deliveries, used by one worker thread only.

It lives in the bridge's database (``<data_dir>/bridge.sqlite3``, WAL mode) beside the
conference tables, on its own connection. Every operation runs on a single worker thread, in
the order it was asked for, so a read sees every write asked for before it, and nothing here
ever runs on the event loop (let alone the media tick). A committed row survives ``kill -9``
(WAL with ``synchronous=NORMAL`` loses nothing when the process dies; only a power cut can
lose the last commits).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..model import Delivery

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id              TEXT PRIMARY KEY,
    position        INTEGER NOT NULL,
    conference_id   TEXT NOT NULL,
    account_id      TEXT,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    form            TEXT NOT NULL,
    url             TEXT NOT NULL,
    failover_url    TEXT,
    body            BLOB NOT NULL,
    created_at      REAL NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_status     TEXT,
    last_attempt_at REAL,
    delivered_at    REAL,
    delivered_to    TEXT
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_state ON webhook_deliveries(state, position);
CREATE INDEX IF NOT EXISTS webhook_deliveries_conference ON webhook_deliveries(conference_id, position);
"""
_COLUMNS = (
    "id", "position", "conference_id", "account_id", "event_id", "event_type", "form", "url", "failover_url",
    "body", "created_at", "state", "attempts", "next_attempt_at", "last_status", "last_attempt_at",
    "delivered_at", "delivered_to",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM webhook_deliveries"


def _row(d: Delivery) -> tuple[Any, ...]:
    return tuple(getattr(d, c) for c in _COLUMNS)


def _delivery(row: tuple[Any, ...]) -> Delivery:
    fields = dict(zip(_COLUMNS, row))
    fields["body"] = bytes(fields["body"])
    return Delivery(**fields)


class OutboxStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COALESCE(MAX(position), 0) FROM webhook_deliveries").fetchone()
        self._position = int(row[0])
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-outbox")
        self._last: Future[Any] | None = None
        self._closed = False

    # -- plumbing -----------------------------------------------------------------------------

    def _submit(self, fn: Callable[..., T], *args: Any) -> "Future[T]":
        if self._closed:
            raise RuntimeError("webhook outbox is closed")
        fut = self._worker.submit(fn, *args)
        self._last = fut
        return fut

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._submit(fn, *args))

    # -- writes -------------------------------------------------------------------------------

    async def insert(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Persist new deliveries in one transaction; returns them with their ``position``.

        A delivery whose id is already stored (the same event routed twice) is left out.
        """
        return await self._run(self._insert, deliveries)

    def _insert(self, deliveries: list[Delivery]) -> list[Delivery]:
        stored: list[Delivery] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for d in deliveries:
                self._position += 1
                placed = d.replace(position=self._position)
                cur = self._db.execute(
                    f"INSERT OR IGNORE INTO webhook_deliveries({', '.join(_COLUMNS)})"
                    f" VALUES ({', '.join('?' * len(_COLUMNS))})",
                    _row(placed),
                )
                if cur.rowcount:
                    stored.append(placed)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return stored

    def update(self, d: Delivery) -> "Future[None]":
        """Queue a state change of an attempted delivery (FIFO with every other operation)."""
        return self._submit(self._update, d)

    def _update(self, d: Delivery) -> None:
        self._db.execute(
            "UPDATE webhook_deliveries SET state=?, attempts=?, next_attempt_at=?, last_status=?,"
            " last_attempt_at=?, delivered_at=?, delivered_to=?, position=?, created_at=? WHERE id=?",
            (d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_attempt_at, d.delivered_at,
             d.delivered_to, d.position, d.created_at, d.id),
        )

    async def requeue(self, delivery_id: str, conference_id: str, now: float) -> Delivery | None:
        """Make a delivered or dead delivery pending again, at the end of its lane; None if unknown
        (or still pending)."""
        return await self._run(self._requeue, delivery_id, conference_id, now)

    def _requeue(self, delivery_id: str, conference_id: str, now: float) -> Delivery | None:
        row = self._db.execute(_SELECT + " WHERE id=? AND conference_id=?", (delivery_id, conference_id)).fetchone()
        if row is None:
            return None
        d = _delivery(row)
        if d.state == "pending":
            return None
        self._position += 1
        again = d.replace(state="pending", position=self._position, created_at=now, next_attempt_at=now)
        self._update(again)
        return again

    async def purge(self, before: float) -> int:
        """Forget delivered and dead deliveries attempted before ``before`` (unix seconds)."""
        return await self._run(self._purge, before)

    def _purge(self, before: float) -> int:
        cur = self._db.execute(
            "DELETE FROM webhook_deliveries WHERE state IN ('delivered', 'dead')"
            " AND COALESCE(last_attempt_at, created_at) < ?",
            (before,),
        )
        return int(cur.rowcount)

    # -- reads --------------------------------------------------------------------------------

    async def pending(self) -> list[Delivery]:
        return await self._run(lambda: [_delivery(r) for r in self._db.execute(
            _SELECT + " WHERE state='pending' ORDER BY position")])

    async def for_conference(self, conference_id: str, limit: int = 500) -> list[Delivery]:
        """The conference's newest ``limit`` deliveries, oldest first."""
        def read() -> list[Delivery]:
            rows = self._db.execute(
                _SELECT + " WHERE conference_id=? ORDER BY position DESC LIMIT ?", (conference_id, limit)
            ).fetchall()
            return [_delivery(r) for r in reversed(rows)]
        return await self._run(read)

    async def get(self, delivery_id: str, conference_id: str) -> Delivery | None:
        def read() -> Delivery | None:
            row = self._db.execute(_SELECT + " WHERE id=? AND conference_id=?", (delivery_id, conference_id)).fetchone()
            return None if row is None else _delivery(row)
        return await self._run(read)

    async def counts(self) -> dict[str, int]:
        def read() -> dict[str, int]:
            rows = self._db.execute("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state").fetchall()
            return {str(state): int(n) for state, n in rows}
        return await self._run(read)

    def all_rows(self) -> Iterable[Delivery]:
        """Every row, synchronously (tests and tools only: call when nothing else runs)."""
        return [_delivery(r) for r in self._db.execute(_SELECT + " ORDER BY position")]

    async def drained(self) -> None:
        """Wait until every operation asked for so far has run."""
        if self._last is not None:
            await asyncio.wrap_future(self._last)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._worker.shutdown(wait=True)
        self._db.close()
