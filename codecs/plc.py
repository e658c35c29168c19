"""Packet loss concealment for codecs without their own (G.711, L16, G.722).

After ITU-T G.711 Appendix I, without its 3.75 ms output delay. On a loss the pitch
period P is estimated by normalised autocorrelation of the last 20 ms of good audio; the
gap is filled by repeating the last period for the first 20 ms, the last two periods
for the next 20 ms and the last three from then on (repeating one period for long sounds
buzzy), each switch blended over P/4 samples. The jump between the last good sample
and the first repeated one is spread over the first P/4 samples, so the seam does not
click. From 20 ms into a burst the repetition fades (25 % per 20 ms) into comfort noise
at the level of the talker's own background (the quietest 5 ms of the kept history, at
most -58 dBov), so a long burst ends in the caller's room noise, not in dead air; a
digitally silent input stays silent (the room adds its own comfort noise under the mix). The first good frame after a loss is
cross-faded with the continuation over 4 ms.

When the jitter buffer already holds the packet after the gap (``future``), the gap is
bridged from both sides instead: the continuation is cross-faded, over the whole gap, into
that packet extended backwards (its first pitch period repeated, or mirrored when unvoiced),
which ends exactly where the packet begins, so no cross-fade is needed after it. Measured
(benchmarks/bench_quality.py, PCMU): 2.93 -> 3.03 at 10 % random loss. Not used for G.722:
its next packet can only be decoded from a guessed ADPCM state (FFmpeg's cannot be copied),
and that guess is ~50 % off in RMS, which scored lower than the continuation alone.

Appendix I's steps are 10 ms; with 20 ms packets, holding the full level for the whole
first lost packet scored better (PESQ, benchmarks/bench_quality.py: +0.05 at 10 % loss,
+0.1 with 3-packet bursts), and so did a fixed 4 ms cross-fade over Appendix I's growing one.
Wideband (G.722) scores better with a 12 ms pitch window and a 2 ms cross-fade (codec alone,
PESQ-WB, 10 % random loss 1.93 -> 1.99, 10 % in 3-packet bursts 1.99 -> 2.03).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from .base import Pcm

_F64 = npt.NDArray[np.float64]

_WINDOW_MS = 20       # autocorrelation window
_MIN_PITCH_HZ = 66    # lag range 2.5 .. 15 ms, the usual speech pitch range
_MAX_PITCH_HZ = 400
_PERIODS = 3          # at most three periods are repeated (Appendix I)
_STEP_MS = 20         # one more period every 20 ms; the fade starts after the first 20 ms
_FADE_PER_STEP = 0.25  # ...losing 25 % of the level per 20 ms: only noise from 100 ms on
_XFADE_MS = 4         # overlap on the first good frame after a loss
_FLOOR_MAX_DBOV = -58.0   # a quiet room: 35 ms inside a word holds no pause to measure
_FLOOR_BLOCK_MS = 5
_NOISE_SECONDS = 1


def _dbov(db: float) -> float:
    return 32768.0 * 10 ** (db / 20)


@lru_cache(maxsize=None)
def _noise(rate: int) -> _F64:
    """One second of unit-RMS pink-ish noise (1/f power shaped in the frequency domain)."""
    n = rate * _NOISE_SECONDS
    spectrum = np.fft.rfft(np.random.default_rng(17).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate)
    spectrum /= np.sqrt(np.maximum(f, 50.0))
    x = np.fft.irfft(spectrum, n)
    x /= np.sqrt(np.mean(x * x))
    x.setflags(write=False)
    return x


class Concealer:
    """Streaming concealment state for one decoder at ``sample_rate``."""

    def __init__(self, sample_rate: int, window_ms: int = _WINDOW_MS, xfade_ms: int = _XFADE_MS) -> None:
        self.sample_rate = sample_rate
        ms = sample_rate // 1000
        self._min_lag = sample_rate // _MAX_PITCH_HZ
        self._max_lag = sample_rate // _MIN_PITCH_HZ
        self._window = window_ms * ms
        # The correlation window plus the longest lag (35 ms): shorter than two 20 ms frames,
        # so the room's bulk G.711 path, which replays a leg's last two payloads into its
        # decoder before a loss, leaves exactly the state a decoder fed every frame would have.
        # Three periods fit up to 8.75 ms lags; longer pitch repeats fewer.
        self._history = np.zeros(self._window + self._max_lag, dtype=np.float64)
        self._floor_block = _FLOOR_BLOCK_MS * ms
        self._step = _STEP_MS * ms
        self._xfade = xfade_ms * ms
        self._silent = self._step * (1 + round(1 / _FADE_PER_STEP))
        self._floor = 0.0
        self._noise_pos = 0
        self._lost = 0                # samples concealed in the current burst
        self._lag = 0                 # pitch period of this burst; 0: nothing to repeat
        self._buf: _F64 | None = None  # the last periods (+1 sample) at the start of the burst
        self._periods = 1             # periods that fit in the history at this lag
        self._seam = 0.0              # jump at the onset, spread over the first P/4 samples
        self._joined = False          # the last concealed frame already leads into the next

    @property
    def in_loss(self) -> bool:
        return self._lost > 0

    @property
    def floor(self) -> float:
        """RMS of the comfort noise a long loss fades into."""
        return self._floor

    def good(self, pcm: Pcm) -> Pcm:
        """Record a correctly decoded frame; returns it (cross-faded after a loss)."""
        out = pcm
        if self._lost and len(pcm) and not self._joined:
            n = min(self._xfade, len(pcm))
            tail = self._synth(n)
            ramp = (np.arange(n, dtype=np.float64) + 1) / (n + 1)
            mixed = pcm.astype(np.float64)
            mixed[:n] = tail * (1.0 - ramp) + mixed[:n] * ramp
            out = np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)
        self._lost = 0
        self._joined = False
        self._buf = None
        self._remember(out.astype(np.float64))
        return out

    def preview(self, samples: int) -> Pcm:
        """What ``conceal(samples)`` without a future would return, without consuming it."""
        if self._lost == 0:
            self._start()
        return np.clip(np.rint(self._synth(samples)), -32768, 32767).astype(np.int16)

    def conceal(self, samples: int, future: Pcm | None = None) -> Pcm:
        """Synthesise ``samples`` of concealment for a lost frame; ``future``: the frame after
        it when already here, so the gap is bridged from both sides."""
        if self._lost == 0:
            self._start()
        out = self._synth(samples)
        if future is not None and len(future) >= samples:
            out = self._bridge(out, future.astype(np.float64), samples)
            self._joined = True
        self._lost += samples
        # Keep history continuous so a later estimate never sees a gap.
        self._remember(out)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    # -- internals -----------------------------------------------------------------------------
    def _bridge(self, fwd: _F64, future: _F64, n: int) -> _F64:
        """Cross-fade the forward continuation into the next frame extended backwards: its
        first pitch period repeated (voiced) or mirrored (else), so it ends on future[0]."""
        lag = self._lag
        t = np.arange(n)
        if lag and lag <= len(future):
            back = future[(t - n) % lag]
        else:
            back = future[np.minimum(n - 1 - t, len(future) - 1)]
        w = (t + 1) / (n + 1)
        return fwd * (1.0 - w) + back * w

    def _start(self) -> None:
        hist = self._history
        blocks = hist[len(hist) % self._floor_block:].reshape(-1, self._floor_block)
        quietest = float(np.sqrt(np.min(np.mean(blocks * blocks, axis=1))))
        self._floor = min(quietest, _dbov(_FLOOR_MAX_DBOV))
        lag = self._estimate_period()
        self._lag = lag
        self._noise_pos = 0
        if lag == 0:
            self._buf = None
            return
        periods = min(_PERIODS, (len(hist) - 1) // lag)
        self._buf = hist[-(periods * lag + 1):].copy()
        self._periods = periods
        # Periodic extension of the last period would go from hist[-1] to hist[-lag]; the
        # signal itself went from hist[-lag-1] to hist[-lag]. Their difference is the click.
        self._seam = float(hist[-1] - hist[-lag - 1])

    def _synth(self, samples: int) -> _F64:
        """The ``samples`` after the ``_lost`` already concealed (pure: no state change)."""
        t = self._lost + np.arange(samples)
        # Linear fade to the noise floor: full level for the first step, 25 % less per step after.
        gain = np.clip(1.0 - (t - self._step + 1) * (_FADE_PER_STEP / self._step), 0.0, 1.0)
        noise = _noise(self.sample_rate)
        idx = (self._noise_pos + t) % len(noise)
        buf, lag = self._buf, self._lag
        if buf is None:                   # nothing voiced to continue: background noise only
            return noise[idx] * self._floor
        out = noise[idx] * (self._floor * (1.0 - gain))
        if gain[0] == 0.0:
            return out
        end = len(buf)
        ola = max(lag // 4, 1)
        periods = np.minimum(t // self._step + 1, self._periods)
        # x_k(t) = buf[-k*P + t mod k*P]: every k has the same pitch phase at t.
        voiced = buf[end - periods * lag + t % (periods * lag)]
        # Blend each switch to one more period over P/4 samples (from the k-1 period stream).
        into = t - (periods - 1) * self._step
        blend = (periods > 1) & (into < ola)
        if blend.any():
            k = periods[blend] - 1
            tb = t[blend]
            older = buf[end - k * lag + tb % (k * lag)]
            w = (into[blend] + 1) / (ola + 1)
            voiced[blend] = older * (1.0 - w) + voiced[blend] * w
        seam = t < ola
        if seam.any():
            voiced[seam] += self._seam * (1.0 - (t[seam] + 1) / (ola + 1))
        return out + voiced * gain

    def _estimate_period(self) -> int:
        hist = self._history
        target = hist[-self._window:]
        energy = float(np.dot(target, target))
        if energy <= (self._floor * 2) ** 2 * self._window:
            return 0        # nothing above the background to continue: noise only
        # Normalised correlation of the last window with the signal `lag` samples
        # earlier, for every lag at once: c[s] pairs target with hist[s:s+window].
        cross = np.correlate(hist, target, mode="valid")
        sq = np.concatenate(([0.0], np.cumsum(hist * hist)))
        past_energy = sq[self._window:] - sq[:-self._window]
        lags = np.arange(self._min_lag, self._max_lag + 1)
        starts = len(hist) - self._window - lags
        score = cross[starts] / np.sqrt(np.maximum(past_energy[starts], 1e-9) * energy)
        return int(lags[int(np.argmax(score))])

    def _remember(self, pcm: _F64) -> None:
        n = len(self._history)
        if len(pcm) >= n:
            self._history[:] = pcm[-n:]
        else:
            self._history[:-len(pcm)] = self._history[len(pcm):]
            self._history[-len(pcm):] = pcm
