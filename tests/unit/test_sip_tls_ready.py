"""Readiness sees the SIP TLS listener (``/readyz`` reports ``SIP not listening on tls``)."""

from __future__ import annotations

import asyncio
from pathlib import Path


def test_readiness_names_a_tls_listener_that_is_not_serving(tmp_path: Path) -> None:
    from bridge.adapters.sip_transport import SipTransport, server_tls_context
    from bridge.sip import SipEndpoint
    from tests.support.tls import self_signed

    async def run() -> None:
        cert = self_signed(tmp_path)
        sip = SipTransport(SipEndpoint(contact_host="127.0.0.1", contact_port=5060), lambda: None,
                           asyncio.get_running_loop())
        assert sip.bound(("tls",)) == ["tls"]           # configured but not started
        await sip.start_tls("127.0.0.1", 0, server_tls_context(str(cert.cert), str(cert.key)))
        assert sip.bound(("tls",)) == []
        sip.close()
        assert sip.bound(("tls",)) == ["tls"]

    asyncio.run(run())
