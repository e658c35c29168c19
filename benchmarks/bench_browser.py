"""What browser participants cost the bridge: CPU and threads of the bridge process.

Starts a bridge on loopback, joins N headless Chromium pages (Debian's chromium, fake
microphone playing a tone) to one 16 kHz room, waits for the calls to settle, then reads the
bridge's CPU time (/proc/<pid>/stat) over a window and its thread count (/proc/<pid>/status).

Run: python benchmarks/bench_browser.py [N ...]   (default 0 1 4; about 20 s per N)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.e2e.peers import audio  # noqa: E402
from tests.support.bridge_proc import BridgeProcess, default_rooms  # noqa: E402

WINDOW_S = 10.0
HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ      # utime + stime


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def measure(n: int, work: Path, port_base: int) -> tuple[float, int]:
    bridge = BridgeProcess(work / f"b{n}", port_base, port_base + 1, (port_base + 10, port_base + 49),
                           default_rooms(), extra={"log_level": "info"})
    (work / f"b{n}").mkdir()
    bridge.start()
    try:
        _, body = bridge.api("GET", "/v2/conferences")
        url = next(c for c in body["conferences"] if c["name"] == "room1")["join_url"]
        wav = audio.tone_wav(work / "tone.wav", 880.0, 60.0, 48000, 1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox"])
            for i in range(n):
                page = browser.new_page()
                page.goto(url)
                page.fill("#name", f"bench{i}")
                page.click("#join")
                page.wait_for_selector("#call:not([hidden])", timeout=20000)
            time.sleep(3.0)
            assert bridge.proc is not None
            pid = bridge.proc.pid
            c0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(WINDOW_S)
            cpu = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
            count = threads(pid)
            browser.close()
        return cpu, count
    finally:
        bridge.stop()


def main() -> None:
    counts = [int(a) for a in sys.argv[1:]] or [0, 1, 4]
    with tempfile.TemporaryDirectory() as tmp:
        for i, n in enumerate(counts):
            cpu, count = measure(n, Path(tmp), 45000 + 100 * i)
            print(f"{n} browser participant(s): bridge CPU {cpu * 100:.1f} % of one core, {count} threads")


if __name__ == "__main__":
    main()
