"""Every G.711 talker's mix-minus as array operations over a talker matrix.

Each contributor (a *talker*) hears the total minus its own contribution, so it has a private
stream: in the per-leg path one render, limit, resample and encode in Python per talker, the
cost of a room where everyone has an open microphone. Here the talkers sharing an encoder
(PCMU or PCMA, stateless) are done at once: one [talkers, samples] subtraction, the output
gains as a column, the limiter elementwise over the matrix (``limit`` is a pure function of
each sample), the 16/48 -> 8 kHz decimation as one product (each stream's resampler keeps its
own history, read and written as a row), and one table lookup encoding every row.
tests/unit/test_room_rates.py runs this against the per-leg path, tick for tick.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from bridge_codecs.g711 import ALAW_ENCODE, ULAW_ENCODE

from bridge.media.mixer import Mixer, limit
from bridge.media.row_resample import RowDownsampler

Pcm = npt.NDArray[np.int16]
ENCODE_TABLES = {"PCMU": ULAW_ENCODE, "PCMA": ALAW_ENCODE}


def render_talkers(mixer: Mixer, slots: npt.NDArray[np.intp], gains: npt.NDArray[np.float32]) -> Pcm:
    """What each talker hears at the room rate (rows in ``slots`` order): total minus own,
    times its output gain, limited; the same samples ``Mixer.render(slot, gain)`` gives."""
    raw = mixer.total[None, :] - mixer.own_rows(slots)
    if np.any(gains != 1.0):
        return limit(raw * gains[:, None])
    return limit(raw)


def encode_rows(name: str, pcm: Pcm) -> npt.NDArray[np.uint8]:
    """G.711-encode every row (the encoder's own table, so payloads are byte-identical)."""
    out: npt.NDArray[np.uint8] = ENCODE_TABLES[name][np.ascontiguousarray(pcm).view(np.uint16)]
    return out


def downsample_rows(down: RowDownsampler, histories: list[npt.NDArray[np.float64]],
                    pcm: Pcm) -> tuple[Pcm, npt.NDArray[np.float64]]:
    return down.process(histories, pcm)
