"""tutti-bridge codecs, imported as ``bridge_codecs`` (never ``codecs``: that is the stdlib)."""

from .base import Decoder, Encoder, Pcm
from .plc import Concealer
from .registry import CODEC_NAMES, CodecInfo, canonical_name, codec_info, make_decoder, make_encoder
from .resample import Resampler

__all__ = [
    "CODEC_NAMES",
    "CodecInfo",
    "Concealer",
    "Decoder",
    "Encoder",
    "Pcm",
    "Resampler",
    "canonical_name",
    "codec_info",
    "make_decoder",
    "make_encoder",
]
