"""Project-wide checks: the sans-IO core stays pure, the code stays typed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE_DIRS = ["bridge/sip", "bridge/sdp", "bridge/rtp", "bridge/media", "bridge/control", "codecs"]
FORBIDDEN = {"asyncio", "socket", "threading", "time", "selectors", "subprocess"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_do_no_io() -> None:
    offenders = {}
    for d in PURE_DIRS:
        for path in sorted((ROOT / d).glob("*.py")):
            bad = _imports(path) & FORBIDDEN
            if bad:
                offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}, f"core modules must stay sans-IO: {offenders}"


def test_stdlib_codecs_not_shadowed() -> None:
    import codecs

    import bridge_codecs

    assert Path(codecs.__file__).parent != ROOT / "codecs"
    assert Path(bridge_codecs.__file__).parent == ROOT / "codecs"


def test_mypy_clean(tmp_path: Path) -> None:
    # mypy cannot follow setuptools' editable-install mapping of codecs/ to
    # bridge_codecs, so present both packages under their import names.
    (tmp_path / "bridge").symlink_to(ROOT / "bridge")
    (tmp_path / "bridge_codecs").symlink_to(ROOT / "codecs")
    # Checked as the running interpreter's version (pyproject says 3.11, the oldest supported), so
    # scripts/test-pythons.sh proves the typing on every supported Python's standard library.
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--python-version", version,
         "--cache-dir", str(tmp_path / ".mypy_cache"), "-p", "bridge", "-p", "bridge_codecs"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_unused_imports_or_undefined_names() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "F,E9",
         "bridge", "codecs", "tests", "benchmarks", "scripts"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
