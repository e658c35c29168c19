"""Opus in-band FEC through the real bridge: a lost packet is rebuilt from the next one.

An Opus caller (raw SIP and RTP from this test) sends silence with a 60 ms 1 kHz burst every
half second and never sends the burst's first packet; a PCMU caller listens. libopus's PLC
can only continue the silence before the gap, so without FEC the listener hears 40 ms of
each burst; decoding the next packet's LBRR copy (codecs/libopus.py) gives back all 60 ms.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable

import numpy as np
import pytest
from bridge_codecs import make_decoder, make_encoder

from tests.e2e.hostile import answered_rtp, raw_call
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess

pytestmark = pytest.mark.e2e

FRAME_S = 0.02
PERIOD = 25          # frames between burst starts
BURSTS = 8


def _call(bridge: BridgeProcess, rtp: socket.socket, room: str, pt: str, rtpmap: str) -> tuple[str, int]:
    return answered_rtp(raw_call(bridge.sip_port, rtp, room, pt, rtpmap))


def _talker_packets() -> tuple[list[bytes], set[int]]:
    enc = make_encoder("opus", bitrate=32000, packet_loss=10)
    n = 960
    t = np.arange(3 * n) / 48000
    tone = (np.sin(2 * np.pi * 1000 * t) * 8000).astype(np.int16)
    frames: list[np.ndarray] = []
    dropped: set[int] = set()
    for _ in range(BURSTS + 1):
        frames += [np.zeros(n, np.int16)] * (PERIOD - 3)
        dropped.add(len(frames))
        frames += [tone[i * n:(i + 1) * n] for i in range(3)]
    return [enc.encode(f) for f in frames], dropped


def _burst_lengths_ms(pcm: np.ndarray, rate: int) -> list[float]:
    """Lengths of the runs of 5 ms blocks carrying the tone (RMS above a quarter of the peak)."""
    block = rate // 200
    blocks = pcm[: len(pcm) // block * block].astype(float).reshape(-1, block)
    rms = np.sqrt(np.mean(blocks ** 2, axis=1))
    loud = rms > 0.25 * np.percentile(rms, 99)
    runs, length = [], 0
    for flag in loud:
        if flag:
            length += 1
        elif length:
            runs.append(length * 5.0)
            length = 0
    return runs


@pytest.mark.parametrize("media", [{}, {"opus_fec_lookahead_ms": 20}], ids=["loss-depth", "fixed-lookahead"])
def test_a_lost_opus_packet_is_rebuilt_from_the_next_packets_fec(
        bridge_factory: Callable[..., BridgeProcess], ports: PortAllocator, media: dict[str, int]) -> None:
    rooms = [{"name": "fec", "account": "acct1", "rate": 16000, "beep": "never"}]
    # The packet after a lost one must be buffered when the gap is due: by default the jitter
    # buffer adds that frame once it sees losses (media.opus_loss_depth), or it always holds it.
    # (A loopback whose timing made the buffer grow holds it anyway; the unit test
    # test_opus_leg_holds_a_frame_while_it_sees_losses_so_fec_is_there pins the rule itself.)
    bridge = bridge_factory(rooms=rooms, media=media)
    talker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        talker.bind(("127.0.0.1", ports.port()))
        listener.bind(("127.0.0.1", ports.port()))
        to_talker_leg = _call(bridge, talker, "fec", "111", "a=rtpmap:111 opus/48000/2")
        to_listener_leg = _call(bridge, listener, "fec", "0", "a=rtpmap:0 PCMU/8000")
        packets, dropped = _talker_packets()
        silence = make_encoder("PCMU").encode(np.zeros(160, np.int16))
        heard: dict[int, bytes] = {}
        t0 = time.monotonic() + 0.05
        deadline = t0 + len(packets) * FRAME_S + 5.0
        for k in range(len(packets) + 20):
            while time.monotonic() < min(t0 + k * FRAME_S, deadline):
                ready, _, _ = select.select([listener, talker], [], [],
                                            max(0.0, t0 + k * FRAME_S - time.monotonic()))
                for sock in ready:
                    data = sock.recv(2048)
                    if sock is listener and len(data) > 12 and data[1] & 0x7F == 0:
                        heard[struct.unpack("!H", data[2:4])[0]] = data[12:]
            if k < len(packets) and k not in dropped:
                header = struct.pack("!BBHII", 0x80, 111, k, k * 960, 0x0FEC0FEC)
                talker.sendto(header + packets[k], to_talker_leg)
            header = struct.pack("!BBHII", 0x80, 0, k, k * 160, 0x11223344)
            listener.sendto(header + silence, to_listener_leg)
    finally:
        talker.close()
        listener.close()
    assert len(heard) > len(packets) // 2, f"heard {len(heard)} packets of {len(packets)}"
    pcm = make_decoder("PCMU").decode(b"".join(heard[s] for s in sorted(heard)))
    runs = _burst_lengths_ms(pcm, 8000)
    assert len(runs) >= BURSTS - 2, runs
    # 60 ms with the lost first frame rebuilt; 40 ms if it were only concealed.
    assert np.median(runs) >= 52.5, runs
