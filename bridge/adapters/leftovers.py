"""Temporary files a crash left in the data directory, removed at start.

An upload is written as ``media/.<id>.upload<ext>`` and renamed once it decodes; a fetched
``audio_url`` streams into ``media-cache/<name>.part`` and is renamed once complete. Both are
deleted on every error path, but a ``kill -9`` (or power loss) mid-write leaves them behind, and
nothing would ever read or delete them again. Recording ``.part`` tracks are NOT touched here:
they are finished into files at start (bridge/recording), because they hold a meeting.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

# (folder under data_dir, glob) of files that are only ever temporary.
TEMPORARY = (("media", ".*.upload*"), ("media-cache", "*.part"))


def remove_leftover_temp_files(data_dir: Path) -> list[Path]:
    """Delete the temporary files of interrupted uploads and fetches; the paths removed."""
    removed: list[Path] = []
    for folder, pattern in TEMPORARY:
        for path in sorted((data_dir / folder).glob(pattern)):
            if path.is_file() and not path.is_symlink():
                try:
                    path.unlink()
                except OSError as err:
                    log.warning("cannot remove leftover temporary file %s: %s", path, err)
                    continue
                removed.append(path)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted upload or fetch", len(removed))
    return removed
