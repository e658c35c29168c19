"""Per-room SRTP policy (rooms[].srtp, the API's srtp field) over the global sip.srtp, in the call
core with scripted phones; and the access-number case, where the room is known only after answer."""

from __future__ import annotations

import base64
import os
import types
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.config import ConfigError, parse_config
from bridge.control.errors import ControlError
from bridge.control.validation import KNOWN_FIELDS
from tests.unit.call_harness import Bridge, Phone


def srtp_phone(bridge: Bridge) -> Phone:
    """A phone offering RTP/SAVP with an SDES key (the harness's fake sockets carry its packets as
    they are; the cryptography itself is tested against real sockets in test_srtp.py)."""
    phone = bridge.phone()
    key = base64.b64encode(os.urandom(30)).decode()

    def sdp(self: Phone, direction: str = "sendrecv") -> bytes:
        plain = Phone.sdp(self, direction).decode()
        return (plain.replace("RTP/AVP", "RTP/SAVP")
                + f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n").encode()

    phone.sdp = types.MethodType(sdp, phone)  # type: ignore[method-assign]
    return phone


def keys(bridge: Bridge, phone: Phone, digits: str) -> None:
    for d in digits:
        phone.press(d)
        bridge.run(0.1)


def warning(phone: Phone) -> str:
    final = [r for r in phone.responses if r.status >= 200][-1]
    return str(final.headers.get("warning") or "")


@pytest.mark.parametrize(("global_policy", "room_policy", "plain", "savp"), [
    ("off", "required", 488, 200),
    ("off", "optional", 200, 200),
    ("required", "off", 200, 488),
    ("required", "optional", 200, 200),
    ("optional", None, 200, 200),          # no room policy: the global one
    ("required", None, 488, 200),
])
def test_the_room_policy_overrides_the_global_one_for_direct_calls(
    tmp_path: Path, global_policy: str, room_policy: str | None, plain: int, savp: int
) -> None:
    bridge = Bridge(tmp_path, sip={"advertise_host": "192.0.2.1", "srtp": global_policy})
    bridge.directory.add("conf_s", srtp=room_policy)
    bridge.directory.add("conf_other")
    plain_phone, savp_phone = bridge.phone(), srtp_phone(bridge)
    plain_phone.dial("conf_s")
    savp_phone.dial("conf_s")
    assert (plain_phone.last_status(), savp_phone.last_status()) == (plain, savp)
    if plain == 488:
        assert "SRTP required" in warning(plain_phone)
    ok = next(r for r in savp_phone.responses if r.status == 200) if savp == 200 else None
    if ok is not None:
        assert b"a=crypto:1 AES_CM_128_HMAC_SHA1_80" in ok.body
    # Another room without a policy still follows the global one.
    other = bridge.phone()
    other.dial("conf_other")
    assert other.last_status() == (488 if global_policy == "required" else 200)


def test_access_number_caller_without_srtp_is_refused_by_a_required_room(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path)           # sip.srtp off: the access number answers plain RTP
    bridge.directory.add("conf_r", code="4321", srtp="required")
    bridge.directory.add("conf_p", code="5555")
    caller = bridge.phone()
    caller.call("conference")
    bridge.run(0.3)
    keys(bridge, caller, "4321#")
    bridge.run(0.6)
    assert "encryption_required" in bridge.prompts.played
    assert any(r.method == "BYE" for r in caller.requests)
    assert not bridge.core.book.connected("conf_r")
    # The same caller into a room without a policy gets in.
    other = bridge.phone()
    other.call("conference")
    bridge.run(0.3)
    keys(bridge, other, "5555#")
    bridge.run(0.2)
    assert len(bridge.core.book.connected("conf_p")) == 1


def test_access_number_caller_with_srtp_joins_a_required_room(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path, sip={"advertise_host": "192.0.2.1", "srtp": "optional"})
    bridge.directory.add("conf_r", code="4321", srtp="required")
    caller = srtp_phone(bridge)
    caller.call("conference")
    assert caller.transport is not None and caller.transport.srtp_keys is not None
    bridge.run(0.3)
    keys(bridge, caller, "4321#")
    bridge.run(0.2)
    assert "encryption_required" not in bridge.prompts.played
    assert len(bridge.core.book.connected("conf_r")) == 1


def test_rooms_srtp_in_config_and_the_api_field(tmp_path: Path) -> None:
    cfg = parse_config({"rooms": [{"name": "secure", "srtp": "required"}, {"name": "open"}]})
    assert [r.srtp for r in cfg.rooms] == ["required", None]
    with pytest.raises(ConfigError, match="srtp"):
        parse_config({"rooms": [{"name": "bad", "srtp": "sometimes"}]})
    assert "srtp" in KNOWN_FIELDS
    from bridge.control.validation import _SIMPLE
    attr, parse = _SIMPLE["srtp"]
    now = datetime.now(UTC)
    assert attr == "srtp" and parse("required", now) == "required" and parse(None, now) is None
    with pytest.raises(ControlError):
        parse("sometimes", now)
