"""Property-based fuzzing of every route from /openapi.json with schemathesis: no 5xx, ever.

Bounded: a fixed seed, 10 examples per operation and no stateful phase keep it well under a minute.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from bridge.control.openapi import openapi_document

from .conftest import TOKEN_A, Env


@pytest.mark.timeout(120)
async def test_schemathesis_finds_no_server_error(env: Env) -> None:
    # Beside this Python first: a virtualenv's scripts are there even when it is not activated.
    here = str(Path(sys.executable).parent)
    cli = shutil.which("schemathesis", path=here) or shutil.which("schemathesis") or shutil.which("st")
    if cli is None:
        pytest.fail("schemathesis is not installed (pip install schemathesis)")
    # Live participants and a conference so that participant routes have something to act on.
    env.live.add("conf_demo", "part_1")
    await env.call("POST", "/v2/conferences", json={"name": "fuzz target"})
    proc = await asyncio.create_subprocess_exec(
        cli, "run", f"{env.base}/openapi.json",
        "--checks", "not_a_server_error",
        "-H", f"X-Auth-Token: {TOKEN_A}",
        "--max-examples", "10",
        "--phases", "examples,coverage,fuzzing",
        "--seed", "1",
        "--workers", "1",
        "--max-failures", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=110)
    text = out.decode("utf-8", "replace")
    sys.stdout.write(text[-4000:])
    assert proc.returncode == 0, text[-4000:]
    # Every route was exercised (schemathesis leaves out the schema's own /openapi.json).
    paths = openapi_document()["paths"]
    operations = sum(len(methods) for path, methods in paths.items() if path != "/openapi.json")
    assert f"Tested: {operations}" in text
