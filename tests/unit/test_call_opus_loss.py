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
    """Offers Opus only (with ``fmtp``, if any); reports loss of the bridge's stream with RTCP
    receiver reports."""

    fmtp = ""

    def sdp(self, direction: str = "sendrecv") -> bytes:
        host, port = self.rtp_addr
        fmtp = f"a=fmtp:111 {self.fmtp}\r\n" if self.fmtp else ""
        return (f"v=0\r\no=- {self.n} 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\n{fmtp}"
                f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na={direction}\r\n").encode()

    def payload_bytes(self, last: int) -> float:
        """Mean Opus payload size of the last ``last`` packets the bridge sent this phone."""
        assert self.transport is not None
        packets = [RtpPacket.parse(d) for d in self.transport.received[-last:]]
        sizes = [len(p.payload) for p in packets if p.payload_type == 111]
        return sum(sizes) / len(sizes)

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


def test_a_callers_maxaveragebitrate_caps_what_it_is_sent(tmp_path: Path) -> None:
    """RFC 7587 6.1: maxaveragebitrate is the most the peer wants to receive. A caller asking for
    16 kbit/s gets a third of the bytes of one asking nothing (media.opus_bitrate, 48 kbit/s)."""
    bridge = Bridge(tmp_path)
    bridge.directory.add("conf_b")
    talker = bridge.phone()
    plain, frugal = opus_phone(bridge), opus_phone(bridge)
    frugal.fmtp = "useinbandfec=1; maxaveragebitrate=16000"
    for p in (talker, plain, frugal):
        p.call("conf_b")
    bridge.run(1.5, speak={talker: 300.0})
    # libopus's VBR spends more than the target on a steady tone (about 1.5x here), on both.
    plain_size, frugal_size = plain.payload_bytes(40), frugal.payload_bytes(40)
    assert plain_size > 100 and frugal_size < plain_size / 2.5, (plain_size, frugal_size)


def test_maxaveragebitrate_is_read_from_the_fmtp_and_bounded() -> None:
    from bridge.call.leg import encoder_options, opus_max_average_bitrate
    from bridge.config import Config

    assert opus_max_average_bitrate("") is None
    assert opus_max_average_bitrate("useinbandfec=1;maxaveragebitrate=24000") == 24000
    assert opus_max_average_bitrate("MaxAverageBitrate = 20000 ; stereo=0") == 20000
    assert opus_max_average_bitrate("maxaveragebitrate=lots") is None
    assert opus_max_average_bitrate("maxaveragebitrate=1000") == 6000
    assert encoder_options(Config(), "opus", "maxaveragebitrate=24000")["bitrate"] == 24000
    assert encoder_options(Config(), "opus", "maxaveragebitrate=96000")["bitrate"] == 48000  # never raised
