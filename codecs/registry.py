"""Codec registry: build encoders/decoders and describe codecs for SDP by name."""

from __future__ import annotations

from typing import Any, NamedTuple

from .base import Decoder, Encoder
from .g711 import G711Decoder, G711Encoder
from .g722 import G722Decoder, G722Encoder
from .l16 import L16Decoder, L16Encoder
from .opus import OpusDecoder, OpusEncoder


class CodecInfo(NamedTuple):
    name: str                 # canonical SDP encoding name
    sample_rate: int          # PCM rate of encode()/decode()
    clock_rate: int           # RTP timestamp clock, as written in a=rtpmap
    default_pt: int | None    # static RTP payload type (RFC 3551), None: dynamic
    channels: int             # channel count in SDP (opus is always /2, RFC 7587)


CODEC_NAMES = ("PCMU", "PCMA", "G722", "opus", "L16")
_CANONICAL = {n.lower(): n for n in CODEC_NAMES}


def canonical_name(name: str) -> str:
    """SDP encoding names are case-insensitive; map to our canonical spelling."""
    try:
        return _CANONICAL[name.lower()]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; known: {', '.join(CODEC_NAMES)}") from None


def codec_info(name: str, sample_rate: int | None = None) -> CodecInfo:
    """Static facts about a codec; ``sample_rate`` picks the L16 variant (default 8000)."""
    canon = canonical_name(name)
    if canon in ("PCMU", "PCMA"):
        return CodecInfo(canon, 8000, 8000, 0 if canon == "PCMU" else 8, 1)
    if canon == "G722":
        return CodecInfo(canon, 16000, 8000, 9, 1)
    if canon == "opus":
        return CodecInfo(canon, 48000, 48000, None, 2)
    rate = sample_rate or 8000
    return CodecInfo(canon, rate, rate, None, 1)


def _rate_for(canon: str, sample_rate: int | None) -> int | None:
    if sample_rate is None or canon in ("L16", "opus"):
        return sample_rate
    fixed = codec_info(canon).sample_rate
    if sample_rate != fixed:
        raise ValueError(f"{canon} works at {fixed} Hz only, not {sample_rate}")
    return sample_rate


def _split_rate(name: str) -> tuple[str, int | None]:
    """``L16/16000`` names L16 at that rate (a room seating PCM at its own rate needs it)."""
    base, _, rate = name.partition("/")
    return base, int(rate) if rate.isdigit() else None


def make_encoder(name: str, sample_rate: int | None = None, **opts: Any) -> Encoder:
    """Encoder for ``name``. ``opts``: frame_ms for all; Opus also takes bitrate,
    complexity, fec, packet_loss, application, dtx."""
    name, named_rate = _split_rate(name)
    sample_rate = sample_rate or named_rate
    canon = canonical_name(name)
    rate = _rate_for(canon, sample_rate)
    if canon in ("PCMU", "PCMA"):
        return G711Encoder(canon, **opts)
    if canon == "G722":
        return G722Encoder(**opts)
    if canon == "opus":
        return OpusEncoder(sample_rate=rate or 48000, **opts)
    return L16Encoder(sample_rate=rate or 8000, **opts)


def make_decoder(name: str, **opts: Any) -> Decoder:
    """Decoder for ``name``. ``opts``: frame_ms; sample_rate for L16 (and Opus output)."""
    name, named_rate = _split_rate(name)
    canon = canonical_name(name)
    rate = _rate_for(canon, opts.pop("sample_rate", None) or named_rate)
    if canon in ("PCMU", "PCMA"):
        return G711Decoder(canon, **opts)
    if canon == "G722":
        return G722Decoder(**opts)
    if canon == "opus":
        return OpusDecoder(sample_rate=rate or 48000, **opts)
    return L16Decoder(sample_rate=rate or 8000, **opts)
