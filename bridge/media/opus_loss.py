"""How much loss an Opus listener's stream plans for, from what its RTCP receiver reports say.

libopus spends part of the bitrate on in-band FEC (LBRR, a coarse copy of each frame in the next
packet) and codes more robustly when told to expect loss. That helps only a listener whose own
downlink loses packets, and costs everyone else quality (at 10 % talker loss, PESQ 2.81 without
the bridge's FEC against 2.71 with it, README "Audio quality under loss"). So each Opus listener
gets a *bucket*: the expected loss % its encode is set up for. Listeners in one bucket still share
one encode (the bucket is part of the stream key).

The rule: a report at or above the next bucket's entry threshold moves the listener up at once
(loss hurts now); moving down takes ``DOWN_AFTER`` reports in a row below the current bucket's
stay threshold (RTCP comes every few seconds; one clean interval in a lossy call is not the end of
it), so a listener near a threshold does not flap between encodes.
"""

from __future__ import annotations

BUCKETS = (0, 5, 10, 20)          # expected loss %, as given to OPUS_SET_PACKET_LOSS_PERC
ENTER = (0.0, 0.02, 0.07, 0.15)   # fraction lost that moves a listener up into the bucket
STAY = (0.0, 0.01, 0.04, 0.10)    # below this, a report counts toward moving down
DOWN_AFTER = 3                    # reports in a row below STAY before moving down


def bucket_for(fraction: float, table: tuple[float, ...] = ENTER) -> int:
    """Index of the highest bucket whose threshold ``fraction`` reaches."""
    index = 0
    for i, threshold in enumerate(table):
        if fraction >= threshold:
            index = i
    return index


class LossBucket:
    """One listener's bucket, fed its RTCP fraction-lost figures in arrival order."""

    __slots__ = ("_low", "_low_to", "index")

    def __init__(self, start_percent: int = 0) -> None:
        self.index = bucket_for(start_percent / 100.0)
        self._low = 0             # reports in a row that would put the listener lower
        self._low_to = 0          # the highest bucket those reports pointed at

    @property
    def percent(self) -> int:
        return BUCKETS[self.index]

    def report(self, fraction_lost: float) -> bool:
        """Take one report (0.0..1.0); True when the bucket changed."""
        up = bucket_for(fraction_lost)
        if up > self.index:
            self.index = up
            self._low = 0
            return True
        if fraction_lost >= STAY[self.index]:
            self._low = 0
            return False
        target = bucket_for(fraction_lost, STAY)
        self._low_to = target if self._low == 0 else max(self._low_to, target)
        self._low += 1
        if self._low < DOWN_AFTER:
            return False
        self.index = self._low_to
        self._low = 0
        return True
