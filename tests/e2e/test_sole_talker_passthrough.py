"""Sole-talker passthrough through the real bridge: a G.722 caller talks alone in a default
(16 kHz) room and a G.722 listener is sent the caller's own codes, delayed by the 11 code bytes
(22 samples) the room's decode + re-encode would add; with the setting off, never.

Both callers are raw SIP and RTP from this test, so the payloads themselves can be compared."""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable

import numpy as np
import pytest
from bridge_codecs import make_decoder, make_encoder

from bridge.media.passthrough import passthrough_delay
from tests.e2e.hostile import answered_rtp, raw_call
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.unit.test_passthrough import packets, speechlike

pytestmark = pytest.mark.e2e

FRAME_S = 0.02
SECONDS = 6.0


def _exchange(bridge: BridgeProcess, ports: PortAllocator, talk: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Call both legs, send the talker's packets in real time (the listener sends G.722
    silence), and return the listener's and the talker's payloads in sequence order."""
    talker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    heard: dict[int, bytes] = {}
    back: dict[int, bytes] = {}
    try:
        talker.bind(("127.0.0.1", ports.port()))
        listener.bind(("127.0.0.1", ports.port()))
        to_talker = answered_rtp(raw_call(bridge.sip_port, talker, "pass", "9", "a=rtpmap:9 G722/8000"))
        to_listener = answered_rtp(raw_call(bridge.sip_port, listener, "pass", "9", "a=rtpmap:9 G722/8000"))
        quiet = make_encoder("G722")     # one encoder: the same packet over and over is not silence
        t0 = time.monotonic() + 0.05
        for k in range(len(talk) + 15):
            due = t0 + k * FRAME_S
            while (left := due - time.monotonic()) > 0:
                ready, _, _ = select.select([listener, talker], [], [], left)
                for sock in ready:
                    data = sock.recv(2048)
                    if len(data) > 12 and data[1] & 0x7F == 9:
                        (heard if sock is listener else back)[struct.unpack("!H", data[2:4])[0]] = data[12:]
            if k < len(talk):
                talker.sendto(struct.pack("!BBHII", 0x80, 9, k, k * 160, 0x7A1C) + talk[k], to_talker)
            listener.sendto(struct.pack("!BBHII", 0x80, 9, k, k * 160, 0x1157) + quiet.encode(np.zeros(320, np.int16)),
                            to_listener)
    finally:
        talker.close()
        listener.close()
    return [heard[s] for s in sorted(heard)], [back[s] for s in sorted(back)]


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_a_g722_listener_gets_the_sole_talkers_own_codes(
        bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, on: bool) -> None:
    rooms = [{"name": "pass", "account": "acct1", "rate": 16000, "beep": "never"}]
    bridge = bridge_factory(rooms=rooms, media={"sole_talker_passthrough": on})
    talk = packets("G722", speechlike(16000, SECONDS))
    heard, back = _exchange(bridge, ports, talk)
    assert len(heard) > 0.8 * len(talk), f"heard {len(heard)} packets of {len(talk)}"
    delay = passthrough_delay("G722", 16000)
    assert delay == 11
    stream = b"".join(talk)
    own = {stream[k * 160 - delay:(k + 1) * 160 - delay] for k in range(1, len(talk))}
    passed = sum(p in own for p in heard)
    assert back and not any(p in own for p in back)         # the talker never gets its own codes
    if on:
        # Nearly all on a quiet machine (all but the first frames: the gate opens, and the first
        # needs the one before). A packet this test sends late is concealed, and a talker is not
        # passed through for 3 s after a concealed frame: two seconds' worth survive one hiccup.
        assert passed >= 100, f"{passed} of {len(heard)} packets were the talker's codes"
    else:
        assert passed == 0
    # Either way the listener hears the talker: the decoded audio matches the talker's own
    # decode at some lag within a second (the join order and the tick phase set it).
    ours, theirs = make_decoder("G722"), make_decoder("G722")
    out = np.concatenate([ours.decode(p) for p in heard]).astype(np.float64)
    ref = np.concatenate([theirs.decode(p) for p in talk]).astype(np.float64)
    assert _best_match(ref[8000:-8000], out) > 0.9


def _best_match(ref: np.ndarray, out: np.ndarray) -> float:
    """The highest normalised correlation of ``ref`` against any stretch of ``out``."""
    n = len(ref)
    corr = np.correlate(out, ref, "valid")
    energy = np.convolve(out ** 2, np.ones(n), "valid")
    return float(np.max(corr / np.sqrt(np.maximum(energy, 1e-9) * np.dot(ref, ref))))
