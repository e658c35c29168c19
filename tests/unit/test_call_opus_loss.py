"""The call core hands each Opus caller's RTCP loss figure to its room: a caller whose receiver
reports say it loses our packets gets in-band FEC, a clean one does not (media.opus_expected_loss
"auto")."""

from __future__ import annotations

from pathlib import Path

from bridge_codecs.opus import packet_has_lbrr

from bridge.rtp.packet import RtpPacket
from bridge.rtp.rtcp import ReceiverReport, ReportBlock, build_compound
from tests.unit.call_harness import Bridge, Phone


class OpusPhone(Phone):
    """Offers Opus only; reports loss of the bridge's stream with RTCP receiver reports."""

    def sdp(self, direction: str = "sendrecv") -> bytes:
        host, port = self.rtp_addr
        return (f"v=0\r\no=- {self.n} 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\n"
                f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na={direction}\r\n").encode()

    def report(self, fraction: float) -> None:
        assert self.transport is not None
        sender = RtpPacket.parse(self.transport.received[-1]).ssrc
        block = ReportBlock(sender, round(fraction * 256), 10, 1000, 0)
        rtcp_addr = (self.rtp_addr[0], self.rtp_addr[1] + 1)
        self.transport.on_rtcp(build_compound([ReceiverReport(self.ssrc, [block])]), rtcp_addr)

    def lbrr_share(self, last: int) -> float:
        assert self.transport is not None
        packets = [RtpPacket.parse(d) for d in self.transport.received[-last:]]
        return sum(packet_has_lbrr(p.payload) for p in packets if p.payload_type == 111) / len(packets)


def opus_phone(bridge: Bridge) -> OpusPhone:
    p = OpusPhone(bridge, len(bridge.phones) + 1)
    bridge.phones[p.addr] = p
    return p


def test_rtcp_loss_report_turns_fec_on_for_that_caller_only(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path)
    bridge.directory.add("conf_o")
    talker = bridge.phone()                    # PCMU: its voice is what the Opus callers hear
    clean, lossy = opus_phone(bridge), opus_phone(bridge)
    for p in (talker, clean, lossy):
        p.call("conf_o")
    bridge.run(0.5)
    clean.report(0.0)
    lossy.report(0.15)
    bridge.run(1.0, speak={talker: 300.0})
    assert clean.lbrr_share(30) == 0
    assert lossy.lbrr_share(30) > 0.5
    for _ in range(3):                         # the lossy caller's network recovers
        lossy.report(0.0)
    bridge.run(1.0, speak={talker: 300.0})
    assert lossy.lbrr_share(30) == 0


def test_a_fixed_expected_loss_ignores_reports(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path, media={"opus_expected_loss": 10})
    bridge.directory.add("conf_f")
    talker = bridge.phone()
    listener = opus_phone(bridge)
    for p in (talker, listener):
        p.call("conf_f")
    bridge.run(0.5)
    listener.report(0.0)
    bridge.run(1.0, speak={talker: 300.0})
    assert listener.lbrr_share(30) > 0.5
