"""In-band DTMF detection: every key, timing rules, G.711, and no talk-off."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bridge.media.dtmf_detect import InbandDtmfDetector, dtmf_pair
from bridge.media.prompts import PROMPT_DIR
from bridge.media.tones import ToneStep, entry_tone, exit_tone, tone_sequence

DIGITS = "0123456789*#ABCD"
Pcm = npt.NDArray[np.int16]


def render(steps: list[ToneStep], rate: int, dbov: float = -20.0) -> Pcm:
    src = tone_sequence(steps, dbov=dbov)
    return src.read(rate * sum(ms for _, ms in steps) // 1000, rate)  # type: ignore[return-value]


def detect(pcm: Pcm, rate: int, frame: int | None = None) -> str:
    det = InbandDtmfDetector(rate)
    step = frame or rate // 50
    return "".join(d for i in range(0, len(pcm), step) for d in det.process(pcm[i:i + step]))


def presses(keys: str, on_ms: int = 80, off_ms: int = 80) -> list[ToneStep]:
    steps: list[ToneStep] = [(0, 30)]
    for k in keys:
        steps += [(dtmf_pair(k), on_ms), (0, off_ms)]
    return steps


@pytest.mark.parametrize("rate", (8000, 16000))
@pytest.mark.parametrize("dbov", (-10.0, -20.0, -30.0))
def test_every_key_once_per_press(rate: int, dbov: float) -> None:
    assert detect(render(presses(DIGITS), rate, dbov), rate) == DIGITS


@pytest.mark.parametrize("rate", (8000, 16000))
def test_long_press_reported_once_and_chunking_does_not_matter(rate: int) -> None:
    pcm = render(presses("5", on_ms=1000), rate)
    for frame in (rate // 50, 37, 1001, len(pcm)):
        assert detect(pcm, rate, frame) == "5"


@pytest.mark.parametrize("rate", (8000, 16000))
def test_forty_ms_accepted_at_any_alignment_twenty_ms_rejected(rate: int) -> None:
    for lead_ms in range(20, 40, 1):
        assert detect(render([(0, lead_ms), (dtmf_pair("7"), 40), (0, 100)], rate), rate) == "7"
        assert detect(render([(0, lead_ms), (dtmf_pair("7"), 20), (0, 100)], rate), rate) == ""


def test_same_key_twice_after_a_gap_gives_two_digits_but_a_dropout_does_not() -> None:
    rate = 8000
    two = [(0, 20), (dtmf_pair("1"), 60), (0, 40), (dtmf_pair("1"), 60), (0, 60)]
    assert detect(render(two, rate), rate) == "11"   # type: ignore[arg-type]
    dropout = [(0, 20), (dtmf_pair("1"), 100), (0, 5), (dtmf_pair("1"), 100), (0, 60)]
    assert detect(render(dropout, rate), rate) == "1"  # type: ignore[arg-type]


def test_key_changes_without_pause_give_both_keys() -> None:
    assert detect(render([(0, 20), (dtmf_pair("4"), 80), (dtmf_pair("9"), 80), (0, 60)], 8000),
                  8000) == "49"


def two_tone(rate: int, low: float, high: float, low_dbov: float, high_dbov: float, ms: int = 200) -> Pcm:
    t = np.arange(rate * ms // 1000) / rate
    amp = lambda dbov: 32767 * 10 ** (dbov / 20) * np.sqrt(2)
    x = amp(low_dbov) * np.sin(2 * np.pi * low * t) + amp(high_dbov) * np.sin(2 * np.pi * high * t)
    return np.concatenate((np.zeros(160), x, np.zeros(800))).astype(np.int16)


def test_twist_limits() -> None:
    low, high = dtmf_pair("8")
    assert detect(two_tone(8000, low, high, -15, -21), 8000) == "8"    # normal twist 6 dB: ok
    assert detect(two_tone(8000, low, high, -15, -27), 8000) == ""     # 12 dB: rejected
    assert detect(two_tone(8000, low, high, -18, -15), 8000) == "8"    # reverse twist 3 dB: ok
    assert detect(two_tone(8000, low, high, -24, -15), 8000) == ""     # reverse 9 dB: rejected


def test_too_quiet_is_ignored() -> None:
    low, high = dtmf_pair("2")
    assert detect(two_tone(8000, low, high, -45, -45), 8000) == ""


@pytest.mark.parametrize("codec", ("PCMU", "PCMA"))
def test_g711_round_trip(codec: str) -> None:
    g711 = pytest.importorskip("bridge_codecs.g711")
    enc, dec = g711.G711Encoder(codec), g711.G711Decoder(codec)
    pcm = render(presses(DIGITS, on_ms=60, off_ms=60), 8000, dbov=-25.0)
    pcm = np.concatenate((pcm, np.zeros((-len(pcm)) % 160, dtype=np.int16)))
    through = np.concatenate([dec.decode(enc.encode(f)) for f in pcm.reshape(-1, 160)])
    assert detect(through, 8000) == DIGITS


def test_single_tones_and_conference_beeps_do_not_trigger() -> None:
    rate = 8000
    for f in (697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0, 1000.0, 440.0):
        assert detect(render([(f, 500)], rate, dbov=-10.0), rate) == ""
    # Two tones from the same group, and the bridge's own beeps.
    assert detect(render([((697.0, 852.0), 300)], rate), rate) == ""
    assert detect(render([((1209.0, 1477.0), 300)], rate), rate) == ""
    for beep in (entry_tone(-6.0), exit_tone(-6.0)):
        frames = [beep.read(160, rate) for _ in range(12)]
        assert detect(np.concatenate([f for f in frames if f is not None]), rate) == ""


@pytest.mark.parametrize("rate", (8000, 16000))
def test_noise_does_not_trigger(rate: int) -> None:
    rng = np.random.default_rng(7)
    for dbov in (-10.0, -30.0):
        noise = rng.standard_normal(rate * 3) * 32767 * 10 ** (dbov / 20)
        assert detect(np.clip(noise, -32768, 32767).astype(np.int16), rate) == ""


def read_wav(path: Path) -> Pcm:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def test_speech_does_not_trigger() -> None:
    """Talk-off: every recorded prompt (real synthetic speech), at 16 kHz and decimated to 8 kHz."""
    files = sorted(PROMPT_DIR.glob("*.wav"))
    assert len(files) >= 20
    speech = np.concatenate([read_wav(p) for p in files])
    assert detect(speech, 16000) == ""
    assert detect(speech[::2].copy(), 8000) == ""                 # crude decimation: still speech-like


def test_vowel_like_harmonics_do_not_trigger() -> None:
    """A glottal-pulse-like harmonic series (pitch glide) with formant-ish weighting."""
    rate = 8000
    t = np.arange(rate * 2) / rate
    f0 = 90 + 60 * t                                             # 90 -> 210 Hz glide
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = np.zeros_like(t)
    for k in range(1, 30):
        fk = k * f0
        weight = np.exp(-((fk - 700) / 250) ** 2) + 0.7 * np.exp(-((fk - 1300) / 300) ** 2) + 0.05
        x += weight * np.sin(k * phase) * (fk < 3800)
    x *= 8000 / np.abs(x).max()
    assert detect(x.astype(np.int16), rate) == ""


def test_reset_and_bad_rate() -> None:
    with pytest.raises(ValueError):
        InbandDtmfDetector(4000)
    det = InbandDtmfDetector(8000)
    pcm = render(presses("3", on_ms=200), 8000)
    assert det.process(pcm[:1200]) == ["3"]
    assert det.process(pcm[1200:1400]) == []       # same press continues: not reported again
    det.reset()                                    # forgets the press: its remaining 55 ms is a new one
    assert det.process(pcm[1400:]) == ["3"]
