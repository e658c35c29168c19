"""File playback (WAV/MP3/Ogg-Opus via PyAV), gapless looping, sequences, silence, URL cache names."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from bridge.media.playback import (
    DecodedAudio,
    DecodedAudioCache,
    FilePlayback,
    PromptSequence,
    SilenceSource,
    decode_file,
    url_cache_name,
)
from bridge.media.ports import PcmSource
from bridge.media.tones import rms_dbov

Pcm = npt.NDArray[np.int16]


def sine(freq: float, rate: int, samples: int, amp: float = 10000.0) -> Pcm:
    return np.rint(amp * np.sin(2 * np.pi * freq * np.arange(samples) / rate)).astype(np.int16)


def write_wav(path: Path, pcm: Pcm, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def write_encoded(path: Path, codec: str, rate: int, seconds: float, freq: float) -> Path:
    """Encode a sine with PyAV (MP3 / Opus-in-Ogg) into ``path``."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.audio.stream.AudioStream)
        stream.layout = "mono"
        pcm = sine(freq, rate, int(rate * seconds))
        step = 960
        for i in range(0, len(pcm), step):
            chunk = pcm[i:i + step]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = i
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def dominant_hz(x: Pcm, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spec.argmax()])


def collect(src: FilePlayback | PromptSequence | SilenceSource, samples: int, rate: int,
            limit: int = 10_000) -> tuple[list[Pcm], bool]:
    frames: list[Pcm] = []
    for _ in range(limit):
        f = src.read(samples, rate)
        if f is None:
            return frames, True
        assert f.dtype == np.int16 and len(f) == samples
        frames.append(f)
    return frames, False


def test_wav_plays_once_zero_padded_then_finishes(tmp_path: Path) -> None:
    pcm = sine(500, 16000, 5000)
    play = FilePlayback(write_wav(tmp_path / "a.wav", pcm, 16000), rate=16000,
                        cache=DecodedAudioCache())
    frames, finished = collect(play, 320, 16000)
    assert finished and len(frames) == 16                        # ceil(5000 / 320)
    out = np.concatenate(frames)
    np.testing.assert_array_equal(out[:5000], pcm)
    assert not out[5000:].any()
    assert play.read(320, 16000) is None


def test_loop_has_no_gap_and_no_discontinuity(tmp_path: Path) -> None:
    """A file holding exactly 100 periods of 400 Hz, looped, is one unbroken sine."""
    rate = 16000
    pcm = sine(400, rate, 4000)                                   # 0.25 s = 100 periods
    play = FilePlayback(write_wav(tmp_path / "loop.wav", pcm, rate), loop=True, rate=rate,
                        cache=DecodedAudioCache())
    frames, finished = collect(play, 320, rate, limit=60)        # 1.2 s: four and a bit loops
    assert not finished
    out = np.concatenate(frames)
    np.testing.assert_array_equal(out, np.tile(pcm, 5)[:len(out)])
    max_step = 10000 * 2 * np.pi * 400 / rate + 2
    assert np.abs(np.diff(out.astype(np.int32))).max() <= max_step


def test_loop_wraps_inside_one_read_for_short_files() -> None:
    audio = DecodedAudio(np.arange(100, dtype=np.int16), 8000)
    play = FilePlayback(audio, loop=True)
    first = play.read(160, 8000)
    second = play.read(160, 8000)
    assert first is not None and second is not None
    np.testing.assert_array_equal(np.concatenate((first, second)), np.arange(320) % 100)


@pytest.mark.parametrize(("codec", "suffix", "rate"), [("mp3", ".mp3", 44100), ("libopus", ".ogg", 48000)])
def test_mp3_and_ogg_opus_decode_to_requested_rate(tmp_path: Path, codec: str, suffix: str,
                                                   rate: int) -> None:
    path = write_encoded(tmp_path / f"music{suffix}", codec, rate, seconds=1.0, freq=1000.0)
    for want in (8000, 16000, 48000):
        audio = decode_file(path, want)
        assert audio.rate == want
        assert audio.duration_s == pytest.approx(1.0, abs=0.1)   # encoder priming/padding aside
        middle = audio.pcm[want // 4: want * 3 // 4]
        assert dominant_hz(middle, want) == pytest.approx(1000.0, abs=5)
        assert rms_dbov(middle) == pytest.approx(rms_dbov(sine(1000, want, want)), abs=1.5)


def test_decoded_audio_cache_by_path_and_rate(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "c.wav", sine(300, 16000, 16000), 16000)
    cache = DecodedAudioCache()
    a = cache.get(path, 16000)
    assert cache.get(str(path), 16000) is a                      # decoded once
    b = cache.get(path, 8000)
    assert b is not a and b.rate == 8000 and len(b.pcm) == pytest.approx(8000, abs=8)
    assert (str(path), 8000) in cache and len(cache) == 2
    small = DecodedAudioCache(max_bytes=40_000)                 # one 16 kHz second is 32 000 bytes
    small.get(path, 16000)
    small.get(write_wav(tmp_path / "d.wav", sine(300, 16000, 16000), 16000), 16000)
    assert len(small) == 1 and (str(tmp_path / "d.wav"), 16000) in small


def test_file_playback_uses_the_cache_it_is_given(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "own.wav", sine(300, 8000, 800), 8000)
    cache = DecodedAudioCache()
    FilePlayback(path, rate=8000, cache=cache)
    FilePlayback(path, rate=8000, cache=cache)
    assert len(cache) == 1 and (str(path), 8000) in cache


def test_file_playback_follows_a_rate_change(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "r.wav", sine(700, 16000, 16000), 16000)
    play = FilePlayback(path, rate=16000, cache=DecodedAudioCache())
    assert play.read(8000, 16000) is not None                    # half a second at 16 kHz
    rest, finished = collect(play, 160, 8000)                    # the other half at 8 kHz
    assert finished and len(rest) == pytest.approx(25, abs=1)
    assert dominant_hz(np.concatenate(rest)[:3200], 8000) == pytest.approx(700, abs=5)


def test_decoded_audio_at_rate_keeps_pitch_length_and_timing() -> None:
    src = DecodedAudio(sine(400, 16000, 16000), 16000)
    for rate in (8000, 48000):
        out = src.at_rate(rate)
        assert len(out.pcm) == rate
        ref = sine(400, rate, rate).astype(np.float64)
        err = out.pcm[200:-200].astype(np.float64) - ref[200:-200]
        assert np.sqrt(np.mean(err ** 2)) < 600                  # under a sample of misalignment
    assert src.at_rate(16000) is src


def test_silence_source_is_rate_agnostic() -> None:
    for rate in (8000, 48000):
        frames, finished = collect(SilenceSource(100), rate // 50, rate)
        assert finished and len(frames) == 5 and not np.concatenate(frames).any()


def test_prompt_sequence_plays_back_to_back_then_finishes() -> None:
    a = DecodedAudio(np.full(320, 1000, dtype=np.int16), 16000)
    b = DecodedAudio(np.full(640, -1000, dtype=np.int16), 16000)
    seq = PromptSequence([FilePlayback(a), SilenceSource(20), PcmSource(b.pcm, 16000), FilePlayback(b)])
    frames, finished = collect(seq, 320, 16000)
    assert finished and seq.finished
    out = np.concatenate(frames)
    np.testing.assert_array_equal(out, np.concatenate((a.pcm, np.zeros(320), b.pcm, b.pcm)))
    assert seq.read(320, 16000) is None
    assert PromptSequence([]).read(160, 8000) is None


def test_rewind_replays() -> None:
    play = FilePlayback(DecodedAudio(np.arange(1, 161, dtype=np.int16), 8000))
    first = play.read(160, 8000)
    assert play.read(160, 8000) is None
    play.rewind()
    again = play.read(160, 8000)
    assert first is not None and again is not None
    np.testing.assert_array_equal(first, again)


def test_url_cache_name() -> None:
    a = url_cache_name("https://music.example.com/hold/Jazz.MP3?token=1")
    assert a.endswith(".mp3") and "/" not in a
    assert a == url_cache_name("https://music.example.com/hold/Jazz.MP3?token=1")
    assert a != url_cache_name("https://music.example.com/hold/Jazz.MP3?token=2")
    assert url_cache_name("http://x.test/stream").endswith(".bin")
    assert url_cache_name("http://x.test/../../etc/passwd").endswith(".bin")
    with pytest.raises(ValueError):
        url_cache_name("file:///etc/passwd")


def test_missing_file_and_unsupported_rate(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        decode_file(tmp_path / "nope.wav", 16000)
    with pytest.raises(ValueError):
        decode_file(tmp_path / "x.wav", 12345)


def test_decode_cap_refuses_long_audio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """media.decode_max_seconds: audio past the cap is refused, and decoding stops at the cap
    rather than after the whole file (a decompression bomb never expands in memory)."""
    path = write_wav(tmp_path / "long.wav", sine(440, 8000, 60 * 8000), 8000)
    assert len(decode_file(path, 8000, max_seconds=61).pcm) == 60 * 8000
    resampled = [0]
    real = av.AudioResampler

    class Counting:
        def __init__(self, **kw: object) -> None:
            self._inner = real(**kw)

        def resample(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
            if frame is not None:
                resampled[0] += frame.samples
            return self._inner.resample(frame)

    monkeypatch.setattr(av, "AudioResampler", Counting)
    with pytest.raises(ValueError, match="longer than 5 s"):
        decode_file(path, 8000, max_seconds=5)
    assert 5 * 8000 < resampled[0] < 10 * 8000      # stopped just past 5 s of 60
    cache = DecodedAudioCache(max_seconds=5)
    with pytest.raises(ValueError, match="longer than 5 s"):
        cache.get(path, 8000)
    assert len(cache) == 0
