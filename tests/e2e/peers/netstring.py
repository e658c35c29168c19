"""Netstring framing (``LEN:payload,``) as spoken by baresip's ctrl_tcp module."""

from __future__ import annotations


class NetstringError(ValueError):
    """The peer sent bytes that are not a netstring."""


def encode(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class NetstringDecoder:
    """Incremental decoder: feed bytes as they arrive, collect complete payloads."""

    MAX_LEN = 1 << 20

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            colon = self._buf.find(b":")
            if colon < 0:
                if len(self._buf) > 10:
                    raise NetstringError(f"no length prefix in {bytes(self._buf[:20])!r}")
                return out
            digits = bytes(self._buf[:colon])
            if not digits.isdigit():
                raise NetstringError(f"bad length prefix {digits[:20]!r}")
            size = int(digits)
            if size > self.MAX_LEN:
                raise NetstringError(f"netstring of {size} bytes is too large")
            end = colon + 1 + size
            if len(self._buf) < end + 1:
                return out
            if self._buf[end] != ord(","):
                raise NetstringError("netstring not terminated by ','")
            out.append(bytes(self._buf[colon + 1 : end]))
            del self._buf[: end + 1]
