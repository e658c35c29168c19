"""Sole-talker passthrough: when one caller is all a listener hears, send the caller's own codes.

A mixing bridge decodes, mixes and re-encodes, so a listener hears two codec tandems. For
G.722 that is most of what the bridge costs on a clean network: speech through the room scores
PESQ-WB 2.70 on the shipped prompts against 2.93 for the caller's own encode (README "Audio
quality under loss"). In a conference one person talks at a time most of the time, and then a
pure listener's stream is exactly that person's decoded frame; a listener of the same codec
can be sent the talker's codes instead of the re-encode, and hears one tandem.

Switching between the passthrough and the room's own encode must not be heard:
- **Time.** The re-encoded stream lags the passed one by what the bridge adds: its own
  decode + encode (G.722's two QMF filters: 22 samples; G.711: none) and, when the room runs
  at another rate, the resampling there and back (58 samples at 8 kHz for a 16 kHz room). The
  passed codes are delayed by as much (a few bytes carried over from the talker's previous
  frame), so a switch neither skips nor repeats audio. Where that is not a whole number of
  code bytes (G.722 in a 48 kHz room), or the room is narrower than the codec (G.722 in an
  8 kHz room), nothing is passed.
- **Decoder state.** A G.722 listener's ADPCM decoder follows whichever encoder it was last
  fed. The room's common encoder runs every tick all the same (its output is replaced, not
  skipped), so when the mix takes over it has followed the same audio; the switch into the
  passthrough happens when a talker starts alone, out of quiet, where the states hardly differ.
- **Loss.** Only a talker whose packets have all arrived for ``CLEAN_TICKS`` (3 s) is passed.
  After a loss the room's own decoder conceals and eases back into the stream (codecs/plc.py);
  a passed listener would decode the first frames after the gap raw, against an ADPCM state
  the concealment left, and switching at every loss costs more: on the shipped prompts at
  10 % loss, passing through losses (with the codes the decoder resynchronised with) scored
  PESQ-WB 1.45 against 1.58 for the room's own encode, which a lossy talker now gets.
Opus is not passed: its frames cannot be delayed by the 6.5 ms its re-encode adds, and
switching under a listener's decoder cost more than the second tandem (PESQ-WB 1.69 against
2.51 on the shipped prompts, measured).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from bridge_codecs import Resampler

PASSED = ("PCMU", "PCMA", "G722")
_RATE = {"PCMU": 8000, "PCMA": 8000, "G722": 16000}
_SAMPLES_PER_BYTE = {"PCMU": 1, "PCMA": 1, "G722": 2}
CLEAN_TICKS = 150          # 3 s of 20 ms ticks without a concealed frame before a talker is passed
# What one more encode + decode pair delays the audio by, in samples at the codec's rate:
# G.722's QMF analysis and synthesis filters (tests/unit/test_passthrough.py measures it).
CODEC_DELAY = {"PCMU": 0, "PCMA": 0, "G722": 22}


@lru_cache(maxsize=None)
def round_trip(codec_rate: int, room_rate: int) -> int:
    """Samples (at ``codec_rate``) by which resampling to the room rate and back delays audio."""
    if codec_rate == room_rate:
        return 0
    frame = codec_rate // 50
    up, down = Resampler(codec_rate, room_rate), Resampler(room_rate, codec_rate)
    x = np.zeros(frame * 6, np.int16)
    x[2 * frame] = 20000
    y = np.concatenate([down.process(up.process(x[i * frame:(i + 1) * frame])) for i in range(6)])
    return int(np.argmax(np.abs(y.astype(np.int32)))) - 2 * frame


def passthrough_delay(codec: str, room_rate: int) -> int | None:
    """Code bytes the passed stream is delayed by to stay in step with the room's own encode
    of ``codec`` in a room at ``room_rate``; None: not passed (codec, or not whole bytes)."""
    if codec not in PASSED or room_rate < _RATE[codec]:
        return None         # a narrower room band-limits on purpose: its listeners hear that
    samples = CODEC_DELAY[codec] + round_trip(_RATE[codec], room_rate)
    per_byte = _SAMPLES_PER_BYTE[codec]
    return samples // per_byte if samples % per_byte == 0 else None


def delayed(previous: bytes, current: bytes, delay: int) -> bytes | None:
    """This tick's passed payload: the code stream ``previous`` + ``current`` (the talker's
    last two packets, in a row) delayed by ``delay`` bytes; None if it cannot be."""
    if delay == 0:
        return current
    if len(previous) < delay or len(current) <= delay:
        return None
    return previous[-delay:] + current[:-delay]
