"""Codec layer: G.711 bit-exactness against FFmpeg, PyAV codecs, L16, PLC, registry."""

from __future__ import annotations

import importlib
import sys

import av
import numpy as np
import pytest

import bridge_codecs
from bridge_codecs import Concealer, codec_info, make_decoder, make_encoder
from bridge_codecs.g711 import ALAW_DECODE, ALAW_ENCODE, ULAW_DECODE, ULAW_ENCODE

ALL_PCM = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)


def tone(freq: float, rate: int, samples: int, amp: float = 8000.0) -> np.ndarray:
    return np.rint(amp * np.sin(2 * np.pi * freq * np.arange(samples) / rate)).astype(np.int16)


def frames(x: np.ndarray, size: int) -> list[np.ndarray]:
    return [x[i:i + size] for i in range(0, len(x) - size + 1, size)]


# --- G.711 ---------------------------------------------------------------------------------

def _ffmpeg_encode(codec: str, pcm: np.ndarray) -> bytes:
    ctx = av.CodecContext.create(codec, "w")
    ctx.sample_rate, ctx.format, ctx.layout = 8000, "s16", "mono"
    frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
    frame.sample_rate, frame.pts = 8000, 0
    return b"".join(bytes(p) for p in ctx.encode(frame))


def _ffmpeg_decode(codec: str, payload: bytes) -> np.ndarray:
    ctx = av.CodecContext.create(codec, "r")
    ctx.sample_rate, ctx.layout = 8000, "mono"
    return np.concatenate([f.to_ndarray()[0] for f in ctx.decode(av.Packet(payload))])


@pytest.mark.parametrize(("name", "ffname", "enc", "dec"), [
    ("PCMU", "pcm_mulaw", ULAW_ENCODE, ULAW_DECODE),
    ("PCMA", "pcm_alaw", ALAW_ENCODE, ALAW_DECODE),
])
def test_g711_tables_bit_exact_with_ffmpeg(name: str, ffname: str, enc: np.ndarray, dec: np.ndarray) -> None:
    assert enc.shape == (65536,) and enc.dtype == np.uint8
    assert dec.shape == (256,) and dec.dtype == np.int16
    expected_codes = np.frombuffer(_ffmpeg_encode(ffname, ALL_PCM), dtype=np.uint8)
    assert np.array_equal(np.frombuffer(make_encoder(name).encode(ALL_PCM), np.uint8), expected_codes)
    all_codes = bytes(range(256))
    assert np.array_equal(make_decoder(name).decode(all_codes), _ffmpeg_decode(ffname, all_codes))


def _stl_ulaw(x: int) -> int:
    """ITU-T G.191 STL ulaw_compress, for documenting where FFmpeg's encoder differs."""
    absno = min((((~x) >> 2) if x < 0 else (x >> 2)) + 33, 0x1FFF)
    segno, i = 1, absno >> 6
    while i:
        segno, i = segno + 1, i >> 1
    y = ((8 - segno) << 4) | (0xF - ((absno >> segno) & 0xF))
    return y | 0x80 if x >= 0 else y


def _stl_alaw(x: int) -> int:
    ix = ((~x) >> 4) if x < 0 else (x >> 4)
    if ix > 15:
        iexp = 1
        while ix > 31:
            ix, iexp = ix >> 1, iexp + 1
        ix += (iexp << 4) - 16
    return (ix | 0x80 if x >= 0 else ix) ^ 0x55


@pytest.mark.parametrize(("stl", "table", "mask"), [(_stl_ulaw, ULAW_ENCODE, 0xFF), (_stl_alaw, ALAW_ENCODE, 0xD5)])
def test_g711_differs_from_itu_stl_only_by_adjacent_codes_at_decision_levels(stl, table, mask) -> None:  # type: ignore[no-untyped-def]
    ours = table[ALL_PCM.view(np.uint16)]
    ref = np.array([stl(int(v)) for v in ALL_PCM], dtype=np.uint8)
    differ = np.nonzero(ours != ref)[0]
    assert len(differ) == 964
    step = (ours[differ].astype(int) ^ mask) - (ref[differ].astype(int) ^ mask)
    assert np.all(np.abs(step) == 1)               # always the adjacent code


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_g711_frame_roundtrip_and_statelessness(name: str) -> None:
    enc = make_encoder(name)
    assert enc.stateful is False and enc.sample_rate == enc.clock_rate == 8000
    x = tone(1000, 8000, 160)
    payload = enc.encode(x)
    assert len(payload) == 160 and payload == enc.encode(x)
    y = make_decoder(name).decode(payload)
    assert y.dtype == np.int16 and len(y) == 160
    assert np.max(np.abs(y.astype(int) - x)) <= 8000 // 16 + 1   # within one quantiser step


def test_g711_encode_accepts_non_contiguous_views() -> None:
    x = tone(500, 8000, 320)
    assert make_encoder("PCMU").encode(x[::2]) == make_encoder("PCMU").encode(x[::2].copy())


# --- L16 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_l16_is_big_endian_and_lossless(rate: int) -> None:
    enc = make_encoder("L16", sample_rate=rate)
    assert enc.stateful is False and enc.clock_rate == rate
    x = np.array([1, -2, 0x1234], dtype=np.int16)
    assert enc.encode(x) == b"\x00\x01\xff\xfe\x12\x34"
    noise = np.random.default_rng(0).integers(-32768, 32767, rate // 50, dtype=np.int16)
    assert np.array_equal(make_decoder("L16", sample_rate=rate).decode(enc.encode(noise)), noise)


def test_l16_rejects_other_rates() -> None:
    with pytest.raises(ValueError):
        make_encoder("L16", sample_rate=44100)


# --- G.722 ---------------------------------------------------------------------------------

def test_g722_one_160_byte_packet_per_20ms_and_tone_survives() -> None:
    enc, dec = make_encoder("G722"), make_decoder("G722")
    assert (enc.sample_rate, enc.clock_rate, enc.stateful) == (16000, 8000, True)
    x = tone(5000, 16000, 16000)                 # above 4 kHz: wideband must be kept
    payloads = [enc.encode(f) for f in frames(x, 320)]
    assert len(payloads) == 50 and all(len(p) == 160 for p in payloads)
    y = np.concatenate([dec.decode(p) for p in payloads])
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y[4000:].astype(float)))
    assert abs(np.fft.rfftfreq(12000, 1 / 16000)[np.argmax(spectrum)] - 5000) < 5
    assert np.sqrt(np.mean(y[4000:].astype(float) ** 2)) > 0.7 * 8000 / np.sqrt(2)


def test_g722_40ms_frames_make_320_byte_payloads() -> None:
    enc = make_encoder("G722", frame_ms=40)
    assert len(enc.encode(tone(440, 16000, 640))) == 320


# --- Opus ----------------------------------------------------------------------------------

def test_opus_one_packet_per_frame_and_960_samples_back() -> None:
    enc, dec = make_encoder("opus"), make_decoder("opus")
    assert (enc.sample_rate, enc.clock_rate, enc.stateful) == (48000, 48000, True)
    x = tone(440, 48000, 48000)
    payloads = [enc.encode(f) for f in frames(x, 960)]
    assert len(payloads) == 50 and all(payloads)
    y = np.concatenate([dec.decode(p) for p in payloads])
    assert len(y) == 48000 and y.dtype == np.int16
    # Encoder lookahead only delays the audio; the steady part is the same tone.
    spectrum = np.abs(np.fft.rfft(y[9600:].astype(float) * np.hanning(38400)))
    assert abs(np.fft.rfftfreq(38400, 1 / 48000)[np.argmax(spectrum)] - 440) < 3


def _stereo_packets(count: int) -> list[bytes]:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.format, ctx.layout, ctx.bit_rate = 48000, "s16", "stereo", 64000
    ctx.open()
    left = tone(440, 48000, 960 * count)
    out = []
    for i, chunk in enumerate(frames(left, 960)):
        inter = np.stack([chunk, chunk], axis=1).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(inter, format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48000, i * 960
        out += [bytes(p) for p in ctx.encode(frame)]
    return out


def test_opus_decoder_downmixes_stereo_packets_to_mono() -> None:
    packets = _stereo_packets(10)
    assert all(p[0] & 0x04 for p in packets)      # TOC stereo flag set
    dec = make_decoder("opus")
    y = np.concatenate([dec.decode(p) for p in packets])
    assert len(y) == 9600
    assert np.sqrt(np.mean(y[4800:].astype(float) ** 2)) > 0.5 * 8000 / np.sqrt(2)


def test_opus_conceal_continues_then_fades_and_recovers() -> None:
    enc, dec = make_encoder("opus"), make_decoder("opus")
    payloads = [enc.encode(f) for f in frames(tone(300, 48000, 960 * 20), 960)]
    for p in payloads[:10]:
        dec.decode(p)
    lost = [dec.conceal(960) for _ in range(6)]   # a burst: no next packet, libopus PLC
    assert all(len(c) == 960 and c.dtype == np.int16 for c in lost)
    rms = [float(np.sqrt(np.mean(c.astype(float) ** 2))) for c in lost]
    assert rms[0] > 1000                          # libopus PLC extrapolates, not silence
    assert rms[-1] < rms[0]
    assert len(dec.decode(payloads[16])) == 960


def test_opus_conceal_before_any_packet_is_silence() -> None:
    assert not np.any(make_decoder("opus").conceal(960))


def test_opus_options_are_applied() -> None:
    x = np.random.default_rng(3).normal(0, 4000, 960 * 10).astype(np.int16)
    sizes = {}
    for bitrate in (12000, 64000):
        enc = make_encoder("opus", bitrate=bitrate, complexity=3, fec=False, packet_loss=0)
        sizes[bitrate] = sum(len(enc.encode(f)) for f in frames(x, 960))
    assert sizes[64000] > 2 * sizes[12000]
    with pytest.raises(ValueError):
        make_encoder("opus", complexity=11)
    with pytest.raises(ValueError):
        make_encoder("opus", packet_loss=101)


def test_opus_fec_adds_lbrr_bits() -> None:
    x = tone(200, 48000, 960 * 25, amp=6000) + np.random.default_rng(4).normal(0, 300, 960 * 25).astype(np.int16)

    def total(**opts: object) -> int:
        enc = make_encoder("opus", bitrate=24000, **opts)
        return sum(len(enc.encode(f)) for f in frames(x, 960))

    # With FEC on and expected loss, libopus spends part of the budget on LBRR: the
    # payload shape changes (exact sizes are libopus-version specific).
    assert total(fec=True, packet_loss=20) != total(fec=False, packet_loss=0)


def test_pyav_encoders_reject_wrong_frame_length() -> None:
    with pytest.raises(ValueError):
        make_encoder("opus").encode(np.zeros(480, dtype=np.int16))
    with pytest.raises(ValueError):
        make_encoder("G722").encode(np.zeros(160, dtype=np.int16))


# --- PLC -----------------------------------------------------------------------------------

def test_plc_repeats_pitch_period_and_fades_to_comfort_noise() -> None:
    plc = Concealer(8000)
    x = tone(200, 8000, 1600)                      # 40-sample period
    for f in frames(x, 160):
        plc.good(f)
    out = [plc.conceal(160) for _ in range(6)]
    # The first 20 ms continue the waveform exactly (period repetition at full level).
    continuation = tone(200, 8000, 1600 + 160)[1600:]
    assert np.max(np.abs(out[0].astype(int) - continuation)) <= 2
    rms = [float(np.sqrt(np.mean(o.astype(float) ** 2))) for o in out]
    assert rms[0] > rms[1] > rms[2] > rms[3] > rms[4]     # fading over 20 ms steps
    assert 0 < rms[5] <= 2 * plc.floor                     # comfort noise from 100 ms on, not silence


def test_plc_resets_on_good_frame_with_crossfade() -> None:
    plc = Concealer(8000)
    x = tone(250, 8000, 2400)
    for f in frames(x[:1600], 160):
        plc.good(f)
    plc.conceal(160)
    assert plc.in_loss
    resumed = plc.good(x[1760:1920])
    assert not plc.in_loss
    assert np.array_equal(resumed[32:], x[1792:1920])  # only the 4 ms overlap is touched
    assert len(plc.conceal(160)) == 160                # a fresh burst starts at full level
    assert np.sqrt(np.mean(plc.conceal(160)[:40].astype(float) ** 2)) > 1000


def test_plc_after_silence_stays_silent() -> None:
    plc = Concealer(16000)
    plc.good(np.zeros(320, dtype=np.int16))
    assert not np.any(plc.conceal(320))           # the talker's background was digital silence


@pytest.mark.parametrize("name", ["PCMU", "PCMA", "G722", "L16"])
def test_codecs_without_own_plc_conceal_with_pitch_repetition(name: str) -> None:
    enc, dec = make_encoder(name), make_decoder(name)
    n = enc.sample_rate // 50
    for f in frames(tone(200, enc.sample_rate, n * 10), n):
        dec.decode(enc.encode(f))
    first = dec.conceal(n)
    assert len(first) == n and np.sqrt(np.mean(first.astype(float) ** 2)) > 2000
    for _ in range(5):
        last = dec.conceal(n)
    assert np.sqrt(np.mean(last.astype(float) ** 2)) < 100      # faded to comfort noise


# --- registry ------------------------------------------------------------------------------

def test_codec_info() -> None:
    assert tuple(codec_info("PCMU")) == ("PCMU", 8000, 8000, 0, 1)
    assert tuple(codec_info("pcma")) == ("PCMA", 8000, 8000, 8, 1)
    assert tuple(codec_info("G722")) == ("G722", 16000, 8000, 9, 1)
    assert tuple(codec_info("OPUS")) == ("opus", 48000, 48000, None, 2)
    assert tuple(codec_info("L16", 16000)) == ("L16", 16000, 16000, None, 1)
    with pytest.raises(ValueError):
        codec_info("G729")


@pytest.mark.parametrize("name", ["PCMU", "PCMA", "G722", "opus", "L16"])
def test_registry_builds_matching_encoder_and_decoder(name: str) -> None:
    info = codec_info(name)
    enc, dec = make_encoder(name), make_decoder(name)
    assert enc.name == dec.name == info.name
    assert enc.sample_rate == dec.sample_rate == info.sample_rate
    assert enc.clock_rate == dec.clock_rate == info.clock_rate
    assert enc.stateful is (name in ("G722", "opus"))


def test_registry_rejects_impossible_rates() -> None:
    with pytest.raises(ValueError):
        make_encoder("PCMU", sample_rate=16000)


def test_stdlib_codecs_is_not_shadowed() -> None:
    stdlib = importlib.import_module("codecs")
    assert stdlib is sys.modules["codecs"]
    assert hasattr(stdlib, "lookup") and stdlib.lookup("utf-8").name == "utf-8"
    assert bridge_codecs.__name__ == "bridge_codecs"
    assert bridge_codecs.__file__ is not None and stdlib.__file__ is not None
    assert bridge_codecs.__file__.endswith("codecs/__init__.py")
    assert stdlib.__file__ != bridge_codecs.__file__
