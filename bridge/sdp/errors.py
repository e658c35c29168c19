"""SDP error types.

SdpError (the body is not usable SDP) is a NegotiationError, so a caller that
maps NegotiationError to 488 never crashes on a malformed body; a caller that
wants to answer 400 for those catches SdpError first.
"""

from __future__ import annotations


class NegotiationError(ValueError):
    """No acceptable media; the SIP layer answers 488 with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SdpError(NegotiationError):
    """The input is not usable SDP; ``reason`` says why (for a 400 Warning)."""
