"""Shared by the headless-Chromium tests: the browser with a fake microphone playing a tone,
and the join page and participant listing as those tests use them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.peers import audio
from tests.support.bridge_proc import BridgeProcess

CHROMIUM = "/usr/bin/chromium"
BROWSER_HZ = 880.0

# Collects the remote <audio> element's stream for ``ms`` milliseconds in the page.
CAPTURE_JS = """async (ms) => {
  const stream = document.getElementById("remote").srcObject;
  const ctx = new AudioContext();
  const src = ctx.createMediaStreamSource(stream);
  const proc = ctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  proc.onaudioprocess = (e) => chunks.push(Array.from(e.inputBuffer.getChannelData(0)));
  src.connect(proc); proc.connect(ctx.destination);
  await new Promise((r) => setTimeout(r, ms));
  proc.disconnect(); src.disconnect();
  const rate = ctx.sampleRate;
  await ctx.close();
  return {rate, samples: chunks.flat()};
}"""


@contextmanager
def launch_chromium(tmp_path: Path, tone_hz: float = BROWSER_HZ, seconds: float = 30.0) -> Iterator[Any]:
    """A headless Chromium whose microphone plays ``tone_hz``; Playwright drives it."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is not installed; run scripts/test.sh (it installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    wav = audio.tone_wav(tmp_path / "mic.wav", tone_hz, seconds, 48000, 1)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required",
            "--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def conference(bridge: BridgeProcess, name: str) -> dict[str, Any]:
    status, body = bridge.api("GET", "/v2/conferences")
    assert status == 200
    return next(c for c in body["conferences"] if c["name"] == name)


def listing(bridge: BridgeProcess, conf_id: str) -> list[dict[str, Any]]:
    status, body = bridge.api("GET", f"/v2/conferences/{conf_id}/participants")
    assert status == 200
    return [p for p in body["participants"] if p["status"] == "connected"]


def join(page: Any, url: str, name: str, pin: str | None = None) -> None:
    """By label and keyboard, as a screen-reader user would: the fields are found by their
    accessible names and Enter submits."""
    page.goto(url)
    page.get_by_label("Your name").fill(name)
    if pin is not None:
        page.get_by_label("PIN", exact=True).fill(pin)
    page.keyboard.press("Enter")


def wait_listed(bridge: BridgeProcess, conf_id: str, name: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in listing(bridge, conf_id) if p["name"] == name]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"{name} never listed in {conf_id}")


def page_heard(page: Any, ms: int) -> tuple[np.ndarray, int]:
    got = page.evaluate(CAPTURE_JS, ms)
    return np.asarray(got["samples"], dtype=np.float64), int(got["rate"])
