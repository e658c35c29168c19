"""Speech quality under packet loss, through a real Room, scored with PESQ.

A talker's speech is encoded frame by frame, sent as RTP into a real ``RtpSession`` (jitter
buffer) of a real ``Room``; an injector drops packets by a seeded pattern. A second, silent
leg of the same codec listens: its outgoing RTP (the room's mix-minus, re-encoded) is decoded
by a clean far-end decoder and scored against the original speech with PESQ (ITU-T P.862:
narrowband for G.711, wideband for G.722 and Opus). The ceiling of each codec is the same
speech through one encode -> decode of that codec, without the bridge.

Deterministic: the clock is the loop counter, the loss pattern comes from a seed.

Run: python benchmarks/bench_quality.py [--wav speech16k.wav]
(needs the ``bench`` extra: pip install -e '.[bench]'; speech comes from espeak-ng + sox).
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from bridge.call.leg import encoder_options, loss_depth as config_loss_depth
from bridge.config import Config
from bridge.media.room import Room
from bridge.rtp.packet import build_rtp_header
from bridge.rtp.session import RtpSession
from bridge_codecs import Pcm, Resampler, make_decoder, make_encoder

# name: (room rate, payload type, RTP clock, codec PCM rate, PESQ mode)
CODECS = {
    "PCMU": (8000, 0, 8000, 8000, "nb"),
    "G722": (16000, 9, 8000, 16000, "wb"),
    "opus": (48000, 111, 48000, 48000, "wb"),
}
# Harvard sentences (IEEE 1969), spoken one by one with pauses between them, as P.862's test
# material is (sentences of ~2-3 s, speech active ~60-70 % of the time), at -26 dBov active level.
SENTENCES = (
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
)
# The Opus talker sends what a browser sends (WebRTC's desktop defaults): complexity 9, in-band
# FEC for the loss it expects (Chrome follows the receiver's reports; 10 % here), through PyAV's
# libopus (1.6, a browser's generation; the bridge's own encoder is the system libopus).
BROWSER_OPUS = {"complexity": 9, "fec": 1, "packet_loss": 10, "native": 0}
PAUSE_S = 0.8
LEVEL_DBOV = -26.0
FRAME_S = 0.02


def espeak_speech(sentences: Sequence[str] = SENTENCES, voice: str = "en-us") -> Pcm:
    """16 kHz mono int16 speech from espeak-ng (22.05 kHz, resampled with sox), one sentence
    at a time with PAUSE_S of silence around each, scaled to LEVEL_DBOV of active speech."""
    pause = np.zeros(int(PAUSE_S * 16000), np.int16)
    parts = [pause]
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = os.path.join(tmp, "raw.wav"), os.path.join(tmp, "speech.wav")
        for text in sentences:
            subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", raw, text], check=True)
            subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", out], check=True)
            parts += [read_wav(out), pause]
    return at_level(np.concatenate(parts), LEVEL_DBOV)


def at_level(pcm: Pcm, dbov: float) -> Pcm:
    """Scale so samples above -50 dBov (a crude activity detector) have RMS ``dbov``."""
    x = pcm.astype(np.float64)
    active = x[np.abs(x) > 32768 * 10 ** (-50 / 20)]
    gain = 32768 * 10 ** (dbov / 20) / max(float(np.sqrt(np.mean(active ** 2))), 1.0)
    return np.clip(np.rint(x * gain), -32768, 32767).astype(np.int16)


def read_wav(path: str) -> Pcm:
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1 or w.getframerate() != 16000:
            raise ValueError(f"{path}: want 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).copy()


def resample(pcm: Pcm, src: int, dst: int) -> Pcm:
    if src == dst:
        return pcm
    return Resampler(src, dst).process(pcm[: len(pcm) // max(src // dst, 1) * max(src // dst, 1)])


def random_loss(frames: int, rate: float, seed: int = 1) -> npt.NDArray[np.bool_]:
    return np.random.default_rng(seed).random(frames) < rate


def burst_loss(frames: int, rate: float, burst: int = 3, seed: int = 1) -> npt.NDArray[np.bool_]:
    """Bursts of ``burst`` consecutive packets, starting at random so ``rate`` of all are lost."""
    starts = np.random.default_rng(seed).random(frames) < rate / burst
    drop = np.zeros(frames, bool)
    for i in np.flatnonzero(starts):
        drop[i:i + burst] = True
    return drop


def frames_of(pcm: Pcm, size: int) -> list[Pcm]:
    n = len(pcm) // size
    return [pcm[i * size:(i + 1) * size] for i in range(n)]


def through_room(codec: str, speech16k: Pcm, drop: Callable[[int], npt.NDArray[np.bool_]],
                 tail_frames: int = 10, lookahead_ms: int = 0,
                 opts: dict[str, int] | None = None, talker_opts: dict[str, int] | None = None,
                 loss_depth: bool | None = None, listener_loss: float = 0.0,
                 room_rate: int | None = None, passthrough: bool = True) -> tuple[Pcm, int]:
    """The listener's decoded audio (at the codec's PCM rate) and that rate; ``lookahead_ms``
    deepens the talker's jitter buffer (media.opus_fec_lookahead_ms); ``opts``: encoder options
    of the talker and the bridge (e.g. Opus bitrate), ``talker_opts`` the talker's on top;
    ``loss_depth``: the talker's buffer holds a frame more while it sees losses (default: as
    media.opus_loss_depth and g711_loss_depth do). ``listener_loss``: that share of the bridge's packets
    to the listener is lost too (seeded), the listener says so in an RTCP report before the
    speech starts, and its decoder rebuilds a lost frame from the next packet's FEC when that
    one arrived (a receiver holding one packet, as WebRTC's NetEQ does under loss).
    ``room_rate``: the room's rate instead of the codec's; ``passthrough``:
    media.sole_talker_passthrough (the talker is alone, so its codes reach the listener)."""
    default_rate, pt, clock, pcm_rate, _ = CODECS[codec]
    room_rate = room_rate or default_rate
    pcm = resample(speech16k, 16000, pcm_rate)
    size = pcm_rate // 50
    ticks = clock // 50
    frames = frames_of(np.concatenate((pcm, np.zeros(size * tail_frames, np.int16))), size)
    lost = drop(len(frames))
    # The room's own settings (talker_complexity) are not the talker encoder's.
    enc = make_encoder(codec, **{k: v for k, v in {**(opts or {}), **(talker_opts or {})}.items()
                                 if k != "talker_complexity"})
    room = Room("quality", room_rate, passthrough=passthrough)
    addr_talk, addr_listen = ("127.0.0.1", 40000), ("127.0.0.1", 40002)
    talk = RtpSession(0x1111, pt, clock, ticks, None, None, addr_talk, initial_seq=1, initial_ts=0,
                      jitter_min_ms=20 + lookahead_ms,
                      loss_depth=config_loss_depth(Config(), codec) if loss_depth is None else loss_depth)
    listen = RtpSession(0x2222, pt, clock, ticks, None, None, addr_listen, initial_seq=1, initial_ts=0)
    room.add_leg("talker", talk, codec, codec, payload_type=pt, encoder_opts=opts)
    room.add_leg("listener", listen, codec, codec, payload_type=pt, encoder_opts=opts)
    if listener_loss:
        room.report_loss("listener", listener_loss)
    far_end = make_decoder(codec)
    sent: list[bytes] = []
    for i, frame in enumerate(frames):
        now = i * FRAME_S
        payload = enc.encode(frame)       # the encoder runs whether or not the packet gets through
        if not lost[i]:
            talk.receive(build_rtp_header(pt, 1000 + i, 5000 + i * ticks, 0xABCD) + payload, addr_talk, now)
        for leg_id, packet in room.tick(now + 0.001).outgoing:
            if leg_id == "listener":
                sent.append(packet[12:])
    down = random_loss(len(sent), listener_loss, seed=7) if listener_loss else np.zeros(len(sent), bool)
    out: list[Pcm] = []
    for i, p in enumerate(sent):
        if not down[i]:
            out.append(far_end.decode(p))
            continue
        nxt = sent[i + 1] if i + 1 < len(sent) and not down[i + 1] else None
        out.append(far_end.conceal(len(out[-1]) if out else pcm_rate // 50, nxt))
    return np.concatenate(out), pcm_rate


def tandem(codec: str, speech16k: Pcm, opts: dict[str, int] | None = None) -> tuple[Pcm, int]:
    """The codec's own encode -> decode, without the bridge: the ceiling."""
    _, _, _, pcm_rate, _ = CODECS[codec]
    pcm = resample(speech16k, 16000, pcm_rate)
    enc, dec = make_encoder(codec, **(opts or {})), make_decoder(codec)
    return np.concatenate([dec.decode(enc.encode(f)) for f in frames_of(pcm, pcm_rate // 50)]), pcm_rate


def double_tandem(codec: str, speech16k: Pcm) -> tuple[Pcm, int]:
    """Encode -> decode -> encode -> decode with no bridge: what a listener of a mixing bridge
    (decode, mix, re-encode) can get at best, loss-free."""
    once, rate = tandem(codec, speech16k)
    return tandem(codec, resample(once, rate, 16000))


def score(codec: str, speech16k: Pcm, degraded: Pcm, rate: int) -> float:
    from pesq import pesq   # the bench extra; imported here so the module imports without it

    mode = CODECS[codec][4]
    fs = 8000 if mode == "nb" else 16000
    ref = resample(speech16k, 16000, fs)
    deg = resample(degraded, rate, fs)
    return float(pesq(fs, ref.astype(np.float64), deg.astype(np.float64), mode))


CONDITIONS: Sequence[tuple[str, Callable[[int], npt.NDArray[np.bool_]]]] = (
    ("0%", lambda n: np.zeros(n, bool)),
    ("5%", lambda n: random_loss(n, 0.05)),
    ("10%", lambda n: random_loss(n, 0.10)),
    ("20%", lambda n: random_loss(n, 0.20)),
    ("10% in 3-bursts", lambda n: burst_loss(n, 0.10)),
)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wav", help="16 kHz mono speech instead of espeak-ng's")
    ap.add_argument("--codecs", default="PCMU,G722,opus")
    ap.add_argument("--opus-bitrate", type=int, default=None,
                    help="Opus bitrate of the talker and the bridge (default: media.opus_bitrate's)")
    ap.add_argument("--bridge-opus", default="",
                    help="the bridge's Opus encoder options, e.g. bitrate=48000,complexity=10,packet_loss=0")
    ap.add_argument("--listener-loss", type=float, default=0.0,
                    help="also lose this share (0..1) of the bridge's packets to the listener, which "
                         "reports it by RTCP (per-listener FEC, media.opus_expected_loss auto)")
    ap.add_argument("--room-rate", type=int, default=None,
                    help="the room's rate (default: the codec's own, 8000/16000/48000)")
    ap.add_argument("--passthrough", choices=("on", "off"), default="on",
                    help="media.sole_talker_passthrough (G.711/G.722 only; the talker is alone in the room)")
    ap.add_argument("--jitter-depths", default="0,20",
                    help="extra jitter-buffer depths (ms) to run, one row each (default 0,20)")
    args = ap.parse_args(argv)
    speech = read_wav(args.wav) if args.wav else espeak_speech()
    names = [c for c in args.codecs.split(",") if c]
    print(f"# {datetime.date.today()}  {len(speech) / 16000:.1f} s of speech, PESQ MOS-LQO, "
          f"seeded loss on the talker's packets")
    head = ["codec", "mode", "ceiling"] + [c for c, _ in CONDITIONS]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    # Arrivals here have no jitter, so the talker's buffer plays each packet at once (1 frame), as
    # the real bridge does on a clean network (README "Latency"); an Opus talker's buffer holds a
    # frame more while it sees losses (media.opus_loss_depth). The "+20 ms" rows: a network whose
    # jitter keeps one frame more buffered, so the next packet is usually there.
    rows = [(c, int(ms)) for ms in args.jitter_depths.split(",") for c in names]
    bridge_opus = {k: int(v) for k, v in (kv.split("=") for kv in args.bridge_opus.split(",") if kv)}
    for codec, lookahead in rows:
        # The bridge's Opus encodes as config.yaml's defaults set them up (media.opus_*): with
        # "auto" expected loss the listener, which reports no loss here, gets no FEC.
        opts = None
        if codec == "opus":
            opts = {**encoder_options(Config(), "opus"), **bridge_opus}
            opts.update({"bitrate": args.opus_bitrate} if args.opus_bitrate else {})
        talker = {"bitrate": args.opus_bitrate or 32000, **BROWSER_OPUS} if codec == "opus" else None
        ceiling = score(codec, speech, *tandem(codec, speech, talker or opts))   # the talker's own encode
        label = codec + (f" {args.opus_bitrate // 1000}k" if codec == "opus" and args.opus_bitrate else "")
        label += f" (bridge {args.bridge_opus})" if codec == "opus" and bridge_opus else ""
        label += f", +{lookahead} ms jitter depth" if lookahead else ""
        label += f", listener loses {args.listener_loss:.0%}" if args.listener_loss else ""
        label += f", {args.room_rate // 1000} kHz room" if args.room_rate else ""
        label += ", passthrough off" if args.passthrough == "off" and codec != "opus" else ""
        cells = [label, CODECS[codec][4], f"{ceiling:.2f}"]
        for _, drop in CONDITIONS:
            got = through_room(codec, speech, drop, lookahead_ms=lookahead, opts=opts,
                               talker_opts=talker, listener_loss=args.listener_loss,
                               room_rate=args.room_rate, passthrough=args.passthrough == "on")
            cells.append(f"{score(codec, speech, *got):.2f}")
        print("| " + " | ".join(cells) + " |")
        sys.stdout.flush()
    for codec in names:
        print(f"# {codec}: the codec twice, no bridge: {score(codec, speech, *double_tandem(codec, speech)):.2f}")


if __name__ == "__main__":
    main()
