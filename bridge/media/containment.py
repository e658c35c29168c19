"""Fault containment for per-leg calls in a room's hot loops.

One leg's port raising must cost that leg, never the tick of the room (or of every room).
``call_each`` calls a list of per-leg callables in a plain loop inside one ``try`` (no
per-call ``try``; measured about 20-30% slower than a list comprehension, some 20 µs per
1,000 calls, which cannot keep its partial results) and, when one raises, records its
position and carries on with the next: the loop resumes on the same iterator, so nothing
runs twice and every other leg's result is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

FAILED: Any = None      # placeholder for a failed call's result
NO_FAILURES: tuple[tuple[int, Exception], ...] = ()


def call_each(funcs: Sequence[Callable[..., Any]], *args: Any
              ) -> tuple[list[Any], Sequence[tuple[int, Exception]]]:
    """``([f(*args) for f in funcs], failures)``: ``FAILED`` in place of each call that raised
    an ``Exception``, and ``(index, exception)`` for it in ``failures`` (usually empty)."""
    out: list[Any] = []
    append = out.append
    it = iter(funcs)
    failures: list[tuple[int, Exception]] = []
    while True:
        try:
            if args:
                for f in it:
                    append(f(*args))
            else:
                for f in it:
                    append(f())
            return out, failures or NO_FAILURES
        except Exception as exc:   # noqa: BLE001 - containment is the point
            failures.append((len(out), exc))
            append(FAILED)
