"""Per-listener Opus FEC through the real bridge: an Opus caller whose RTCP receiver reports say
it loses the bridge's packets is sent in-band FEC; one reporting no loss is not
(media.opus_expected_loss "auto").

A PCMU caller talks (a voiced, vowel-like signal); two Opus callers (raw SIP, RTP and RTCP from
this test) listen and send Opus silence. After half a second each sends one RTCP receiver report
for the bridge's stream: 16 % lost, and 0 %. The LBRR flag of every Opus packet the bridge sends
afterwards is read from its SILK header (codecs/opus.py packet_has_lbrr).
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable

import numpy as np
import pytest
from bridge_codecs import make_encoder
from bridge_codecs.opus import packet_has_lbrr

from bridge.rtp.rtcp import ReceiverReport, ReportBlock, build_compound
from tests.e2e.hostile import answered_rtp, raw_call
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess

pytestmark = pytest.mark.e2e

FRAME_S = 0.02
REPORT_AT = 25          # frames before the receiver reports
FRAMES = 110            # frames sent in all (2.2 s)


def _call(bridge: BridgeProcess, rtp: socket.socket, pt: str, rtpmap: str) -> tuple[tuple[str, int], int]:
    """The bridge's RTP address for this leg and its RTCP port (a=rtcp, else RTP + 1)."""
    reply = raw_call(bridge.sip_port, rtp, "fecl", pt, rtpmap)
    addr = answered_rtp(reply)
    rtcp = int(reply.split("a=rtcp:", 1)[1].split()[0]) if "a=rtcp:" in reply else addr[1] + 1
    return addr, rtcp


def _voice(frames: int) -> list[np.ndarray]:
    t = np.arange(frames * 160) / 8000
    x = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20))
    x = np.rint(6000 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.int16)
    return [x[i * 160:(i + 1) * 160] for i in range(frames)]


def test_a_listener_reporting_loss_gets_fec_and_a_clean_one_does_not(
        bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator) -> None:
    bridge = bridge_factory(rooms=[{"name": "fecl", "account": "acct1", "rate": 48000, "beep": "never"}])
    socks = {name: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for name in ("talker", "lossy", "clean")}
    received: dict[str, list[tuple[int, bytes]]] = {"lossy": [], "clean": []}
    bridge_ssrc: dict[str, int] = {}
    try:
        for sock in socks.values():
            sock.bind(("127.0.0.1", ports.port()))
        legs = {"talker": _call(bridge, socks["talker"], "0", "a=rtpmap:0 PCMU/8000")}
        for name in ("lossy", "clean"):
            legs[name] = _call(bridge, socks[name], "111", "a=rtpmap:111 opus/48000/2")
        pcmu = make_encoder("PCMU")
        talk = [pcmu.encode(f) for f in _voice(FRAMES)]
        opus = make_encoder("opus", packet_loss=0)
        quiet = opus.encode(np.zeros(960, np.int16))
        t0 = time.monotonic() + 0.05
        deadline = t0 + FRAMES * FRAME_S + 5.0
        for k in range(FRAMES):
            while time.monotonic() < min(t0 + k * FRAME_S, deadline):
                ready, _, _ = select.select(list(socks.values()), [], [],
                                            max(0.0, t0 + k * FRAME_S - time.monotonic()))
                for sock in ready:
                    data = sock.recv(2048)
                    name = next(n for n, s in socks.items() if s is sock)
                    if name in received and len(data) > 12 and data[1] & 0x7F == 111:
                        bridge_ssrc[name] = struct.unpack("!I", data[8:12])[0]
                        received[name].append((k, data[12:]))
            if k == REPORT_AT:
                for name, fraction in (("lossy", 41), ("clean", 0)):
                    assert name in bridge_ssrc, f"nothing from the bridge to {name} yet"
                    block = ReportBlock(bridge_ssrc[name], fraction, 5, 1000 + k, 0)
                    report = build_compound([ReceiverReport(0x5000 + len(name), [block])])
                    socks[name].sendto(report, (legs[name][0][0], legs[name][1]))
            socks["talker"].sendto(struct.pack("!BBHII", 0x80, 0, k, k * 160, 0x7A1C) + talk[k], legs["talker"][0])
            for i, name in enumerate(("lossy", "clean")):
                header = struct.pack("!BBHII", 0x80, 111, k, k * 960, 0x0B00 + i)
                socks[name].sendto(header + quiet, legs[name][0])
    finally:
        for sock in socks.values():
            sock.close()
    # Reports are applied at the next tick; allow 10 frames for the way there and back.
    after = {name: [p for k, p in got if k > REPORT_AT + 10] for name, got in received.items()}
    assert len(after["lossy"]) > 40 and len(after["clean"]) > 40, {n: len(v) for n, v in after.items()}
    share = {name: sum(map(packet_has_lbrr, got)) / len(got) for name, got in after.items()}
    assert share["clean"] == 0, share
    assert share["lossy"] > 0.3, share
    # Before the reports nobody got FEC (auto: nothing planned until a listener reports loss).
    assert not any(packet_has_lbrr(p) for k, p in received["lossy"] if k < REPORT_AT)
