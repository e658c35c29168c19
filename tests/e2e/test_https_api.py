"""HTTPS for the API (``http.tls``): a client that verifies the certificate gets the REST API,
the join links say https, plain HTTP on the port gets nothing, and headless Chromium, trusting
exactly that certificate's key (an SPKI pin, no blanket ignore), joins from the join page over it."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.e2e.peers import audio
from tests.support.bridge_proc import DEMO_TOKEN, BridgeProcess
from tests.support.tls import self_signed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CHROMIUM = "/usr/bin/chromium"


def _https_bridge(factory: Callable[..., BridgeProcess], tmp_path: Path) -> BridgeProcess:
    cert = self_signed(tmp_path / "tls")
    return factory(http={"tls": {"cert": str(cert.cert), "key": str(cert.key)}})


def test_verified_client_gets_the_api_over_https_and_plain_http_gets_nothing(
    bridge_factory: Callable[..., BridgeProcess], tmp_path: Path,
) -> None:
    bridge = _https_bridge(bridge_factory, tmp_path)
    assert bridge.base_url.startswith("https://")
    status, body = bridge.api("GET", "/v2/conferences")      # verifies against the test CA
    assert status == 200
    conf = next(c for c in body["conferences"] if c["name"] == "room1")
    assert conf["join_url"].startswith(f"https://127.0.0.1:{bridge.http_port}/conferences/")
    # The unauthenticated join details, and the page itself, over verified TLS.
    ctx = bridge.ssl_context()
    with urllib.request.urlopen(conf["join_url"], timeout=5, context=ctx) as resp:
        assert resp.status == 200 and resp.read().startswith(b'{"id": "conf_room1"')
    page = urllib.request.Request(conf["join_url"], headers={"Accept": "text/html"})
    with urllib.request.urlopen(page, timeout=5, context=ctx) as resp:
        assert resp.status == 200 and b"<form" in resp.read().lower()
    # A client that does not trust the certificate is refused by its own verification.
    with pytest.raises(urllib.error.URLError) as err:
        urllib.request.urlopen(bridge.base_url + "/openapi.json", timeout=5,
                               context=ssl.create_default_context())
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError)
    # Plain HTTP to the HTTPS port gets no API answer (the TLS layer refuses it).
    with socket.create_connection(("127.0.0.1", bridge.http_port), timeout=5) as sock:
        sock.sendall(f"GET /v2/conferences HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {DEMO_TOKEN}\r\n\r\n".encode())
        sock.settimeout(5)
        reply = b""
        try:
            while chunk := sock.recv(4096):
                reply += chunk
        except OSError:
            pass
    assert b"conferences" not in reply and not reply.startswith(b"HTTP/1.1 200")


def _spki_pin(cert_pem: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def test_browser_joins_from_the_join_page_over_https(
    bridge_factory: Callable[..., BridgeProcess], tmp_path: Path,
) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is not installed; run scripts/test.sh (it installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    bridge = _https_bridge(bridge_factory, tmp_path)
    assert bridge.tls_ca is not None
    status, body = bridge.api("GET", "/v2/conferences")
    conf = next(c for c in body["conferences"] if c["name"] == "room1")
    wav = audio.tone_wav(tmp_path / "mic.wav", 880.0, 20.0, 48000, 1)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            f"--ignore-certificate-errors-spki-list={_spki_pin(Path(bridge.tls_ca))}",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}", "--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(conf["join_url"])
            assert page.evaluate("window.isSecureContext") is True
            page.get_by_label("Your name").fill("Ada")
            page.keyboard.press("Enter")
            page.wait_for_selector("#call:not([hidden])", timeout=15000)
            deadline = time.monotonic() + 10
            names: list[str] = []
            while time.monotonic() < deadline and "Ada" not in names:
                _, listing = bridge.api("GET", f"/v2/conferences/{conf['id']}/participants")
                names = [x["name"] for x in listing["participants"] if x["status"] == "connected"]
                time.sleep(0.2)
            assert "Ada" in names
        finally:
            browser.close()


def test_a_tls_handshake_that_never_comes_is_closed_at_the_header_timeout(
    bridge_factory: Callable[..., BridgeProcess], tmp_path: Path,
) -> None:
    cert = self_signed(tmp_path / "tls")
    bridge = bridge_factory(http={"header_timeout_s": 1.5, "tls": {"cert": str(cert.cert), "key": str(cert.key)}})
    with socket.create_connection(("127.0.0.1", bridge.http_port), timeout=5) as silent:
        silent.settimeout(0.2)
        start = time.monotonic()
        closed_after = None
        while time.monotonic() - start < 8:             # bounded: the timeout is 1.5 s
            try:
                if silent.recv(1024) == b"":
                    closed_after = time.monotonic() - start
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - start
                break
    assert closed_after is not None and closed_after >= 1.2, closed_after
    assert bridge.api("GET", "/v2/conferences")[0] == 200
