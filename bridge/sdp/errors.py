"""SDP error types.

SdpError (the body is not usable SDP) is a NegotiationError, so a caller that
maps NegotiationError to 488 never crashes on a malformed body; a caller that
wants to answer 400 for those catches SdpError first.

``warn_code`` is the RFC 3261 §20.43 warning code the SIP layer puts in its
``Warning`` header (301 incompatible network address formats, 304 media type not
available, 305 incompatible media format, 306 attribute not understood, 307 session
description parameter not understood, 399 miscellaneous).
"""

from __future__ import annotations


class NegotiationError(ValueError):
    """No acceptable media; the SIP layer answers 488 with ``reason``."""

    def __init__(self, reason: str, warn_code: int = 399) -> None:
        super().__init__(reason)
        self.reason = reason
        self.warn_code = warn_code


class SdpError(NegotiationError):
    """The input is not usable SDP; ``reason`` says why (for a 400 Warning)."""

    def __init__(self, reason: str, warn_code: int = 399) -> None:
        super().__init__(reason, warn_code)
