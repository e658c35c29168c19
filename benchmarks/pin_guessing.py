"""PIN guesses per second a guesser gets through the IVR (README "Security", attack table).

Simulated with the real IVR (bridge/control/ivr.py) and a fake clock, so it is exact and takes a
second: ``calls`` parallel calls from one address each type 4-digit guesses and '#' as fast as
RFC 4733 allows (``key_s`` per key, barging into every prompt) and redial at once after each hang-up
(``redial_s``). ``--no-guard`` runs the IVR as it was before the cross-call limits (3 tries per call
only). Prints JSON: guesses judged, seconds, guesses per second, time to try all 10,000 PINs.

    python benchmarks/pin_guessing.py [--no-guard] [--calls 20] [--seconds 3600]
"""

from __future__ import annotations

import argparse
import heapq
import json

from bridge.control.ivr import Hangup, Ivr, Join, Role, RoomTarget
from bridge.control.pin_guard import PinGuard, PinLimits, SourcePinCheck

COMPARED: list[str] = []


class CountingTarget(RoomTarget):
    """Counts the entries the IVR actually compares with the PINs (the guesses that count)."""

    def role_for(self, pin: str) -> Role | None:
        if pin:
            COMPARED.append(pin)
        return super().role_for(pin)


ROOM = CountingTarget("secret", member_pins=("9999",))


def simulate(calls: int, seconds: float, guard: PinGuard | None, key_s: float = 0.1,
             redial_s: float = 0.5) -> dict[str, float]:
    COMPARED.clear()
    guess = 0
    events: list[tuple[float, int]] = [(0.0, i) for i in range(calls)]   # (when, call slot)
    ivrs: dict[int, Ivr] = {}
    typed: dict[int, str] = {}
    while events:
        now, slot = heapq.heappop(events)
        if now > seconds:
            break
        ivr = ivrs.get(slot)
        if ivr is None:
            ivr = ivrs[slot] = Ivr(room=ROOM)
            if guard is not None:
                ivr.pin_check = SourcePinCheck(guard, "203.0.113.9")
            actions = ivr.start(now)
        else:
            if not typed.get(slot):
                typed[slot] = f"{guess % 10000:04d}#"
                guess += 1
            key, typed[slot] = typed[slot][0], typed[slot][1:]
            actions = ivr.on_digit(key, now)
        ended = any(isinstance(a, (Hangup, Join)) for a in actions) or isinstance(ivr.result, Hangup)
        if ended:
            del ivrs[slot]
            typed.pop(slot, None)
            heapq.heappush(events, (now + redial_s, slot))
        else:
            heapq.heappush(events, (now + key_s, slot))
    judged = len(COMPARED)
    rate = judged / seconds
    return {"calls": calls, "seconds": seconds, "guesses_judged": judged, "guesses_per_s": round(rate, 3),
            "hours_for_10000": round(10000 / rate / 3600, 2) if rate else float("inf")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-guard", action="store_true")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3600.0)
    args = parser.parse_args()
    guard = None if args.no_guard else PinGuard(PinLimits())
    print(json.dumps(simulate(args.calls, args.seconds, guard)))


if __name__ == "__main__":
    main()
