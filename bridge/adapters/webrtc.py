"""aiortc side of browser participants: one peer connection each, bridged to a room port.

aiortc does ICE, DTLS-SRTP and RTCP; the audio itself takes the bridge's own RTP path
(``webrtc_rtp.py``): the room sees a browser as an Opus leg whose ``RtpPort`` is fed the
browser's packets through an ``RtpSession`` jitter buffer and sends it the room's own Opus
encode, as for a SIP Opus caller. The answer offers Opus alone, with ``useinbandfec=1`` (RFC
7587: we decode the browser's in-band FEC, so it should send it). The cost of a browser
participant is measured in README "Joining from a browser".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from bridge.adapters.webrtc_rtp import BrowserPort, MixMinusTrack, tap_receiver, tap_sender
from bridge.config import WebrtcConfig

__all__ = ["BrowserPeer", "BrowserPort", "MixMinusTrack", "advertise", "opus_fmtp", "page_ice_servers"]

log = logging.getLogger("bridge.webrtc")
# aiortc and aioice log every packet at DEBUG: far too much for the bridge's debug log.
for _name in ("aiortc", "aioice"):
    logging.getLogger(_name).setLevel(logging.INFO)


def _ice_servers(cfg: WebrtcConfig) -> list[RTCIceServer]:
    password = os.environ.get(cfg.turn_password_env) if cfg.turn_password_env else None
    return [RTCIceServer(urls=url, username=cfg.turn_username if url.startswith("turn") else None,
                         credential=password if url.startswith("turn") else None)
            for url in cfg.ice_servers]


def page_ice_servers(cfg: WebrtcConfig) -> list[dict[str, str]]:
    """The same servers for the page's RTCPeerConnection (a TURN server's credentials included:
    the browser relays through it too)."""
    return [{k: v for k, v in (("urls", s.urls), ("username", s.username), ("credential", s.credential))
             if isinstance(v, str)} for s in _ice_servers(cfg)]


_HOST_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host.*)$", re.MULTILINE)


def advertise(sdp: str, public_address: str | None) -> str:
    """1:1 NAT: our host candidates show the public address the browser can reach."""
    if not public_address:
        return sdp
    return _HOST_CANDIDATE.sub(lambda m: m.group(1) + public_address + m.group(3), sdp)


_FMTP = re.compile(r"^a=fmtp:(\d+) (.*)$", re.MULTILINE)
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) opus/48000", re.MULTILINE | re.IGNORECASE)


def opus_fmtp(sdp: str) -> str:
    """The offer's fmtp for its first Opus payload type ("" when none): its maxaveragebitrate
    caps what the room sends, as for a SIP caller."""
    m = _RTPMAP.search(sdp)
    if m is None:
        return ""
    return next((f.group(2).strip() for f in _FMTP.finditer(sdp) if f.group(1) == m.group(1)), "")


class BrowserPeer:
    """One browser's peer connection, its port and a task noticing when its track ends.
    ``rtp``: the port's jitter buffer settings (``bridge.call.browser.browser_rtp``)."""

    def __init__(self, cfg: WebrtcConfig, rtp: dict[str, Any], on_closed: Callable[[], None]) -> None:
        self.port = BrowserPort(**rtp)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=_ice_servers(cfg)))
        self.public_address = cfg.public_address
        self.fmtp = ""
        self._on_closed = on_closed
        self._watch: asyncio.Task[None] | None = None
        self.closed = False

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self._watch is None:
                self._watch = asyncio.get_running_loop().create_task(self._until_ended(track),
                                                                     name="webrtc-in")

        @self.pc.on("connectionstatechange")
        async def on_state() -> None:
            if self.pc.connectionState in ("failed", "closed"):
                self._on_closed()

    async def answer(self, offer_sdp: str) -> str:
        """Non-trickle: the answer carries every candidate (aiortc gathers before returning).
        Raises ValueError for an offer without Opus audio."""
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise ValueError("the offer has no audio")
        transceiver = audio[0]
        # Opus alone (the port's session and the room expect nothing else), with in-band FEC.
        opus = [c for c in transceiver._codecs if c.mimeType.lower() == "audio/opus"]
        if not opus:
            raise ValueError("the offer has no Opus audio")
        opus[0].parameters["useinbandfec"] = 1
        transceiver._codecs = opus[:1]
        self.fmtp = opus_fmtp(offer_sdp)
        tap_receiver(transceiver.receiver, self.port)
        tap_sender(transceiver.sender, self.port)
        transceiver.sender.replaceTrack(MixMinusTrack(self.port))
        transceiver.direction = "sendrecv"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return advertise(self.pc.localDescription.sdp, self.public_address)

    async def _until_ended(self, track: MediaStreamTrack) -> None:
        """The remote track gets no frames (its packets go to the port), only its end."""
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
        self._on_closed()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch
        await self.pc.close()
