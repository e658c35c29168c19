"""Per-source sequence/timestamp state (RFC 3550 appendix A.1, A.3, A.8)."""

from __future__ import annotations

from dataclasses import dataclass

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2


def _signed(delta: int, mod: int) -> int:
    delta %= mod
    return delta - mod if delta >= mod // 2 else delta


@dataclass(slots=True)
class SteadySource:
    """What a receive lane (lanes.py) takes from a ``SourceState`` in order (``steady``)."""
    ssrc: int
    cycles: int
    max_seq: int         # below 0xFFFF: a wrap is not modelled by lanes
    ts_high: int         # extended timestamp of the newest packet
    jitter: float
    transit: float


class SourceState:
    """One remote SSRC: probation, extended sequence numbers, loss and jitter.

    ``update`` returns the extended sequence number for a valid packet, or None
    while the source is on probation or for a packet far outside the window.
    """
    # Hot per-packet state: fixed slots keep it compact (fewer cache lines per leg per tick).
    __slots__ = (
        "_transit", "_ts_high", "bad_seq", "base_seq", "cycles", "expected_prior", "jitter",
        "max_seq", "probation", "received", "received_prior", "ssrc",
    )

    def __init__(self, ssrc: int, seq: int) -> None:
        self.ssrc = ssrc
        self.probation = MIN_SEQUENTIAL
        self.max_seq = (seq - 1) % SEQ_MOD
        self.cycles = 0
        self.base_seq = seq
        self.bad_seq = SEQ_MOD + 1
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0             # timestamp units (RFC 3550 A.8)
        self._transit: float | None = None
        self._ts_high: int | None = None

    # -- steady lanes (lanes.py): the state a lane advances in arrays, out and back in --------
    def steady(self) -> SteadySource | None:
        """The state a lane needs, or None while on probation, before a first packet's
        timing or right before a sequence wrap."""
        if self.probation or self._ts_high is None or self._transit is None or self.max_seq >= 0xFFFF:
            return None
        return SteadySource(self.ssrc, self.cycles, self.max_seq, self._ts_high, self.jitter, self._transit)

    def restore_steady(self, jitter: float, transit: float, received: int, max_seq: int, ts_high: int) -> None:
        """Take back what a lane did: ``received`` packets in order, the newest ``max_seq``
        (no wrap) with extended timestamp ``ts_high``, the RFC 3550 jitter and transit."""
        self.jitter, self._transit = jitter, transit
        if received:
            self.max_seq = max_seq
            self.received += received
            self._ts_high = ts_high

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0

    @property
    def ext_max(self) -> int:
        return self.cycles + self.max_seq

    def update(self, seq: int) -> int | None:
        udelta = (seq - self.max_seq) % SEQ_MOD
        if self.probation:
            if seq == (self.max_seq + 1) % SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    # The packets seen during probation are delivered too: count them.
                    self._init_seq(seq)
                    self.base_seq = (seq - (MIN_SEQUENTIAL - 1)) % SEQ_MOD
                    if self.base_seq > seq:
                        self.base_seq -= SEQ_MOD
                    self.received = MIN_SEQUENTIAL
                    return self.ext_max
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return None
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq
        elif udelta <= SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                self._init_seq(seq)   # the sender restarted its sequence
            else:
                self.bad_seq = (seq + 1) % SEQ_MOD
                return None
        self.received += 1
        return self.ext_max + _signed(seq - self.max_seq, SEQ_MOD)

    def next_in_order(self, seq: int, ts: int, arrival_ticks: float) -> int | None:
        """Fast path for the usual packet: if ``seq`` is exactly the next sequence number
        (no wrap) of a validated source, do what ``update``, ``extend_ts`` and
        ``update_jitter`` do for it and return the extended timestamp (the extended
        sequence number is then ``cycles + seq``). Otherwise change nothing, return None."""
        high = self._ts_high
        if self.probation or seq != self.max_seq + 1 or high is None:
            return None
        self.max_seq = seq
        self.received += 1
        delta = (ts - high) & 0xFFFFFFFF
        ext = high + (delta - TS_MOD if delta >= TS_MOD // 2 else delta)
        if ext > high:
            self._ts_high = ext
        transit = arrival_ticks - ext
        if self._transit is not None:
            self.jitter += (abs(transit - self._transit) - self.jitter) / 16.0
        self._transit = transit
        return ext

    def extend_ts(self, ts: int) -> int:
        if self._ts_high is None:
            self._ts_high = ts
            return ts
        ext = self._ts_high + _signed(ts - self._ts_high, TS_MOD)
        if ext > self._ts_high:
            self._ts_high = ext
        return ext

    def update_jitter(self, arrival_ticks: float, ts_ext: int) -> None:
        transit = arrival_ticks - ts_ext
        if self._transit is not None:
            self.jitter += (abs(transit - self._transit) - self.jitter) / 16.0
        self._transit = transit

    @property
    def expected(self) -> int:
        return self.ext_max - self.base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        return self.expected - self.received

    def fraction_lost(self) -> int:
        """Fraction lost since the previous call (A.3), as 0..255; advances the interval."""
        expected_interval = self.expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = self.expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            return 0
        return min(255, (lost_interval << 8) // expected_interval)
