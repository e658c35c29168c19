"""Levels (dBov on probe samples), talk detection hysteresis, dominant speaker."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.media.levels import (FLOOR_DBOV, DominantSpeaker, TalkConfig, TalkDetector, level_dbov,
                                 levels_dbov, probe_indices)


def tone(freq: float, rate: int, samples: int, amp: float = 32767.0) -> np.ndarray:
    t = np.arange(samples) / rate
    return np.rint(amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_full_scale_sine_is_minus_three_dbov_and_silence_is_floor() -> None:
    assert level_dbov(tone(1000, 8000, 160)) == pytest.approx(-3.01, abs=0.05)
    assert level_dbov(np.zeros(160, np.int16)) == FLOOR_DBOV


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
@pytest.mark.parametrize("freq", [250.0, 1000.0, 2000.0, 3000.0, 4000.0 / 3])
def test_probe_estimate_does_not_alias_with_tones(rate: int, freq: float) -> None:
    samples = rate // 50
    frame = tone(freq, rate, samples, amp=10000).reshape(1, -1)
    full = float(levels_dbov(frame)[0])
    probed = float(levels_dbov(frame, probe_indices(samples))[0])
    assert probed == pytest.approx(full, abs=2.0)


def test_probe_indices_cover_the_frame() -> None:
    idx = probe_indices(960)
    assert len(idx) == 64 and idx.min() < 15 and idx.max() > 945
    assert np.all(np.diff(idx) > 0)
    assert probe_indices(40).tolist() == list(range(40))


def run(det: TalkDetector, levels: list[float]) -> tuple[list[int], list[int]]:
    starts, stops = [], []
    for i, lev in enumerate(levels):
        s, e = det.update(np.array([lev], np.float32), 1)
        starts += [i] * len(s)
        stops += [i] * len(e)
    return starts, stops


def test_burst_starts_after_attack_and_stops_after_hangover() -> None:
    cfg = TalkConfig()
    det = TalkDetector(1, cfg)
    levels = [-70.0] * 5 + [-20.0] * 20 + [-70.0] * 40
    starts, stops = run(det, levels)
    assert starts == [5 + cfg.start_frames - 1]
    assert stops == [25 + cfg.stop_frames - 1]


def test_noisy_boundary_does_not_chatter() -> None:
    det = TalkDetector(1, TalkConfig())
    rng = np.random.default_rng(1)
    # Hovers around the start threshold (-40) but never below stop (-48) for long.
    levels = list(-40.0 + rng.uniform(-4, 4, 500))
    starts, stops = run(det, levels)
    assert len(starts) == 1 and stops == []


def test_short_clicks_do_not_start_talking() -> None:
    det = TalkDetector(1, TalkConfig())
    levels = ([-10.0, -70.0, -70.0] * 30)
    starts, _ = run(det, levels)
    assert starts == []


def test_gate_opens_at_once_and_closes_after_hang() -> None:
    cfg = TalkConfig()
    det = TalkDetector(1, cfg)
    det.update(np.array([-45.0], np.float32), 1)
    assert det.gate_open[0]
    for _ in range(cfg.gate_hang - 1):
        det.update(np.array([-90.0], np.float32), 1)
        assert det.gate_open[0]
    det.update(np.array([-90.0], np.float32), 1)
    assert not det.gate_open[0]


def test_gate_is_held_inside_the_hysteresis_band() -> None:
    cfg = TalkConfig()
    det = TalkDetector(1, cfg)
    det.update(np.array([-45.0], np.float32), 1)
    for _ in range(3 * cfg.gate_hang):
        det.update(np.array([(cfg.gate_open_dbov + cfg.gate_close_dbov) / 2], np.float32), 1)
    assert det.gate_open[0]


def test_dominant_speaker_hysteresis() -> None:
    cfg = TalkConfig()
    det = TalkDetector(2, cfg)
    dom = DominantSpeaker(cfg)
    changes: list[int | None] = []

    def step(a: float, b: float) -> None:
        det.update(np.array([a, b], np.float32), 2)
        if dom.update(det, 2):
            changes.append(dom.current)

    for _ in range(20):
        step(-20, -70)
    assert changes == [0]
    for _ in range(40):
        step(-20, -18)          # both talking, B only 2 dB louder: no switch
    assert changes == [0]
    for _ in range(cfg.dominant_frames + 10):
        step(-30, -15)          # B clearly louder for long enough
    assert changes == [0, 1]
    assert dom.forget(1) and dom.current is None


@pytest.mark.parametrize("config", [TalkConfig(), TalkConfig(gate_open_dbov=-30.0, gate_close_dbov=-60.0, start_dbov=-45.0,
                                                            start_frames=1, gate_hang=3)])
def test_may_open_covers_every_gate_that_update_leaves_open(config: TalkConfig) -> None:
    """may_open (decided before update, to skip rendering rows that cannot be mixed) must hold
    for every slot whose gate is open after update, over levels wandering across every threshold."""
    rng = np.random.default_rng(5)
    det = TalkDetector(64, config)
    slots = np.arange(64)
    levels = np.full(64, -90.0, np.float32)
    tight = 0
    for _ in range(400):
        levels = np.clip(levels + rng.normal(0, 6, 64), -127, 0).astype(np.float32)
        may = det.may_open(slots, levels)
        det.update(levels, 64)
        assert not (det.gate_open & ~may).any()
        tight += int((~may).sum())
    assert tight > 1000          # and it does rule many out


@pytest.mark.parametrize("config", [TalkConfig(), TalkConfig(start_frames=0)])
def test_open_at_silence_is_may_open_at_the_floor(config: TalkConfig) -> None:
    """The per-slot form (a room's sleeping Opus legs ask it) and the array form (an Opus receive
    lane's rows) agree with may_open for a silent frame, whatever the gate and talk state the
    wandering levels left."""
    rng = np.random.default_rng(6)
    det = TalkDetector(32, config)
    slots = np.arange(32)
    floor = np.full(32, FLOOR_DBOV, np.float32)
    levels = np.full(32, -90.0, np.float32)
    seen = set()
    for _ in range(300):
        expected = det.may_open(slots, floor).tolist()
        assert [det.open_at_silence(s) for s in range(32)] == expected
        assert det.opens_at_silence(slots[::-1]).tolist() == expected[::-1]
        seen.update(expected)
        levels = np.clip(levels + rng.normal(0, 6, 32), -127, 0).astype(np.float32)
        det.update(levels, 32)
    assert seen == ({True} if config.start_frames <= 0 else {True, False})
