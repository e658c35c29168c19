"""Per-room SRTP policy with real softphones: a room with ``srtp: required`` on a bridge whose
global ``sip.srtp`` is ``optional``. Dialled directly, a plain offer gets 488; through the access
number (answered under the global policy) a plain caller hears why and is hung up once it chooses
the room, while an SRTP caller over TLS gets in."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.peers.baresip import Baresip
from tests.e2e.peers.ports import PortAllocator
from tests.e2e.test_tls_srtp import _tls_phone
from tests.support.bridge_proc import BridgeProcess, default_rooms
from tests.support.tls import self_signed

pytestmark = [pytest.mark.e2e]


def _wait_log(bridge: BridgeProcess, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in bridge.log_path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in bridge log:\n{bridge.log_tail()}")
        time.sleep(0.1)


def test_required_room_refuses_plain_callers_direct_and_via_the_access_number(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path, need_baresip: None
) -> None:
    cert = self_signed(tmp_path / "tls")
    tls_port = ports.port()
    rooms = [*default_rooms(), {"name": "vault", "dial_in_code": "7001", "account": "acct1", "srtp": "required"}]
    bridge = bridge_factory(rooms=rooms, sip={"srtp": "optional",
                                              "tls": {"port": tls_port, "cert": str(cert.cert), "key": str(cert.key)}})
    plain = Baresip("plain", tmp_path, ports.baresip())
    secure = _tls_phone("secure", tmp_path, ports, cert, None)
    with plain, secure:         # entering starts them
        # Direct: the R-URI names the room, its policy judges the offer.
        plain.dial(f"sip:vault@127.0.0.1:{bridge.sip_port}")
        closed = plain.wait_event("CALL_CLOSED", timeout=10)
        assert "488" in str(closed.get("param")), closed
        # The same plain phone reaches other rooms (the global policy is optional).
        plain.dial(f"sip:room1@127.0.0.1:{bridge.sip_port}")
        plain.wait_event("CALL_ESTABLISHED", timeout=10)
        plain.hangup()
        plain.wait_event("CALL_CLOSED", timeout=10)
        # Access number: answered plain, then refused with a prompt once the code names the vault.
        plain.dial(f"sip:conference@127.0.0.1:{bridge.sip_port}")
        plain.wait_event("CALL_ESTABLISHED", timeout=10)
        time.sleep(1.0)
        plain.send_dtmf("7001#")
        plain.wait_event("CALL_CLOSED", timeout=20)      # the encryption_required prompt, then our BYE
        _wait_log(bridge, "refused: encryption_required")
        # An SRTP caller over TLS through the access number gets in.
        secure.dial(f"sip:conference@127.0.0.1:{tls_port};transport=tls")
        secure.wait_event("CALL_ESTABLISHED", timeout=10)
        menc = secure.wait_event("CALL_MENC", timeout=5)
        assert str(menc.get("param", "")).endswith("audio,AES_CM_128_HMAC_SHA1_80"), menc
        time.sleep(1.0)
        secure.send_dtmf("7001#")
        _wait_log(bridge, "joined conf_vault as member")
        status, body = bridge.api("GET", "/v2/conferences/conf_vault/participants")
        assert status == 200 and [p["status"] for p in body["participants"]] == ["connected"], body
        assert body["participants"][0]["phone_number"] == "secure"
        secure.hangup()
        secure.wait_event("CALL_CLOSED", timeout=10)
