"""The Opus encoder on the system libopus (ctypes): same API as the PyAV one, settings that
change while it runs, and the LBRR (in-band FEC) flag read from its packets."""

from __future__ import annotations

import ctypes
import glob
import os

import av
import numpy as np
import pytest
from bridge_codecs import libopus, make_decoder, make_encoder
from bridge_codecs.opus import OpusEncoder, packet_has_lbrr

needs_libopus = pytest.mark.skipif(libopus.load() is None, reason="no system libopus")


def voiced(seconds: float, f0: float = 140.0, rate: int = 48000) -> np.ndarray:
    """A vowel-like signal: harmonics of f0, slowly amplitude-modulated (SILK codes it as voiced)."""
    t = np.arange(int(rate * seconds)) / rate
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 20))
    return np.rint(6000 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.int16)


def frames(x: np.ndarray, size: int = 960) -> list[np.ndarray]:
    return [x[i:i + size] for i in range(0, len(x) - size + 1, size)]


@needs_libopus
def test_native_encoder_has_the_pyav_encoders_api_and_decodes_back() -> None:
    native, pyav = OpusEncoder(native=True), OpusEncoder(native=False)
    assert native.native and not pyav.native
    for enc in (native, pyav):
        assert (enc.name, enc.clock_rate, enc.stateful, enc.sample_rate, enc.frame_samples) == \
            ("opus", 48000, True, 48000, 960)
    assert make_encoder("opus", packet_loss=0).native           # the registry picks the native one
    # ... except for FEC on a libopus older than 1.5, whose FEC costs much more (costly_fec).
    assert make_encoder("opus", packet_loss=10).native is not libopus.costly_fec()
    x = voiced(1.0)
    dec = make_decoder("opus")
    y = np.concatenate([dec.decode(native.encode(f)) for f in frames(x)])
    # Decoded audio follows the input waveform, once aligned for the codec's 6.5 ms delay.
    a = x[4800:-400].astype(float)
    best = max(np.corrcoef(a, y[4800 + lag:len(y) - 400 + lag].astype(float))[0, 1] for lag in range(250, 400))
    assert best > 0.8
    with pytest.raises(ValueError):
        native.encode(np.zeros(480, np.int16))


@needs_libopus
def test_ctl_setters_take_effect_while_running() -> None:
    enc = OpusEncoder(bitrate=32000, complexity=5, packet_loss=10, native=True)
    nat = enc._native
    assert nat is not None
    assert (nat.get(libopus.OPUS_GET_BITRATE), nat.get(libopus.OPUS_GET_COMPLEXITY),
            nat.get(libopus.OPUS_GET_PACKET_LOSS_PERC), nat.get(libopus.OPUS_GET_INBAND_FEC),
            nat.get(libopus.OPUS_GET_DTX)) == (32000, 5, 10, 1, 0)
    x = frames(voiced(2.0))
    sizes = [len(enc.encode(f)) for f in x[:40]]
    enc.configure(bitrate=12000)
    enc.configure(complexity=0)
    enc.configure(packet_loss=0)
    enc.configure(fec=False)
    enc.configure(dtx=True)
    assert (nat.get(libopus.OPUS_GET_BITRATE), nat.get(libopus.OPUS_GET_COMPLEXITY),
            nat.get(libopus.OPUS_GET_PACKET_LOSS_PERC), nat.get(libopus.OPUS_GET_INBAND_FEC),
            nat.get(libopus.OPUS_GET_DTX)) == (12000, 0, 0, 0, 1)
    after = [len(enc.encode(f)) for f in x[40:80]]
    assert sum(after[5:]) < 0.6 * sum(sizes[5:])
    with pytest.raises(ValueError):
        enc.configure(complexity=11)
    with pytest.raises(ValueError):
        enc.configure(packet_loss=101)


@pytest.mark.parametrize("native", [True, False])
def test_fec_follows_expected_loss_mid_stream(native: bool) -> None:
    """FEC (LBRR) appears when the expected loss is raised while the encoder runs, and goes
    when it is lowered: natively through opus_encoder_ctl, on PyAV by reopening."""
    if native and libopus.load() is None:
        pytest.skip("no system libopus")
    enc = OpusEncoder(bitrate=32000, packet_loss=0, native=native)
    x = frames(voiced(3.0))
    clean = [enc.encode(f) for f in x[:50]]
    enc.configure(packet_loss=20)
    lossy = [enc.encode(f) for f in x[50:100]]
    enc.configure(packet_loss=0)
    clean2 = [enc.encode(f) for f in x[100:150]]
    assert not any(packet_has_lbrr(p) for p in clean + clean2[2:])
    assert sum(packet_has_lbrr(p) for p in lossy) > 20


@needs_libopus
def test_silence_dtx_packets_are_tiny() -> None:
    enc = make_encoder("opus", dtx=True)
    sizes = [len(enc.encode(np.zeros(960, np.int16))) for _ in range(30)]
    assert max(sizes[-10:]) <= 3          # DTX: TOC-only packets once silence is established
    plain = make_encoder("opus")
    assert min(len(plain.encode(np.zeros(960, np.int16))) for _ in range(30)) > 3


def test_pyav_fallback_refuses_dtx_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="DTX"):
        OpusEncoder(dtx=True, native=False)


def _bundled_has_lbrr() -> ctypes._CFuncPtr | None:   # type: ignore[name-defined]
    """libopus >= 1.5 exports opus_packet_has_lbrr; PyAV's wheel bundles one. Used as the
    oracle for our own parser when it is there."""
    libs = glob.glob(os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs", "libopus*"))
    for path in libs:
        fn = getattr(ctypes.CDLL(path), "opus_packet_has_lbrr", None)
        if fn is not None:
            fn.argtypes = [ctypes.c_char_p, ctypes.c_int32]
            fn.restype = ctypes.c_int
            return fn   # type: ignore[no-any-return]
    return None


@pytest.mark.parametrize("bitrate", [20000, 32000, 64000])
def test_lbrr_parser_agrees_with_libopus(bitrate: int) -> None:
    oracle = _bundled_has_lbrr()
    if oracle is None:
        pytest.skip("no libopus >= 1.5 to compare with")
    enc = OpusEncoder(bitrate=bitrate, packet_loss=0)
    packets = []
    for i, f in enumerate(frames(voiced(4.0, f0=180.0))):
        if i % 40 == 0:
            enc.configure(packet_loss=(0, 20)[(i // 40) % 2])
        packets.append(enc.encode(f))
    ours = [packet_has_lbrr(p) for p in packets]
    theirs = [oracle(p, len(p)) == 1 for p in packets]
    assert ours == theirs
    assert any(ours) and not all(ours)


def test_lbrr_parser_on_non_silk_packets() -> None:
    assert not packet_has_lbrr(b"")
    assert not packet_has_lbrr(bytes([0xFC, 1, 2, 3]))    # CELT-only config 31
    assert not packet_has_lbrr(bytes([0x78]))             # hybrid TOC, no frame data


def test_costly_fec_reads_the_version() -> None:
    version = libopus.version()
    if version is None:
        assert not libopus.costly_fec()
        return
    major, minor = (int(x) for x in version.split()[-1].split(".")[:2])
    assert libopus.costly_fec() == ((major, minor) < (1, 5))
