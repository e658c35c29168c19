"""Waiting for an ``asyncio.Event`` with a timeout, in a way a cancellation always ends.

Not ``asyncio.wait_for(event.wait(), timeout)``: on Python 3.11 it swallows a cancellation that
arrives in the same loop iteration as the event being set (CPython gh-86296, fixed in 3.12). A
worker loop cancelled at shutdown, just as the shutdown's own events wake it, then never ends
and the process hangs on exit. ``asyncio.timeout`` does not have that flaw.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set (True) or ``timeout`` seconds pass (False; None: no limit)."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
