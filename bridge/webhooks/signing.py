"""Signing outbound requests the way each vendor signs its own, so their SDKs verify ours unchanged.

Telnyx: Ed25519 over the UTF-8 bytes of ``"{timestamp}|{raw body}"``; headers
``telnyx-signature-ed25519`` (base64 of the 64-byte signature) and ``telnyx-timestamp`` (Unix
seconds). The receiver verifies with the account's 32-byte public key (base64), which the
bridge serves at ``GET /v2/webhooks/keys``.

FreeClimb: ``FreeClimb-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>``
with the account's signing secret (``sigsec_...``).

The timestamp is an argument (the caller passes the current time), so this module stays pure.
Crypto is ``cryptography``'s Ed25519 and the standard library's HMAC; nothing hand-written.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

TELNYX_SIGNATURE = "telnyx-signature-ed25519"
TELNYX_TIMESTAMP = "telnyx-timestamp"
FREECLIMB_SIGNATURE = "FreeClimb-Signature"


class TelnyxSigner:
    def __init__(self, private_key: bytes) -> None:
        """``private_key``: the 32-byte Ed25519 seed."""
        self._key = Ed25519PrivateKey.from_private_bytes(private_key)

    @staticmethod
    def generate_private_key() -> bytes:
        return secrets.token_bytes(32)

    @property
    def public_key(self) -> bytes:
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode("ascii")

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        signed = str(timestamp).encode("ascii") + b"|" + body
        signature = self._key.sign(signed)
        return {
            TELNYX_SIGNATURE: base64.b64encode(signature).decode("ascii"),
            TELNYX_TIMESTAMP: str(timestamp),
        }


class FreeClimbSigner:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("empty FreeClimb signing secret")
        self.secret = secret

    @staticmethod
    def generate_secret() -> str:
        return "sigsec_" + secrets.token_hex(20)

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        message = str(timestamp).encode("ascii") + b"." + body
        digest = hmac.new(self.secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
        return {FREECLIMB_SIGNATURE: f"t={timestamp},v1={digest}"}
