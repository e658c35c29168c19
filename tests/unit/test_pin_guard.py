"""PIN guessing limits (bridge/control/pin_guard.py) and the IVR using them, with a fake clock."""

from __future__ import annotations

import math

from bridge.control.ivr import Hangup, Ivr, Join, RoomTarget
from bridge.control.pin_guard import PinGuard, PinLimits, SourcePinCheck
from tests.unit.test_ivr import Caller, prompts

ROOM = RoomTarget("r1", member_pins=("1234",))
LIMITS = PinLimits(free_failures=3, base_delay_s=2, max_delay_s=10, lockout_after=6, lockout_s=900, window_s=3600)


def test_backoff_doubles_then_lockout_then_expiry() -> None:
    g = PinGuard(LIMITS)
    delays = [g.failed("10.0.0.9", "r1", t).delay for t in (0, 1, 2, 3, 10, 30)]
    assert delays[:5] == [0, 0, 2, 4, 8] and math.isinf(delays[5])
    assert g.wait("10.0.0.9", "r1", 31) == math.inf and g.locked(31) == 1
    assert g.wait("10.0.0.8", "r1", 31) == 0 and g.wait("10.0.0.9", "r2", 31) == 0   # others unaffected
    assert g.wait("10.0.0.9", "r1", 931) == 0
    assert g.counts == {"wrong": 6, "delayed": 3, "lockouts": 1}


def test_success_and_quiet_window_clear_the_count() -> None:
    g = PinGuard(LIMITS)
    for t in range(3):
        g.failed("a", "r1", t)
    g.succeeded("a", "r1")
    assert g.failed("a", "r1", 5).delay == 0
    assert g.failed("a", "r1", 6).delay == 0
    assert g.failed("a", "r1", 7).delay == 2
    assert g.failed("a", "r1", 7 + 3601).delay == 0      # a quiet hour forgets


def _call(g: PinGuard, now: float, source: str = "10.0.0.9") -> Caller:
    c = Caller(Ivr(room=ROOM))
    c.ivr.pin_check = SourcePinCheck(g, source)
    c.now = now
    c.start()
    c.finish_prompt()
    return c


def test_ivr_ignores_keys_during_backoff_and_locks_out_across_calls() -> None:
    g = PinGuard(LIMITS)
    c = _call(g, 0.0)
    c.keys("1111#")
    c.finish_prompt()
    c.keys("2222#")
    c.finish_prompt()
    c.keys("3333#")                                      # third wrong: this call ends
    assert prompts(c.log)[-1] == ["too_many_attempts"]
    c2 = _call(g, c.now + 1)                             # redial at once: the 4th guess waits 2 s
    c2.keys("4444#")
    assert g.counts["wrong"] == 4
    c2.finish_prompt()
    c2.keys("1234#")                                     # within the 2 s: ignored, not compared
    assert c2.ivr.result is None
    c2.wait(3.0)
    c2.keys("1234#")
    assert isinstance(c2.ivr.result, Join)


def test_locked_out_caller_hangs_up_without_comparing() -> None:
    g = PinGuard(PinLimits(lockout_after=1, lockout_s=60))
    c = _call(g, 0.0)
    c.keys("0000#")
    assert isinstance(c.ivr.result, Hangup) and c.ivr.result.reason == "locked_out"
    c2 = Caller(Ivr(room=ROOM))
    c2.ivr.pin_check = SourcePinCheck(g, "10.0.0.9")
    c2.now = 5.0
    c2.start()
    assert prompts(c2.log)[-1] == ["too_many_attempts"]
    assert isinstance(c2.ivr.result, Hangup) and c2.ivr.result.reason == "locked_out"
    other = _call(g, 5.0, source="10.0.0.10")             # another address still gets in
    other.keys("1234#")
    assert isinstance(other.ivr.result, Join)


def test_guessing_rate_benchmark_before_and_after() -> None:
    from benchmarks.pin_guessing import simulate
    before = simulate(20, 600, None)
    after = simulate(20, 600, PinGuard(PinLimits()))
    assert before["guesses_per_s"] > 20
    assert after["guesses_per_s"] < 0.05
