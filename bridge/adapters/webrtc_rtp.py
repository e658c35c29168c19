"""A browser's audio on the bridge's own RTP path: aiortc keeps ICE, DTLS-SRTP and RTCP, the
room gets and makes the Opus packets, as for a SIP Opus caller.

- inbound: ``tap_receiver`` puts a ``PacketTap`` where aiortc's receiver keeps its jitter buffer,
  so aiortc still counts every packet for its RTCP receiver reports (the browser's congestion
  control and FEC decisions rest on them) but neither its jitter buffer (~80 ms of prefetch) nor
  its decoder thread gets anything. Each Opus packet goes to the port's ``RtpSession`` (adaptive
  jitter buffer, one frame deep on a clean network, a frame more while losses are seen), and the
  room pops ``Frame``/``Missing(next_payload)``/``Empty`` from it and decodes with its own
  OpusDecoder: a lost packet is rebuilt from the next one's in-band FEC.
- outbound: the room encodes the browser's mix-minus with its shared Opus streams (listeners
  hearing the same mix share one encode) and ``packetize`` queues the payload; ``MixMinusTrack``
  hands it to aiortc's sender as an ``av.Packet``, which it packs without encoding.
  ``tap_sender`` passes the browser's RTCP loss figure for our stream to ``port.on_loss``
  (Room.report_loss: a lossy browser listener's encode plans FEC, media.opus_expected_loss).
"""

from __future__ import annotations

import asyncio
import fractions
import struct
from collections.abc import Callable
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RtcpRrPacket, RtcpSrPacket

from bridge.call.browser import OPUS_PT
from bridge.rtp.jitter import PlayoutItem
from bridge.rtp.session import RtpSession

OPUS_CLOCK = 48000
FRAME_TICKS = 960        # 20 ms at Opus's RTP clock
OUT_FRAMES = 3           # outbound packets waiting for aiortc's sender: a full queue drops its oldest
_FROM = ("webrtc", 0)    # the one source address of the session (aiortc already checked the peer)
_TIME_BASE = fractions.Fraction(1, OPUS_CLOCK)
_pack_header = struct.Struct("!BBHII").pack


class BrowserPort:
    """The ``RtpPort`` of a browser: Opus at 48 kHz through an ``RtpSession``'s jitter buffer in,
    the room's Opus packets out."""

    def __init__(self, jitter_min_ms: int = 20, jitter_max_ms: int = 200, loss_depth: bool = True) -> None:
        self.session = RtpSession(local_ssrc=0, codec_pt=OPUS_PT, codec_clock=OPUS_CLOCK,
                                  frame_ticks=FRAME_TICKS, dtmf_pt=None, dtmf_clock=None,
                                  remote_addr=None, jitter_min_ms=jitter_min_ms,
                                  jitter_max_ms=jitter_max_ms, loss_depth=loss_depth)
        self.outbound: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue(OUT_FRAMES)
        self.sent = 0                                        # outbound packets handed to aiortc
        self.on_loss: Callable[[float], None] | None = None  # set once the browser has a seat

    # RtpPort: called by the room on the media tick
    def pop_frame(self) -> PlayoutItem:
        return self.session.pop_frame()

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        queue = self.outbound
        if queue.full():
            queue.get_nowait()
        queue.put_nowait((payload, ticks))
        return b""

    # fed by the taps
    def push_rtp(self, seq: int, timestamp: int, ssrc: int, marker: bool, payload: bytes, now: float) -> None:
        """One Opus packet, already decrypted (a bare 12-byte header: the session's fast path)."""
        # Our PT, whatever the browser's: Opus is all the answer offers (aiortc already dropped others).
        header = _pack_header(0x80, OPUS_PT | (0x80 if marker else 0), seq & 0xFFFF,
                              timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)
        self.session.receive(header + payload, _FROM, now)

    def report_loss(self, fraction: float) -> None:
        if self.on_loss is not None:
            self.on_loss(fraction)

    @property
    def received(self) -> int:
        return self.session.packets_received

    @property
    def lost(self) -> int:
        return self.session.jitter.lost


class PacketTap:
    """Stands where aiortc's receiver keeps its jitter buffer: takes each depayloaded packet
    (after the receiver's RTCP statistics) to the port and never returns a frame to decode."""

    def __init__(self, port: BrowserPort) -> None:
        self.port = port
        self._loop = asyncio.get_running_loop()

    def add(self, packet: Any) -> tuple[bool, None]:
        self.port.push_rtp(packet.sequence_number, packet.timestamp, packet.ssrc, packet.marker,
                           packet.payload, self._loop.time())
        return False, None


def tap_receiver(receiver: RTCRtpReceiver, port: BrowserPort) -> None:
    """Route ``receiver``'s packets to ``port`` (aiortc 1.16 keeps its buffer in a private
    attribute; the assert catches an aiortc that moved it)."""
    name = "_RTCRtpReceiver__jitter_buffer"
    assert hasattr(receiver, name), "aiortc's RTCRtpReceiver changed: no jitter buffer to replace"
    setattr(receiver, name, PacketTap(port))


def tap_sender(sender: RTCRtpSender, port: BrowserPort) -> None:
    """After aiortc's own handling, each receiver report block about our stream goes to
    ``port.report_loss`` (RFC 3550 fraction lost, 0..1)."""
    handle = sender._handle_rtcp_packet

    async def handle_rtcp(packet: Any) -> None:
        await handle(packet)
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == sender._ssrc:
                    port.report_loss(report.fraction_lost / 256.0)

    setattr(sender, "_handle_rtcp_packet", handle_rtcp)  # noqa: B010 (assigning to a method)


class MixMinusTrack(MediaStreamTrack):
    """What the browser hears: the room's Opus packets for it, paced by the media clock. aiortc's
    sender packs an ``av.Packet`` as it is; its RTP timestamp is pts in 1/48000 (960 per 20 ms)."""

    kind = "audio"

    def __init__(self, port: BrowserPort) -> None:
        super().__init__()
        self.port = port
        self._pts = 0

    async def recv(self) -> av.Packet:  # type: ignore[override]
        while True:
            payload, ticks = await self.port.outbound.get()
            pts = self._pts
            self._pts += ticks
            if payload:                  # nothing to send for an empty (DTX) frame: the clock moves on
                break
        packet = av.Packet(payload)
        packet.pts = pts
        packet.time_base = _TIME_BASE
        self.port.sent += 1
        return packet
