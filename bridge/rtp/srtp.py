"""SRTP with SDES keys (RFC 3711, RFC 4568): key lines for SDP and per-leg protect/unprotect.

Only AES_CM_128_HMAC_SHA1_80 is offered and accepted: every SDES client has it and its
SRTCP tag is the same 80 bits. Each side encrypts what it sends with the key in its own
SDP and decrypts with the peer's key (RFC 4568 6.1). libsrtp (via ``pylibsrtp``) does the
cryptography; a packet that fails authentication or the replay check is dropped and
counted, exactly like a stranger's packet: it never reaches a parser.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

import pylibsrtp

SUITE = "AES_CM_128_HMAC_SHA1_80"
KEY_SALT_BYTES = 30          # 128-bit master key + 112-bit master salt
POLICIES = ("off", "optional", "required")


class CryptoError(ValueError):
    """An a=crypto line we cannot use."""


@dataclass(frozen=True, slots=True)
class CryptoLine:
    tag: int
    suite: str
    key: bytes               # key || salt, 30 bytes

    def serialize(self) -> str:
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """What a negotiated SRTP leg needs: our sending key and the peer's."""

    tag: int
    local_key: bytes
    remote_key: bytes


def new_key() -> bytes:
    return secrets.token_bytes(KEY_SALT_BYTES)


def parse_crypto(value: str) -> CryptoLine:
    """One ``a=crypto`` value (``<tag> <suite> inline:<key||salt>[|lifetime][|MKI:len] [params]``).
    Raises CryptoError for another suite, a bad key, an MKI or session parameters we do not
    implement (refusing is better than silently ignoring, e.g. UNENCRYPTED_SRTP)."""
    parts = value.split()
    if len(parts) < 3 or not parts[0].isascii() or not parts[0].isdigit() or len(parts[0]) > 9:
        raise CryptoError("malformed a=crypto")
    if parts[1] != SUITE:
        raise CryptoError(f"crypto suite {parts[1][:40]!r} not supported")
    if len(parts) > 3:
        raise CryptoError("SRTP session parameters not supported")
    method, _, params = parts[2].partition(":")
    if method != "inline" or ";" in params:          # several keys (";"): not supported
        raise CryptoError("unsupported key method")
    fields = params.split("|")
    if len(fields) > 2 or (len(fields) == 2 and ":" in fields[1]):
        raise CryptoError("MKI not supported")
    try:
        key = base64.b64decode(fields[0], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("key is not base64") from exc
    if len(key) != KEY_SALT_BYTES:
        raise CryptoError(f"key||salt must be {KEY_SALT_BYTES} bytes, not {len(key)}")
    return CryptoLine(int(parts[0]), parts[1], key)


def pick_crypto(values: list[str]) -> CryptoLine | None:
    """The first offered a=crypto line we can use (None if none)."""
    for value in values:
        try:
            return parse_crypto(value)
        except CryptoError:
            continue
    return None


class SrtpContext:
    """One leg's SRTP sessions: outbound with our key, inbound with the peer's.

    Counters: ``rx_dropped`` (failed authentication, replay, too short), ``tx_errors``.
    """

    __slots__ = ("_rx", "_tx", "rx_dropped", "tx_errors")

    def __init__(self, keys: SrtpKeys) -> None:
        tx = pylibsrtp.Policy(key=keys.local_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        rx = pylibsrtp.Policy(key=keys.remote_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self._tx = pylibsrtp.Session(tx)
        self._rx = pylibsrtp.Session(rx)
        self.rx_dropped = 0
        self.tx_errors = 0

    def protect(self, packet: bytes) -> bytes | None:
        try:
            return self._tx.protect(packet)
        except (pylibsrtp.Error, ValueError):
            self.tx_errors += 1
            return None

    def protect_rtcp(self, packet: bytes) -> bytes | None:
        try:
            return self._tx.protect_rtcp(packet)
        except (pylibsrtp.Error, ValueError):
            self.tx_errors += 1
            return None

    def unprotect(self, packet: bytes) -> bytes | None:
        try:
            return self._rx.unprotect(packet)
        except (pylibsrtp.Error, ValueError):
            self.rx_dropped += 1
            return None

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        try:
            return self._rx.unprotect_rtcp(packet)
        except (pylibsrtp.Error, ValueError):
            self.rx_dropped += 1
            return None
