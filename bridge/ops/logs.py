"""Log output: the classic text lines, or JSON lines (``log_format: json``, ``--log-format json``).

A JSON line has ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and, on every
line about a call, ``conference_id``, ``participant_id`` and ``call_id`` (the SIP Call-ID).
The call core passes them as ``extra=`` where it holds the leg; ``CallContextFilter`` fills in
the rest from a participant or conference id among the message's arguments, looking the call up
in the live legs. PINs never reach a log line: the IVR logs key presses as ``*``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_KEYS = ("conference_id", "participant_id", "call_id")
# participant id -> (conference id, SIP Call-ID), or None when no live leg has that id
LegLookup = Callable[[str], tuple[str, str] | None]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class CallContextFilter(logging.Filter):
    """Adds the call's ids to records that name a participant or conference but carry no ids."""

    def __init__(self) -> None:
        super().__init__()
        self.lookup: LegLookup | None = None   # set once the call core exists

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "participant_id", None) or not isinstance(record.args, tuple):
            return True
        for arg in record.args:
            if not isinstance(arg, str):
                continue
            if arg.startswith("part_"):
                record.participant_id = arg
                found = self.lookup(arg) if self.lookup is not None else None
                if found is not None:
                    conf_id, call_id = found
                    if conf_id and not getattr(record, "conference_id", None):
                        record.conference_id = conf_id
                    record.call_id = call_id
            elif arg.startswith("conf_") and not getattr(record, "conference_id", None):
                record.conference_id = arg
        return True


def setup_logging(level: str, fmt: str) -> CallContextFilter:
    """Configure the root logger; returns the filter whose ``lookup`` the app sets."""
    handler = logging.StreamHandler()
    context = CallContextFilter()
    handler.addFilter(context)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return context


def context_filter() -> CallContextFilter | None:
    """The filter ``setup_logging`` installed, if any (the app wires its lookup)."""
    for handler in logging.getLogger().handlers:
        for f in handler.filters:
            if isinstance(f, CallContextFilter):
                return f
    return None
