"""SRTP (SDES): key lines, protect/unprotect, SDP negotiation, the per-leg socket wrapper."""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
import time
from types import SimpleNamespace

import pytest

from bridge.adapters.rtp_transport import BatchReceiver, LegPort, LegSockets, PortAllocator
from bridge.rtp.srtp import CryptoError, SrtpContext, SrtpKeys, new_key, parse_crypto
from bridge.sdp.errors import NegotiationError
from bridge.sdp.model import parse_sdp
from bridge.sdp.negotiate import accept_answer, answer_offer, build_offer
from tests.e2e.peers.ports import PortAllocator as PeerPorts


def _rtp(seq: int, payload: bytes = b"\x55" * 160) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234) + payload


def _pair() -> tuple[SrtpContext, SrtpContext]:
    a, b = new_key(), new_key()
    return SrtpContext(SrtpKeys(1, a, b)), SrtpContext(SrtpKeys(1, b, a))


def test_round_trip_rtp_and_rtcp() -> None:
    alice, bob = _pair()
    packet = _rtp(1)
    wire = alice.protect(packet)
    assert wire is not None and len(wire) == len(packet) + 10 and wire[12:172] != packet[12:]
    assert bob.unprotect(wire) == packet
    rr = struct.pack("!BBHI", 0x80, 201, 1, 0x1234)
    wire_rtcp = alice.protect_rtcp(rr)
    assert wire_rtcp is not None and len(wire_rtcp) == 22
    assert bob.unprotect_rtcp(wire_rtcp) == rr


def test_tampered_replayed_and_foreign_packets_are_dropped_and_counted() -> None:
    alice, bob = _pair()
    wire = alice.protect(_rtp(7))
    assert wire is not None
    tampered = bytearray(wire)
    tampered[40] ^= 1
    assert bob.unprotect(bytes(tampered)) is None
    assert bob.unprotect(wire) is not None
    assert bob.unprotect(wire) is None              # replay
    assert bob.unprotect(_rtp(8)) is None           # plain RTP from anyone
    assert bob.unprotect(b"\x80\x00\x00") is None   # too short
    stranger, _ = _pair()
    assert bob.unprotect(stranger.protect(_rtp(9)) or b"") is None
    assert bob.rx_dropped == 5


def test_crypto_line_parsing() -> None:
    key = base64.b64encode(new_key()).decode()
    line = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31")
    assert line.tag == 1 and len(line.key) == 30
    for bad in (f"1 AES_CM_128_HMAC_SHA1_32 inline:{key}", f"1 AES_CM_128_HMAC_SHA1_80 inline:{key[:-4]}",
                f"1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31|1:4",
                f"1 AES_CM_128_HMAC_SHA1_80 inline:{key} UNENCRYPTED_SRTP", "x AES_CM_128_HMAC_SHA1_80 inline:abc", "1 AES_CM_128_HMAC_SHA1_80 inline:!!"):
        with pytest.raises(CryptoError):
            parse_crypto(bad)


def _offer(proto: str, crypto: bool) -> bytes:
    key = base64.b64encode(new_key()).decode()
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
             f"m=audio 4000 {proto} 0 101", "a=rtpmap:101 telephone-event/8000"]
    if crypto:
        lines.append(f"a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{key}")
        lines.append(f"a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{key}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _answer(offer: bytes, policy: str):  # type: ignore[no-untyped-def]
    return answer_offer(offer, ["PCMU"], "127.0.0.1", 5000, 1, 1, srtp=policy)


@pytest.mark.parametrize("policy", ["optional", "required"])
def test_savp_offer_is_answered_with_our_own_key(policy: str) -> None:
    offer = _offer("RTP/SAVP", True)
    media = _answer(offer, policy)
    assert media.srtp is not None and media.srtp.tag == 4
    m = parse_sdp(media.answer_sdp).media[0]
    assert m.proto == "RTP/SAVP" and m.port == 5000
    cryptos = [a.value for a in m.attributes if a.name == "crypto"]
    assert len(cryptos) == 1
    ours = parse_crypto(cryptos[0] or "")
    offered = parse_crypto(next(a.value for a in parse_sdp(offer).media[0].attributes
                                if a.name == "crypto" and (a.value or "").startswith("4")) or "")
    assert ours.tag == 4 and ours.key == media.srtp.local_key != offered.key == media.srtp.remote_key


def test_required_refuses_plain_offer_with_a_reason() -> None:
    with pytest.raises(NegotiationError) as err:
        _answer(_offer("RTP/AVP", False), "required")
    assert err.value.warn_code == 302 and "SRTP required" in err.value.reason
    with pytest.raises(NegotiationError):           # best-effort crypto on AVP is still not SRTP-mandatory
        _answer(_offer("RTP/AVP", True), "required")


def test_off_refuses_savp_and_ignores_optional_crypto() -> None:
    with pytest.raises(NegotiationError) as err:
        _answer(_offer("RTP/SAVP", True), "off")
    assert "SRTP is off" in err.value.reason
    media = _answer(_offer("RTP/AVP", True), "off")
    assert media.srtp is None and b"crypto" not in media.answer_sdp


def test_optional_takes_best_effort_crypto_and_plain() -> None:
    media = _answer(_offer("RTP/AVP", True), "optional")
    assert media.srtp is not None and b"RTP/AVP" in media.answer_sdp and b"a=crypto:4" in media.answer_sdp
    assert _answer(_offer("RTP/AVP", False), "optional").srtp is None


def test_savp_without_usable_crypto_is_refused() -> None:
    with pytest.raises(NegotiationError):
        _answer(_offer("RTP/SAVP", False), "required")


def test_our_offer_and_the_answer() -> None:
    offer = build_offer(["PCMU"], "127.0.0.1", 5000, 1, 1, srtp="required")
    m = parse_sdp(offer).media[0]
    assert m.proto == "RTP/SAVP"
    answer = _answer(offer, "required")
    media = accept_answer(offer, answer.answer_sdp)
    assert media.srtp is not None and answer.srtp is not None
    assert media.srtp.local_key == answer.srtp.remote_key and media.srtp.remote_key == answer.srtp.local_key
    plain = b"".join(line + b"\r\n" for line in answer.answer_sdp.splitlines() if b"crypto" not in line)
    with pytest.raises(NegotiationError):
        accept_answer(offer, plain)


def test_leg_sockets_unprotect_before_delivery_and_protect_sends(ports: PeerPorts) -> None:
    lo = ports.block(4)
    loop = asyncio.new_event_loop()
    receiver = BatchReceiver()
    legs = LegSockets(PortAllocator("127.0.0.1", lo, lo + 4), receiver)
    got: list[bytes] = []
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        port = legs.bind(loop, lambda data, addr: got.append(data), lambda data, addr: None)
        ours, theirs = new_key(), new_key()
        far = SrtpContext(SrtpKeys(1, theirs, ours))
        session = SimpleNamespace(foreign=0)
        room = legs.room_port(session, steady_rx=True, srtp=SrtpKeys(1, ours, theirs))
        assert room.srtp and not room.steady_rx and LegPort.rx_lane([room]) is None
        assert LegPort.tx_lane([room]) is None
        peer.bind(("127.0.0.1", 0))
        good = far.protect(_rtp(1))
        assert good is not None
        bad = bytearray(far.protect(_rtp(2)) or b"")
        bad[-1] ^= 1
        for datagram in (bytes(bad), _rtp(3), good):
            peer.sendto(datagram, ("127.0.0.1", port))
        deadline = time.monotonic() + 2
        while len(got) < 1 and time.monotonic() < deadline:
            receiver.receive()      # what the adapter does before each tick
            receiver.drain()
            time.sleep(0.01)
        assert got == [_rtp(1)]
        assert legs.srtp is not None and legs.srtp.rx_dropped == 2 and session.foreign == 2
        legs.send_rtp(_rtp(5), peer.getsockname())
        peer.settimeout(2)
        wire, _ = peer.recvfrom(2048)
        assert wire != _rtp(5) and far.unprotect(wire) == _rtp(5)
    finally:
        peer.close()
        legs.close()
        receiver.close()
        loop.close()
