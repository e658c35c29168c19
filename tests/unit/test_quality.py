"""Project-wide checks: the sans-IO core stays pure, the code stays typed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE_DIRS = ["bridge/sip", "bridge/sdp", "bridge/rtp", "bridge/media", "bridge/control", "bridge/call",
             "bridge/webhooks", "bridge/recording", "bridge/vendors", "bridge/vendors/freeclimb",
             "bridge/vendors/telnyx", "codecs"]
FORBIDDEN = {"asyncio", "socket", "threading", "time", "selectors", "subprocess",
             "os", "sqlite3", "aiohttp", "select", "av"}
# The exceptions, each with its reason. Anything else in a core module is a failure.
ALLOWED = {
    # PyAV is the codec library: it encodes and decodes bytes in memory, no files or sockets.
    "codecs/g722.py": {"av"},
    "codecs/opus.py": {"av"},
    "codecs/pyav_frames.py": {"av"},
    # decode_file opens prompt/music files; only AudioAssets calls it, off the media tick.
    "bridge/media/playback.py": {"os", "av"},
    # Path arithmetic for uploaded media (os.path.join/abspath); the store does the file I/O.
    "bridge/control/service.py": {"os"},
}


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
            rel = str(path.relative_to(ROOT))
            bad = _imports(path) & FORBIDDEN - ALLOWED.get(rel, set())
            if bad:
                offenders[rel] = sorted(bad)
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


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "codecs":
        parts[0] = "bridge_codecs"
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_imports(path: Path, module: str, modules: set[str]) -> set[str]:
    """Modules of this project imported by ``path``, outside ``if TYPE_CHECKING`` blocks
    (``from pkg import sub`` imports the submodule, not a cycle through ``pkg``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            subs = {f"{base}.{a.name}" for a in node.names} & modules
            found.update(subs if subs else {base})
    return {m for m in found if m.split(".")[0] in ("bridge", "bridge_codecs")}


def test_no_import_cycles() -> None:
    paths = [*ROOT.glob("bridge/**/*.py"), *ROOT.glob("codecs/**/*.py")]
    modules = {_module_name(p): p for p in paths}
    names = set(modules)
    graph = {m: {d for d in _project_imports(p, m, names) if d in modules and d != m} for m, p in modules.items()}
    # Importing a package runs its __init__, not its submodules: only module-to-module edges count.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d] if d in stack else [m, d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_no_module_over_600_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for p in [*ROOT.glob("bridge/**/*.py"), *ROOT.glob("codecs/**/*.py")]}
    over = {p: n for p, n in sizes.items() if n > 600}
    assert over == {}, over
