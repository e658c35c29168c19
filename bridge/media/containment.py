"""Fault containment for per-leg calls in a room's hot loops.

One leg's port raising must cost that leg, never the tick of the room (or of every room).
``call_each`` runs a list of per-leg callables through ``map`` (as fast as a list
comprehension in the normal case: no per-call ``try``) and, if one raises, reports its
position and carries on with the rest. ``list.extend`` keeps what was appended before the
exception and ``map`` has already consumed the failing element, so no call runs twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from operator import call
from typing import Any

FAILED: Any = None      # placeholder for a failed call's result


def call_each(funcs: Sequence[Callable[..., Any]], on_error: Callable[[int, BaseException], None],
              *args: Any) -> list[Any]:
    """``[f(*args) for f in funcs]``, with ``FAILED`` (and an ``on_error(index, exc)``) for
    each call that raised an ``Exception``."""
    it = iter(funcs)
    out: list[Any] = []
    extra = [repeat(a) for a in args]
    while True:
        try:
            out.extend(map(call, it, *extra))
            return out
        except Exception as exc:   # noqa: BLE001 - containment is the point
            on_error(len(out), exc)
            out.append(FAILED)
