"""How deep the jitter buffer (jitter.py) plays: the delay it starts at and shrinks back to.

``target`` = ``min_delay_ms`` in frames + what was *learned from the network* + (Opus legs
seeing losses) one frame for FEC. It is not derived from the RFC 3550 interarrival jitter J
(still measured and reported): on a clean network J is tiny but non-zero, and a target of
"frame + 3 J rounded up" was two frames, one more than needed.

- Learn: +1 frame each time a packet proves the delay too short: a stall that the late packet
  then resolves (the delay grew by that stall), or a packet that arrives after its slot was
  concealed and skipped (reordered: the buffer then waits a frame at its next gap, so the
  delay really grows).
- Decay, NetEQ-like, slowly: -1 frame after ``hold`` clean one-second windows (no late
  packet), never below 3 J in whole frames rounded down (while the network still jitters that
  much, a delay grown by stalls stays even if nothing has been late since). ``hold`` starts at
  2 and doubles, up to 32, whenever the delay has to grow again within ``hold`` windows of a
  decay: a tick phase right at the packets' arrival would otherwise cycle between a concealed
  and a dropped frame every few seconds.
- Loss depth (Opus): while losses are observed, one frame more, so a lost packet's successor,
  which carries its in-band FEC, is usually buffered when the gap is due; dropped again after
  ``LOSS_HOLD`` windows without a loss. The jitter buffer grows it at the first loss (that gap
  is concealed once from the past, then again from the successor's FEC).

The buffer shrinks to the target itself (a frame dropped when a whole window kept a frame
more than it); lanes.py never reaches a window's end, so none of this runs in a lane.
"""

from __future__ import annotations

HOLD_START = 2
HOLD_MAX = 32
LOSS_HOLD = 3


class PlayoutDelay:
    __slots__ = ("clean", "hold", "late_seen", "learned", "loss_clean", "loss_depth", "loss_extra",
                 "loss_seen", "max_learned", "since_decay")

    def __init__(self, max_learned: int, loss_depth: bool) -> None:
        self.max_learned = max_learned      # frames between min and max delay
        self.loss_depth = loss_depth
        self.learned = 0
        self.late_seen = False              # a late packet in the current window
        self.clean = 0                      # windows in a row without one
        self.hold = HOLD_START
        self.since_decay = 1 << 30          # windows since the last decay
        self.loss_extra = 0                 # 1 while losses are seen (loss_depth only)
        self.loss_seen = False
        self.loss_clean = 0

    @property
    def frames(self) -> int:
        """Frames above the minimum delay."""
        return self.learned + self.loss_extra

    def late(self) -> bool:
        """A packet came after its playout point. True if the delay should grow by a frame."""
        self.late_seen = True
        if self.since_decay <= self.hold:     # decayed too early: hold longer next time
            self.hold = min(HOLD_MAX, 2 * self.hold)
        if self.learned >= self.max_learned:
            return False
        self.learned += 1
        return True

    def loss(self) -> bool:
        """A slot of the stream was lost. True when this starts a loss depth frame."""
        self.loss_seen = True
        if not self.loss_depth or self.loss_extra:
            return False
        self.loss_extra = 1
        return True

    def window_end(self, jitter_frames: int) -> None:
        """A one-second window closed; ``jitter_frames``: 3 J in whole frames, rounded down."""
        self.since_decay += 1
        self.clean = 0 if self.late_seen else self.clean + 1
        self.late_seen = False
        if self.learned > jitter_frames and self.clean >= self.hold:
            self.learned -= 1
            self.clean = self.since_decay = 0
        self.loss_clean = 0 if self.loss_seen else self.loss_clean + 1
        self.loss_seen = False
        if self.loss_extra and self.loss_clean >= LOSS_HOLD:
            self.loss_extra = 0
