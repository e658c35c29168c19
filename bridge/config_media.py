"""The ``rtp:`` and ``media:`` blocks of config.yaml: media transport and the rooms' audio.

Kept out of ``bridge/config.py`` (near its size limit).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CodecName = Literal["PCMU", "PCMA", "G722", "opus"]
ALL_CODECS: tuple[CodecName, ...] = ("opus", "G722", "PCMU", "PCMA")


class FrozenModel(BaseModel):
    """Every config block: unknown keys are errors, values never change after loading."""
    model_config = ConfigDict(extra="forbid", frozen=True)


class RtpConfig(FrozenModel):
    host: str = "0.0.0.0"
    port_min: int = Field(default=20000, ge=1024, le=65534)
    port_max: int = Field(default=29999, ge=1025, le=65535)
    inactivity_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    jitter_min_ms: int = Field(default=20, ge=0, le=1000)
    jitter_max_ms: int = Field(default=200, ge=20, le=2000)
    # Strict RTP source (README "Security"): a new source address is learnt only this long
    # after the answer or an offer that moved the address; later only the same stream
    # (SSRC and sequence) may move (NAT rebinding). 0 turns learning off after the first latch.
    learning_window_s: float = Field(default=3.0, ge=0, le=60)
    # Reflection bound: after the ACK, RTP goes to an address we never heard from for this
    # long, then stops until the first packet from it (the inactivity timeout ends the call).
    unconfirmed_send_s: float = Field(default=0.4, gt=0, le=30)
    # Per-datagram socket calls (recvfrom/sendto, half the bridge's time at 500 callers) in a
    # worker process on another core; the mixing stays here. auto: on when this process may
    # run on two CPUs or more. If the worker fails, IO falls back into the bridge process.
    io_worker: Literal["auto"] | bool = "auto"

    @model_validator(mode="after")
    def _range(self) -> RtpConfig:
        if self.port_max <= self.port_min:
            raise ValueError("port_max must be greater than port_min")
        if self.jitter_max_ms < self.jitter_min_ms:
            raise ValueError("jitter_max_ms must be at least jitter_min_ms")
        return self


class MediaConfig(FrozenModel):
    default_rate: Literal[8000, 16000, 48000] = 16000
    codecs: tuple[CodecName, ...] = ALL_CODECS
    # Mix only the K loudest talkers (0: everyone). 4 by default: more simultaneous voices are
    # not intelligible anyway, and a room full of open microphones then costs what a 4-talker
    # room costs (README "Media plane").
    max_talkers: int = Field(default=4, ge=0, le=1000)
    # 48k: PESQ 3.02 vs 2.91 at 32k under 10 % talker loss (README "Audio quality under loss");
    # less than G.711 on the wire. A peer's fmtp maxaveragebitrate lowers it (RFC 7587).
    opus_bitrate: int = Field(default=48000, ge=6000, le=510000)
    # libopus complexity of streams many legs share (the common mix) and of one a leg hears alone
    # (a talker's mix-minus): 10 costs 1.7x 5 and scores +0.2 PESQ; shared ones are few per room.
    opus_complexity: int = Field(default=10, ge=0, le=10)
    opus_talker_complexity: int = Field(default=5, ge=0, le=10)
    # Loss (%) our Opus encodes plan for. "auto": per listener, from its RTCP receiver reports
    # (0 until a report shows loss, then 5/10/20 %; bridge/media/opus_loss.py), so in-band FEC
    # only goes to listeners who lose packets. A number: that loss for every Opus listener.
    # libopus adds FEC only when it is high enough for the bitrate (README "Audio quality under loss").
    opus_expected_loss: Annotated[int, Field(ge=0, le=100)] | Literal["auto"] = "auto"
    # Extra jitter-buffer depth for Opus callers so a lost packet's successor is already
    # here and its FEC can rebuild it; 0: FEC only when network jitter holds packets anyway.
    opus_fec_lookahead_ms: Literal[0, 20] = 0
    # Opus callers' jitter buffer grows by one frame while it observes losses (so the next
    # packet, carrying the lost one's FEC, is here when the gap is due) and drops it again
    # after 3 s without a loss; false: FEC only when jitter holds packets anyway.
    opus_loss_depth: bool = True
    # The same for G.711 callers: their concealment bridges a gap from both sides when the
    # packet after it is buffered (README "Audio quality under loss").
    g711_loss_depth: bool = True
    # An Opus caller's frames that its encoder marks inactive (silence, steady noise: the VAD
    # flag) are not decoded while that caller is out of the mix (README "Media plane").
    opus_skip_inactive: bool = True
    # While one G.711 or G.722 caller is all a listener of the same codec hears, the listener is
    # sent that caller's own codes instead of the room's re-encode (README "Sole-talker passthrough").
    sole_talker_passthrough: bool = True
    # Decoding an audio file (upload, fetched URL, hold music) stops and refuses it past this much
    # audio: a small file that expands to hours (a decompression bomb) cannot exhaust memory.
    decode_max_seconds: float = Field(default=900.0, gt=0, le=86400)
