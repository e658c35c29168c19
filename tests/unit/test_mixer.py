"""Mixer: mix-minus against a naive per-listener reference, top-K, mute, gains, limiter."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.media.mixer import LIMIT_KNEE, Mixer, db_to_gain, limit


def make(n: int, rate: int = 8000, k: int = 0) -> Mixer:
    m = Mixer(rate, max_talkers=k, capacity=4)
    for _ in range(n):
        m.add()
    return m


def naive(inputs: np.ndarray, contributors: list[int], listener: int, gains: np.ndarray) -> np.ndarray:
    acc = np.zeros(inputs.shape[1], np.int64)
    for j in contributors:
        if j != listener:
            acc += np.clip(np.rint(inputs[j].astype(np.float64) * gains[j]), -32768, 32767).astype(np.int64)
    return limit(acc.astype(np.int32))


@pytest.mark.parametrize("seed", range(5))
def test_mix_minus_equals_naive_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 12
    m = make(n)
    data = rng.integers(-12000, 12000, (n, m.frame_samples)).astype(np.int16)
    m.inputs[:n] = data
    m.present[:n] = True
    m.eligible[:n] = True
    report = m.mix()
    assert report.contributors.tolist() == list(range(n))
    gains = np.ones(n)
    for i in range(n):
        np.testing.assert_array_equal(m.render(i), naive(data, list(range(n)), i, gains))
    np.testing.assert_array_equal(m.render(None), naive(data, list(range(n)), -1, gains))


@pytest.mark.parametrize("seed", range(3))
def test_top_k_mixes_only_the_loudest(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 10, 3
    m = make(n, k=k)
    amps = 200 * 2.0 ** rng.permutation(n)          # distinct levels 6 dB apart
    data = (rng.standard_normal((n, m.frame_samples)) * amps[:, None]).clip(-32768, 32767).astype(np.int16)
    m.inputs[:n] = data
    m.present[:n] = True
    report = m.mix()
    loudest = sorted(np.argsort(-amps)[:k].tolist())
    assert report.contributors.tolist() == loudest
    gains = np.ones(n)
    for i in range(n):
        np.testing.assert_array_equal(m.render(i), naive(data, loudest, i, gains))


def test_top_k_keeps_current_talkers_against_small_challengers() -> None:
    m = make(3, k=1)
    s = m.frame_samples
    m.present[:3] = True
    m.inputs[0] = 4000
    m.inputs[1] = 3000
    assert m.mix().contributors.tolist() == [0]
    m.inputs[1] = 5000                                  # +2 dB louder: below the sticky bonus
    for _ in range(5):
        assert m.mix().contributors.tolist() == [0]
    m.inputs[1] = 16000                                 # +12 dB: takes over
    assert m.mix().contributors.tolist() == [1]
    assert s == 160


def test_silent_and_absent_inputs_are_not_contributors() -> None:
    m = make(4)
    m.inputs[0] = 5000
    m.inputs[1] = 0            # digital silence
    m.inputs[2] = 3            # -80 dBov: below the gate
    m.inputs[3] = 5000         # loud but absent (Empty this tick)
    m.present[:3] = True
    report = m.mix()
    assert report.contributors.tolist() == [0]
    np.testing.assert_array_equal(m.render(0), np.zeros(m.frame_samples, np.int16))
    np.testing.assert_array_equal(m.render(1), np.full(m.frame_samples, 5000, np.int16))


def test_muted_leg_contributes_nothing_but_hears_everyone() -> None:
    m = make(3)
    m.present[:3] = True
    m.inputs[0], m.inputs[1], m.inputs[2] = 1000, 2000, 4000
    m.eligible[1] = False                               # muted
    report = m.mix()
    assert report.contributors.tolist() == [0, 2]
    assert m.render(1)[0] == 5000                       # hears 0 and 2
    assert m.render(0)[0] == 4000                       # does not hear muted 1
    assert m.render(2)[0] == 1000
    assert abs(report.levels[1] + 24.3) < 0.1                     # still measured (talking while muted)


def test_input_and_output_gain() -> None:
    m = make(2)
    m.present[:2] = True
    m.inputs[0], m.inputs[1] = 1000, 1000
    m.set_gain(0, 6.0206)                               # x2
    m.mix()
    assert m.render(1)[0] == 2000
    assert m.render(0, gain=db_to_gain(-6.0206))[0] == 500
    assert m.own(0) is not None and int(m.own(0)[0]) == 2000   # type: ignore[index]


def test_extra_signal_is_heard_by_everyone_and_nobodys_own() -> None:
    m = make(2)
    m.present[:2] = True
    m.inputs[0] = 1000
    m.mix(extra=np.full(m.frame_samples, 300, np.int32))
    assert m.render(0)[0] == 300
    assert m.render(1)[0] == 1300


@pytest.mark.parametrize("sign", [1, -1])
def test_fifty_full_scale_talkers_never_wrap(sign: int) -> None:
    m = make(51, rate=48000)
    m.present[:51] = True
    t = np.arange(m.frame_samples)
    square = np.where((t // 24) % 2 == 0, 32767, -32768).astype(np.int16)
    m.inputs[:50] = square if sign > 0 else -square.astype(np.int32).clip(-32768, 32767).astype(np.int16)
    m.mix()
    for listener in (None, 0, 50):
        out = m.render(listener)
        assert out.dtype == np.int16
        ref = m.total if listener in (None, 50) else m.total - m.own(0)   # type: ignore[operator]
        # Same sign as the true sum everywhere (a wrap would flip it), and within int16.
        assert np.all(np.sign(out) == np.sign(ref))
        assert int(np.abs(out.astype(np.int32)).max()) <= 32767
        assert int(np.abs(out.astype(np.int32)).max()) > LIMIT_KNEE


def test_limiter_is_transparent_below_knee_and_monotonic_above() -> None:
    x = np.arange(-LIMIT_KNEE, LIMIT_KNEE + 1, 97, dtype=np.int32)
    np.testing.assert_array_equal(limit(x), x.astype(np.int16))
    big = np.arange(0, 60 * 32768, 4099, dtype=np.int32)
    y = limit(big).astype(np.int32)
    assert np.all(np.diff(y) >= 0) and y.max() <= 32767


def test_slots_are_reused_and_capacity_grows() -> None:
    m = make(5)
    assert m.capacity >= 5
    m.remove(1)
    assert m.add() == 1
    m.remove(4)
    assert m.count == 4
    with pytest.raises(KeyError):
        m.remove(4)
