"""One hostile peer never silences a conference (README "Security").

Two real softphones talk in a room while an attacker with nothing but UDP sockets sends the
offers that used to stop every conference on the bridge (payload type 300 and 128, a host name
in c=, port 65535) and sprays RTP over the whole RTP port range while a third, real caller is
not sending (the RTP-bleed hijack), after a burst of malformed RTP and RTCP of every structural
defect class to every RTP and RTCP port. The softphones' audio must stay unbroken, the attacker must
get no RTP and not be heard, and the bridge must still answer OPTIONS.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from bridge_codecs import make_encoder

from tests.e2e.calls import dial_all, hang_up_all, participants
from tests.e2e.hostile import SipAttacker, invite, longest_gap_s, offer, spray_malformed, spray_rtp
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.e2e.peers.rtp_pcap import RtpPacket, write_rtp_pcap
from tests.e2e.peers.sipp import SippProcess
from tests.support.bridge_proc import BridgeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip", "need_sipp")]

HOSTILE_OFFERS = {
    "payload type 300": offer(40000, "300", "a=rtpmap:300 PCMU/8000"),
    "payload type 128": offer(40000, "128", "a=rtpmap:128 PCMU/8000"),
    "host name in c=": offer(40000, host="media.attacker.invalid"),
    "port 65535": offer(65535),
}
ATTACK_HZ = 2000.0


def talk_pcap(path: Path, seconds: float, freq: float) -> Path:
    enc = make_encoder("PCMU")
    t = np.arange(160) / 8000
    packets = [RtpPacket(1_700_000_000.0 + i * 0.02, 0, i == 0, 100 + i, 160 * i, 0x5AFE,
                         enc.encode((6000 * np.sin(2 * np.pi * freq * (t + i * 0.02))).astype(np.int16)))
               for i in range(int(seconds * 50))]
    return write_rtp_pcap(path, packets)


def test_hostile_packets_do_not_disturb_a_conference(bridge: BridgeProcess, ports: PortAllocator,
                                                      tmp_path: Path) -> None:
    attacker = SipAttacker(bridge.sip_port)
    answers: dict[str, str] = {}
    stolen: list[int] = []
    specs = [("alice", "PCMU", 500.0), ("bob", "PCMU", 1000.0)]
    with participants(tmp_path, ports, specs) as people:
        dial_all(bridge, people, "room1")
        # A third, real caller talks for a second, then stays in the call without sending.
        p = ports.sipp()
        workdir = tmp_path / "sipp-pause"
        workdir.mkdir()
        talk_pcap(workdir / "talk.pcap", 1.0, 1500.0)
        with SippProcess("talk_then_pause", f"127.0.0.1:{bridge.sip_port}", local_port=p.sip,
                         media_port=p.media, service="room1", workdir=workdir, timeout=20) as quiet:
            for name, sdp in HOSTILE_OFFERS.items():
                data, _ = invite(bridge.sip_port, attacker.port, sdp)
                answers[name] = attacker.final_response(data)
            # Past the learning window (3 s) the quiet caller is not sending: spray the whole
            # RTP range with a sequential stream, as an RTP-bleed scanner does.
            time.sleep(4.0)
            lo, hi = bridge.rtp_range
            spray_malformed(range(lo, hi + 1))     # every RTP/RTCP defect class, to every port
            spray = threading.Thread(target=lambda: stolen.append(spray_rtp(range(lo, hi + 1), 3.0, ATTACK_HZ)))
            spray.start()
            spray.join(10)
            options = attacker.options()
            hang_up_all(people)
            quiet.stop()
    attacker.close()

    for name, reply in answers.items():
        assert reply.startswith("SIP/2.0 488"), f"{name}: {reply.splitlines()[0]}"
        assert "Warning: 30" in reply, f"{name}: no Warning naming the field:\n{reply}"
    assert options.startswith("SIP/2.0 200"), options
    assert stolen == [0], f"the attacker received {stolen} bytes of RTP"
    log = bridge.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "stalled" not in log, bridge.log_tail()
    for person, partner in ((people[0], people[1]), (people[1], people[0])):
        samples, rate = person.heard()
        samples = audio.segment(samples, rate, 1.0, len(samples) / rate - 0.5)
        assert audio.has_tone(samples, rate, partner.freq, min_rel_db=-15, min_seconds=3.0)
        heard_attack = audio.tone_level_db(samples, rate, ATTACK_HZ)
        assert heard_attack < -30, f"{person.name} heard the attacker at {heard_attack:.1f} dB"
        gap = longest_gap_s(samples, rate)
        assert gap <= 0.2, f"{person.name}'s audio had a {gap * 1000:.0f} ms gap"


def test_reflection_is_bounded(bridge: BridgeProcess) -> None:
    """An INVITE whose c= names a victim that never answers: the bridge sends the victim no RTP
    before the ACK, and only ``rtp.unconfirmed_send_s`` of it after. The amplification (bytes at
    the victim / bytes of the INVITE) is printed and must stay single-digit."""
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind(("127.0.0.1", 0))
    victim.settimeout(0.1)
    port = victim.getsockname()[1]
    results = {}
    for acked in (False, True):
        attacker = SipAttacker(bridge.sip_port)
        data, _ = invite(bridge.sip_port, attacker.port, offer(port, "0"))
        if acked:
            reply = attacker.final_response(data)
            assert reply.startswith("SIP/2.0 200"), reply
        else:
            attacker.sock.sendto(data, ("127.0.0.1", bridge.sip_port))
        received = 0
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            try:
                received += len(victim.recv(65535))
            except socket.timeout:
                pass
        results[acked] = (received, received / len(data))
        attacker.close()
    victim.close()
    print(f"\nreflection: INVITE {len(data)} B; never ACKed: {results[False][0]} B at the victim; "
          f"ACKed: {results[True][0]} B = {results[True][1]:.1f}x the INVITE")
    assert results[False][0] == 0
    assert 0 < results[True][0] and results[True][1] < 10
