"""SQLite persistence of conferences and uploaded media metadata, written by one worker thread so the media clock never waits.

``load_all`` runs once at start-up (synchronously). ``put`` only queues an upsert to the worker;
``flush()`` (sync) and ``await drained()`` (async) wait until everything queued so far is on
disk, which the HTTP API does before answering so that a 201 means "stored".
The database is ``<data_dir>/bridge.sqlite3`` in WAL mode (readers never block the writer).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config
from ..control.errors import ControlError
from ..control.model import Conference, Media

if TYPE_CHECKING:
    from ..control.service import ConferenceService

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: media table
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conferences (
    id           TEXT PRIMARY KEY,
    account_id   TEXT,
    dial_in_code TEXT NOT NULL,
    status       TEXT NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conferences_account ON conferences(account_id);
CREATE TABLE IF NOT EXISTS media (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    media_name  TEXT,
    data        TEXT NOT NULL
);
-- NULL names are distinct in SQLite, so only given names must be unique per account.
CREATE UNIQUE INDEX IF NOT EXISTS media_account_name ON media(account_id, media_name);
"""


async def stored(service: ConferenceService) -> None:
    """Wait until the change just made is committed to SQLite (off the event loop); a failed
    write answers 503 in every API, so a client never believes an unsaved change."""
    drained = getattr(service.store, "drained", None)
    if drained is None:
        return
    try:
        await drained()
    except Exception:
        log.exception("storage write failed")
        raise ControlError(503, "storage_unavailable", "the change could not be saved; try again") from None


def database_path(config: Config) -> Path:
    return Path(config.data_dir) / "bridge.sqlite3"


class ConferenceStore:
    """Conference rows keyed by id; each row keeps the full settings as JSON (schema-tolerant)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened here, then used only by the single worker thread (and load_all before any put).
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._last: Future[None] | None = None
        self._closed = False

    @classmethod
    def for_config(cls, config: Config) -> "ConferenceStore":
        return cls(database_path(config))

    def load_all(self) -> list[Conference]:
        rows = self._db.execute("SELECT data FROM conferences ORDER BY rowid").fetchall()
        return [Conference.from_record(json.loads(data)) for (data,) in rows]

    def put(self, conf: Conference) -> None:
        if self._closed:
            raise RuntimeError("conference store is closed")
        row = (conf.id, conf.account_id, conf.dial_in_code, conf.status, json.dumps(conf.to_record()))
        self._last = self._worker.submit(self._write, row)

    def _write(self, row: tuple[str, str | None, str, str, str]) -> None:
        self._db.execute(
            "INSERT INTO conferences(id, account_id, dial_in_code, status, data) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET account_id=excluded.account_id,"
            " dial_in_code=excluded.dial_in_code, status=excluded.status, data=excluded.data",
            row,
        )

    # -- media metadata (the files themselves are the HTTP adapter's business) --

    def load_media(self) -> list[Media]:
        rows = self._db.execute("SELECT data FROM media ORDER BY rowid").fetchall()
        return [Media.from_record(json.loads(data)) for (data,) in rows]

    def put_media(self, media: Media) -> None:
        if self._closed:
            raise RuntimeError("conference store is closed")
        row = (media.id, media.account_id, media.media_name, json.dumps(media.to_record()))
        self._last = self._worker.submit(self._write_media, row)

    def delete_media(self, media_id: str) -> None:
        if self._closed:
            raise RuntimeError("conference store is closed")
        self._last = self._worker.submit(self._delete_media, media_id)

    def _write_media(self, row: tuple[str, str, str | None, str]) -> None:
        self._db.execute(
            "INSERT INTO media(id, account_id, media_name, data) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET account_id=excluded.account_id,"
            " media_name=excluded.media_name, data=excluded.data",
            row,
        )

    def _delete_media(self, media_id: str) -> None:
        self._db.execute("DELETE FROM media WHERE id = ?", (media_id,))

    def flush(self) -> None:
        """Block until every queued write is committed (raises if the last one failed)."""
        if self._last is not None:
            self._last.result()

    async def drained(self) -> None:
        """Wait, without blocking the event loop, until every queued write is committed."""
        last = self._last
        if last is not None:
            await asyncio.wrap_future(last)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._worker.shutdown(wait=True)
        self._db.close()
