"""A browser's audio on the bridge's own RTP path, between two in-process aiortc peers over
loopback: one plays the browser (aiortc's own sender and receiver), the other is the bridge's
``BrowserPeer`` whose port sits in a real ``Room`` ticked every 20 ms.

Loss is made by a seeded pattern on the receiving side of the path under test (a wrapper around
that receiver's ``_handle_rtp_packet``), so aiortc's RTCP statistics see it as real loss."""

from __future__ import annotations

import asyncio
import fractions
import random
import re
from collections.abc import Callable
from typing import Any

import aioice.ice
import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from bridge_codecs.opus import OpusEncoder, packet_has_lbrr

from bridge.adapters.webrtc import BrowserPeer
from bridge.config import WebrtcConfig
from bridge.media.room import Room
from bridge.rtp.jitter import Empty, Frame

RATE = 48000
FRAME = 960
_BE = np.dtype(">i2")
_EMPTY = Empty()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """ICE host candidates on 127.0.0.1 only: the two peers never leave loopback."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def tone(freq: float, index: int, amp: float = 8000.0) -> np.ndarray:
    t = (np.arange(FRAME) + index * FRAME) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def amplitude(pcm: np.ndarray, freq: float) -> float:
    """Amplitude of ``freq`` in a frame (a single-bin DFT: a Goertzel, vectorised)."""
    t = np.arange(len(pcm)) / RATE
    return float(2 * abs(np.dot(pcm.astype(np.float64), np.exp(-2j * np.pi * freq * t))) / len(pcm))


class Paced:
    """Sleeps to absolute 20 ms deadlines (no drift), for ``count`` frames at most."""

    def __init__(self, count: int) -> None:
        self.count, self.n = count, 0
        self.start: float | None = None

    async def next(self) -> int:
        if self.n >= self.count:
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        await asyncio.sleep(max(0.0, self.start + self.n * 0.02 - loop.time()))
        self.n += 1
        return self.n - 1


class ToneTrack(MediaStreamTrack):
    """A microphone playing a tone through aiortc's normal sender (aiortc encodes it)."""

    kind = "audio"

    def __init__(self, freq: float, count: int) -> None:
        super().__init__()
        self.freq, self.pace = freq, Paced(count)

    async def recv(self) -> av.AudioFrame:
        i = await self.pace.next()
        frame = av.AudioFrame.from_ndarray(tone(self.freq, i).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, i * FRAME, fractions.Fraction(1, RATE)
        return frame


def vibrato(index: int, amp: float = 8000.0) -> np.ndarray:
    """440 Hz swaying by 3 Hz at 5 Hz: libopus's VAD keeps coding FEC for it (a steady tone
    soon counts as not speech and gets none)."""
    t = (np.arange(FRAME) + index * FRAME) / RATE
    return (amp * np.sin(2 * np.pi * (440.0 * t + 3 * np.sin(2 * np.pi * 5 * t)))).astype(np.int16)


class FecTrack(MediaStreamTrack):
    """A browser whose encoder plans for loss: Opus packets with in-band FEC (the bridge's
    OpusEncoder with packet_loss set), encoded up front and handed to aiortc's sender."""

    kind = "audio"

    def __init__(self, count: int) -> None:
        super().__init__()
        self.pace = Paced(count)
        encoder = OpusEncoder(bitrate=32000, fec=True, packet_loss=20)
        self.packets = [encoder.encode(vibrato(i)) for i in range(count)]

    async def recv(self) -> av.Packet:  # type: ignore[override]
        i = await self.pace.next()
        packet = av.Packet(self.packets[i])
        packet.pts, packet.time_base = i * FRAME, fractions.Fraction(1, RATE)
        return packet


class CapturePort:
    """A silent room leg keeping what the room sends it (payloads of its codec)."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def pop_frame(self) -> Any:
        return _EMPTY

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        self.payloads.append(payload)
        return b""


class TonePort(CapturePort):
    """A caller talking a tone (L16 at 48 kHz); ``freq`` None: the vibrato."""

    def __init__(self, freq: float | None) -> None:
        super().__init__()
        self.freq, self.n = freq, 0

    def pop_frame(self) -> Any:
        self.n += 1
        pcm = vibrato(self.n) if self.freq is None else tone(self.freq, self.n)
        return Frame(pcm.astype(_BE).tobytes(), self.n * FRAME)


def drop_some(receiver: Any, lose: Callable[[int], bool]) -> list[int]:
    """Wrap ``receiver``'s packet handler: the packet with index ``i`` (from the first) is
    dropped when ``lose(i)``. Returns the dropped indexes as they happen."""
    handle, dropped, count = receiver._handle_rtp_packet, [], [0]

    async def handle_rtp(packet: Any, arrival_time_ms: int) -> None:
        i = count[0]
        count[0] += 1
        if lose(i):
            dropped.append(i)
            return
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle_rtp
    return dropped


def keep_payloads(receiver: Any) -> list[bytes]:
    """Wrap ``receiver``'s packet handler: every payload that arrives is kept, in order, in the
    returned list, including those a ``drop_some`` wrapped in before goes on to drop."""
    handle, got = receiver._handle_rtp_packet, []

    async def handle_rtp(packet: Any, arrival_time_ms: int) -> None:
        got.append(packet.payload)
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle_rtp
    return got


async def connect(track: MediaStreamTrack) -> tuple[BrowserPeer, RTCPeerConnection, str, list[Any]]:
    """The browser offers (its track sends, it receives the bridge's); the bridge answers."""
    peer = BrowserPeer(WebrtcConfig(), {}, lambda: None)
    browser = RTCPeerConnection()
    heard: list[Any] = []
    browser.on("track", heard.append)
    browser.addTrack(track)
    await browser.setLocalDescription(await browser.createOffer())
    answer = await peer.answer(browser.localDescription.sdp)
    await browser.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return peer, browser, answer, heard


async def run_room(room: Room, ticks: int, at: Callable[[int], None] | None = None) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(ticks):
        if at is not None:
            at(i)
        room.tick(loop.time())
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))


async def read_all(track: Any, into: list[np.ndarray], limit: int) -> None:
    """The browser's speaker: decoded 48 kHz frames, mono."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    try:
        for _ in range(limit):
            frame = await track.recv()
            for out in resampler.resample(frame):
                into.append(out.to_ndarray().reshape(-1))
    except MediaStreamError:
        pass


def lose_pattern(seed: int, start: int, count: int, rate: float,
                 fits: Callable[[int], bool] = lambda i: True) -> set[int]:
    """Single losses (never two in a row, so the next packet holds each one's FEC) at about
    ``rate``, after a clean start, at packets ``fits`` allows."""
    rng, lost, i = random.Random(seed), set(), start
    while i < count:
        if rng.random() < rate and fits(i):
            lost.add(i)
            i += 2
        else:
            i += 1
    return lost


async def test_the_answer_offers_opus_alone_with_in_band_fec() -> None:
    peer, browser, answer, _ = await connect(ToneTrack(440.0, 1))
    try:
        pts = re.findall(r"^m=audio \d+ \S+ (.*)$", answer, re.MULTILINE)[0].split()
        opus = re.findall(r"^a=rtpmap:(\d+) opus/48000/2", answer, re.MULTILINE)
        assert pts == opus and len(opus) == 1
        assert re.search(rf"^a=fmtp:{opus[0]} .*useinbandfec=1", answer, re.MULTILINE)
    finally:
        await browser.close()
        await peer.close()


async def test_uplink_lost_packets_are_rebuilt_from_fec_in_the_rooms_decoder() -> None:
    """The browser's Opus (with FEC) loses ~8 % of its packets, one at a time: the room decodes
    them itself, rebuilds most lost frames from the next packet's FEC, and a listener hears the
    tone in every frame (no gap where packets were lost)."""
    frames = 150
    track = FecTrack(frames)
    peer, browser, _, _ = await connect(track)
    # Packets whose successor carries LBRR (aiortc sends them in order on loopback: the
    # receiver's packet index is the track's).
    lost = lose_pattern(17, 25, frames - 10, 0.15, lambda i: packet_has_lbrr(track.packets[i + 1]))
    dropped = drop_some(peer.pc.getTransceivers()[0].receiver, lost.__contains__)
    room = Room("r", RATE)
    listener = CapturePort()
    room.add_leg("web", peer.port, "opus", "opus", payload_type=111)
    room.add_leg("ear", listener, "L16/48000", "L16/48000", payload_type=96)
    try:
        await run_room(room, frames + 15)
        decoder = room._legs["web"].decoder
        assert len(dropped) >= 4
        assert peer.port.lost >= len(dropped) - 1
        assert decoder.fec_frames >= len(dropped) - 1
        heard = [np.frombuffer(p, _BE).astype(np.float64) for p in listener.payloads]
        levels = np.array([np.sqrt(np.mean(f ** 2)) for f in heard])
        playing = np.flatnonzero(levels > 2000)
        assert len(playing) > frames - 30
        # From a second in to the end of the sound: the lost frames are not gaps. A dip below 30 %
        # of the level would be one (silence where a packet was lost); two are tolerated for a
        # packet made late by a loaded machine, fewer than the losses.
        body = range(playing[0] + 50, playing[-1])
        dips = [i for i in body if levels[i] < 0.3 * np.median(levels[body])]
        assert len(body) > 60 and len(dips) <= 2 < len(dropped)
        spectrum = np.abs(np.fft.rfft(np.concatenate([heard[i] for i in body])))
        peak = np.argmax(spectrum) * RATE / (2 * (len(spectrum) - 1))
        assert 340 < peak < 540
    finally:
        await browser.close()
        await peer.close()


async def test_downlink_is_the_rooms_shared_opus_encode() -> None:
    """A caller talks 440 Hz, the browser 1000 Hz. The browser hears 440 and not itself; once it
    is muted it hears the same mix as a silent SIP Opus listener, and gets the very packets of
    that listener's encode (one shared stream)."""
    ticks = 150
    peer, browser, _, heard_tracks = await connect(ToneTrack(1000.0, ticks + 20))
    room = Room("r", RATE)
    sip = CapturePort()
    room.add_leg("phone", TonePort(440.0), "L16/48000", "L16/48000", payload_type=96)
    room.add_leg("web", peer.port, "opus", "opus", payload_type=111)
    room.add_leg("sip", sip, "opus", "opus", payload_type=111)
    got = keep_payloads(browser.getTransceivers()[0].receiver)
    for _ in range(100):
        if heard_tracks:
            break
        await asyncio.sleep(0.01)
    pcm: list[np.ndarray] = []
    reader = asyncio.get_running_loop().create_task(read_all(heard_tracks[0], pcm, 400))
    muted_at = ticks // 2
    sip_muted_from: list[int] = []

    def at(i: int) -> None:
        if i == muted_at:
            room.set_muted("web", True)
            sip_muted_from.append(len(sip.payloads))
    try:
        await run_room(room, ticks, at)
        await asyncio.sleep(0.2)
        reader.cancel()
        unmuted = np.concatenate(pcm[20: muted_at - 10]).astype(np.float64)
        assert amplitude(unmuted, 440.0) > 1000
        assert amplitude(unmuted, 1000.0) < 0.02 * amplitude(unmuted, 440.0)
        shared = set(sip.payloads[sip_muted_from[0] + 5:])
        assert sum(p in shared for p in got) >= 30
        assert peer.port.sent >= ticks // 2
    finally:
        await browser.close()
        await peer.close()


async def test_a_lossy_browser_listener_gets_fec_from_its_receiver_reports() -> None:
    """The browser loses 12 % of what the bridge sends it; its RTCP receiver reports say so,
    the room moves its encode into a loss bucket (packet_loss "auto") and the packets it gets
    from then on carry LBRR; before any report they carry none."""
    ticks = 200
    peer, browser, _, _ = await connect(ToneTrack(1000.0, ticks + 20))
    rng = random.Random(12)
    drop_some(browser.getTransceivers()[0].receiver, lambda i: rng.random() < 0.12)
    got = keep_payloads(browser.getTransceivers()[0].receiver)
    room = Room("r", RATE)
    room.add_leg("phone", TonePort(None), "L16/48000", "L16/48000", payload_type=96)
    room.add_leg("web", peer.port, "opus", "opus", payload_type=111, encoder_opts={"packet_loss": "auto"})
    reports: list[float] = []

    def on_loss(fraction: float) -> None:
        reports.append(fraction)
        room.report_loss("web", fraction)

    peer.port.on_loss = on_loss
    first: list[int] = []

    def at(i: int) -> None:
        if i and not first and room.expected_loss("web"):     # a report moved its encode up
            first.append(len(got))
    try:
        await run_room(room, ticks, at)
        assert reports and max(reports) >= 0.07
        assert room.expected_loss("web") in (10, 20)
        # Up to a few packets of the new encode were already on their way when the room moved it.
        before, after = got[5: first[0] - 6], got[first[0] + 10:]
        assert before and not any(packet_has_lbrr(p) for p in before)
        # libopus codes LBRR for frames its VAD calls active: most of the vibrato's, not all.
        assert len(after) > 30 and sum(packet_has_lbrr(p) for p in after) > 0.4 * len(after)
    finally:
        await browser.close()
        await peer.close()


async def test_an_offer_without_opus_is_refused() -> None:
    """The port and the room take Opus only: a PCMU-only offer gets no answer (400 invalid_sdp)."""
    browser = RTCPeerConnection()
    browser.addTrack(ToneTrack(440.0, 1))
    await browser.setLocalDescription(await browser.createOffer())
    sdp = browser.localDescription.sdp
    sdp = re.sub(r"^(m=audio \d+ \S+) .*$", r"\1 0", sdp, flags=re.MULTILINE)
    sdp = re.sub(r"^a=(rtpmap|fmtp|rtcp-fb):(?!0 ).*\r\n", "", sdp, flags=re.MULTILINE)
    peer = BrowserPeer(WebrtcConfig(), {}, lambda: None)
    try:
        with pytest.raises(ValueError, match="no Opus"):
            await peer.answer(sdp)
    finally:
        await browser.close()
        await peer.close()
