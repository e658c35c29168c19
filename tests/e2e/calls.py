"""Shared helpers for end-to-end tests: baresip participants in bridge rooms."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.peers import audio
from tests.e2e.peers.baresip import Baresip, codec_wav_format
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess


@dataclass
class Participant:
    name: str
    codecs: str
    freq: float | None  # tone it plays; None = silence
    phone: Baresip

    def heard(self) -> tuple[audio.Samples, int]:
        return self.phone.heard(timeout=10.0)


@contextlib.contextmanager
def participants(
    tmp_path: Path,
    ports: PortAllocator,
    specs: list[tuple[str, str, float | None]],
    seconds: float = 30.0,
) -> Iterator[list[Participant]]:
    """Start one baresip per (name, codecs, tone frequency); always stop them all."""
    started: list[Participant] = []
    try:
        for name, codecs, freq in specs:
            rate, channels = codec_wav_format(codecs)
            mic = None
            if freq is not None:
                mic = audio.tone_wav(tmp_path / f"{name}-{int(freq)}.wav", freq, seconds, rate, channels)
            phone = Baresip(name, tmp_path, ports.baresip(), codecs=codecs, mic_wav=mic, mic_seconds=seconds)
            phone.start()
            started.append(Participant(name, codecs, freq, phone))
        yield started
    finally:
        for p in started:
            p.phone.stop()


def dial_all(bridge: BridgeProcess, people: list[Participant], room: str, transport: str = "udp") -> None:
    suffix = ";transport=tcp" if transport == "tcp" else ""
    for p in people:
        p.phone.dial(f"sip:{room}@127.0.0.1:{bridge.sip_port}{suffix}")
    for p in people:
        p.phone.wait_event("CALL_ESTABLISHED", timeout=10)


def hang_up_all(people: list[Participant]) -> None:
    for p in people:
        p.phone.hangup()
    for p in people:
        p.phone.wait_event("CALL_CLOSED", timeout=10)


def talk(seconds: float) -> None:
    time.sleep(seconds)


def heard_alone_after_prompt(bridge: BridgeProcess, tmp_path: Path, ports: PortAllocator,
                             dial: str) -> tuple[audio.Samples, int]:
    """A lone caller dials ``dial``, stays 3 s past the "you are the only person" prompt and hangs
    up; what they heard after the prompt (hold music, if any)."""
    from bridge.media.prompts import prompt_path

    samples_alone, alone_rate = audio.read_wav(Path(prompt_path("alone")))
    prompt_s = len(samples_alone) / alone_rate
    with participants(tmp_path, ports, [("lonely", "PCMU", None)]) as people:
        dial_all(bridge, people, dial)
        time.sleep(prompt_s + 3.0)
        people[0].phone.hangup()
        people[0].phone.wait_event("CALL_CLOSED")
        heard, rate = people[0].heard()
    return audio.segment(heard, rate, prompt_s + 0.5, len(heard) / rate - 0.3), rate
