"""SIP over TLS and SRTP (SDES) with real softphones: an SRTP-mandatory baresip over TLS and a
plain-RTP baresip over UDP in one room hear each other; an SRTP-required bridge refuses plain
offers with 488 and a Warning that says why."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.peers import audio
from tests.e2e.peers.baresip import Baresip
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.support.tls import CertFiles, self_signed

pytestmark = [pytest.mark.e2e]


def _bridge(factory: Callable[..., BridgeProcess], ports: PortAllocator, cert: CertFiles,
            srtp: str) -> tuple[BridgeProcess, int]:
    tls_port = ports.port()
    bridge = factory(sip={"srtp": srtp, "tls": {"port": tls_port, "cert": str(cert.cert), "key": str(cert.key)}})
    return bridge, tls_port


def _tls_phone(name: str, tmp_path: Path, ports: PortAllocator, cert: CertFiles, mic: Path | None,
               mediaenc: str = "srtp-mand") -> Baresip:
    return Baresip(name, tmp_path, ports.baresip(), mic_wav=mic, mic_seconds=20,
                   extra_config={"sip_certificate": str(cert.combined), "sip_cafile": str(cert.cert)},
                   extra_modules=("srtp",), aor_params=";transport=tls",
                   extra_account_params=f";mediaenc={mediaenc}" if mediaenc else "")


def _invite(proto: str, tls_port: int, cert: CertFiles, scheme: str = "sip", crypto: str = "") -> bytes:
    """One INVITE over TLS from a Python client that verifies the bridge's certificate."""
    sdp = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio 40000 {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n{crypto}").encode()
    call_id = uuid.uuid4().hex
    head = (f"INVITE {scheme}:room1@127.0.0.1:{tls_port};transport=tls SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK{call_id[:12]};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:py@127.0.0.1>;tag=a1\r\nTo: <sip:room1@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:py@127.0.0.1:5099;transport=tls>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n").encode()
    ctx = ssl.create_default_context(cafile=str(cert.cert))
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        conn.sendall(head + sdp)
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data += conn.recv(65536)
            final = [line for line in data.split(b"\r\n") if line.startswith(b"SIP/2.0 ")
                     and not line.startswith(b"SIP/2.0 1")]
            if final:
                return data
    raise AssertionError(f"no final response over TLS: {data!r}")


def test_srtp_required_refuses_plain_offers_with_488(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path, need_baresip: None
) -> None:
    cert = self_signed(tmp_path / "tls")
    bridge, tls_port = _bridge(bridge_factory, ports, cert, "required")
    # A Python TLS client that verifies the certificate: the plain offer's 488 says why.
    reply = _invite("RTP/AVP", tls_port, cert)
    reply = reply[reply.index(b"SIP/2.0 4"):]
    assert reply.startswith(b"SIP/2.0 488"), reply[:200]
    assert b"Warning: 302" in reply and b"SRTP required" in reply, reply
    assert b"SIP/2.0/TLS" in reply
    # The same client offering SRTP (sips: URI) is answered with RTP/SAVP and a key of our own.
    key = "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(os.urandom(30)).decode() + "\r\n"
    ok = _invite("RTP/SAVP", tls_port, cert, scheme="sips", crypto=key)
    ok = ok[ok.index(b"SIP/2.0 2"):]
    assert b"m=audio" in ok and b" RTP/SAVP 0" in ok, ok
    assert b"a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:" in ok and key.encode()[9:] not in ok, ok
    assert f"Contact: <sips:127.0.0.1:{tls_port}>".encode() in ok, ok     # the TLS listener, sips: (RFC 5630)
    # A real plain-RTP softphone over UDP is refused the same way.
    plain = Baresip("plain", tmp_path, ports.baresip())
    with plain:                 # entering starts it
        plain.dial(f"sip:room1@127.0.0.1:{bridge.sip_port}")
        closed = plain.wait_event("CALL_CLOSED", timeout=10)
        assert "488" in str(closed.get("param")), closed
        assert not any(e["type"] == "CALL_ESTABLISHED" for e in plain.events)


@pytest.mark.parametrize("srtp_first", [True, False], ids=["srtp-first", "plain-first"])
def test_srtp_over_tls_and_plain_rtp_callers_hear_each_other(
    bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, tmp_path: Path, need_baresip: None,
    srtp_first: bool,
) -> None:
    cert = self_signed(tmp_path / "tls")
    bridge, tls_port = _bridge(bridge_factory, ports, cert, "optional")
    secure_mic = audio.tone_wav(tmp_path / "secure.wav", 700.0, 20, 8000, 1)
    plain_mic = audio.tone_wav(tmp_path / "plain.wav", 1300.0, 20, 8000, 1)
    secure = _tls_phone("secure", tmp_path, ports, cert, secure_mic)
    plain = Baresip("plain", tmp_path, ports.baresip(), mic_wav=plain_mic, mic_seconds=20)
    with secure, plain:         # entering starts them
        calls = [(secure, f"sip:room2@127.0.0.1:{tls_port}"), (plain, f"sip:room2@127.0.0.1:{bridge.sip_port}")]
        for phone, uri in calls if srtp_first else calls[::-1]:
            phone.dial(uri)
            phone.wait_event("CALL_ESTABLISHED", timeout=10)
        menc = secure.wait_event("CALL_MENC", timeout=5)
        # baresip's media-encryption event: SDES keys agreed for the audio stream.
        assert str(menc.get("param", "")).endswith("audio,AES_CM_128_HMAC_SHA1_80"), menc
        assert menc.get("peeruri", "").endswith(";transport=tls"), menc
        time.sleep(4.0)
        for phone in (secure, plain):
            phone.hangup()
            phone.wait_event("CALL_CLOSED", timeout=10)
        for phone, own, other in ((secure, 700.0, 1300.0), (plain, 1300.0, 700.0)):
            samples, rate = phone.heard(timeout=10.0)
            samples = audio.segment(samples, rate, 1.0, len(samples) / rate - 0.3)
            assert audio.has_tone(samples, rate, other, min_rel_db=-15, min_seconds=1.0), (
                f"{phone.name} did not hear {other} Hz: {audio.tone_level_db(samples, rate, other):.1f} dB")
            assert audio.tone_level_db(samples, rate, own) < -30, f"{phone.name} heard itself"
