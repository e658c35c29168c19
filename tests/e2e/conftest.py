from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import launch_chromium


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium whose microphone plays ``tests.e2e.browser.BROWSER_HZ``."""
    with launch_chromium(tmp_path) as browser:
        yield browser
