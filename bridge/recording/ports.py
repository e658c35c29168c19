"""What the pure recording controller needs from the world: something that writes a recording."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .model import RecordingInfo
from .tap import Tap


class Recorder(Protocol):
    """Writes recordings off the media clock (``bridge.recording.adapters.files.FileRecorder``).

    ``begin`` returns at once; the writer drains ``tap`` from its own thread until the tap is
    closed. ``info`` is owned by the event loop (the writer copies what it needs at
    ``begin``). ``finished`` is called back on the event loop exactly once: with the saved
    recording's info, or with ``state == "failed"`` and ``error`` set."""

    def begin(self, info: RecordingInfo, tap: Tap, finished: Callable[[RecordingInfo], None]) -> None: ...
