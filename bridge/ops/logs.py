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
from collections import OrderedDict
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
    """Completes the call ids of a record: a participant or conference id among the arguments
    names the call; its Call-ID comes from an earlier line that carried it (remembered for the
    last ``REMEMBER`` participants, so lines after a call ended still get it) or the live legs."""

    REMEMBER = 4096

    def __init__(self) -> None:
        super().__init__()
        self.lookup: LegLookup | None = None   # set once the call core exists
        self._known: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        pid = getattr(record, "participant_id", None)
        conf = getattr(record, "conference_id", None)
        if not pid and isinstance(record.args, tuple):
            for arg in record.args:
                if isinstance(arg, str) and arg.startswith("part_"):
                    pid = arg
                    break
        if not conf and isinstance(record.args, tuple):
            conf = next((a for a in record.args if isinstance(a, str) and a.startswith("conf_")), None)
        if pid:
            record.participant_id = pid
            call_id = getattr(record, "call_id", None)
            if not call_id:
                found = self._known.get(pid) or (self.lookup(pid) if self.lookup is not None else None)
                if found is not None:
                    conf = conf or found[0]
                    call_id = record.call_id = found[1]
            if call_id:
                self._known[pid] = (conf or "", call_id)
                self._known.move_to_end(pid)
                if len(self._known) > self.REMEMBER:
                    self._known.popitem(last=False)
        if conf:
            record.conference_id = conf
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
