"""The fuzz checks shared by the hypothesis tests (tests/fuzz/test_*.py) and the atheris
runner (scripts/fuzz.py): feed one input, raise (AssertionError or whatever escaped) when an
invariant breaks, return normally otherwise.

Known bugs not fixed yet are recorded as strict-xfail regression tests (listed in
``KNOWN_ISSUES``); the check that would re-find the one left (run_session) lets it
pass while ``SKIP_KNOWN`` is set, so the property tests and long fuzz runs keep looking for
*new* bugs. When a bug is fixed its xfail test XPASSes (strict: the run fails): remove the
marker and the entry here together.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bridge.rtp.dtmf4733 import EVENT_DIGITS
from bridge.rtp.jitter import Empty, Frame, Missing
from bridge.rtp.packet import RtpError, RtpPacket, is_rtcp
from bridge.rtp.rtcp import RR, SR, Bye, ReceiverReport, RtcpError, SenderReport, parse_rtcp
from bridge.rtp.session import RtpSession
from bridge.sdp.errors import NegotiationError, SdpError
from bridge.sdp.model import parse_sdp
from bridge.sdp.negotiate import NegotiatedMedia, answer_offer
from bridge.sip.endpoint import SipEndpoint
from bridge.sip.flow import Flow
from bridge.sip.message import SipParseError, SipRequest, SipResponse, parse_message

ALLOWED = ["PCMU", "PCMA", "G722", "opus"]

# name -> the strict-xfail regression tests that pin it down.
KNOWN_ISSUES = {
    "jitter-long-frame": "the jitter buffer plays a G.711 Frame longer than one frame after packets with "
                         "overlapping timestamps (test_fuzz_session.py::test_xfail_jitter_frame_longer_than_a_frame)",
}
# False: report known issues like new ones (scripts/fuzz.py --all).
SKIP_KNOWN = True


# -- RTP ---------------------------------------------------------------------------------------
def check_rtp(data: bytes) -> RtpPacket | None:
    """RtpPacket.parse raises only RtpError; what parses serialises back to the same datagram
    (padding octets before the count are not kept: they come back as zeros)."""
    try:
        pkt = RtpPacket.parse(data)
    except RtpError:
        return None
    assert 0 <= pkt.payload_type < 128 and len(pkt.csrcs) == data[0] & 0x0F
    out = pkt.serialize()
    assert len(out) == len(data)
    body = len(data) - pkt.padding
    assert out[:body] == bytes(data[:body]) and out[-1:] == bytes(data[-1:])
    assert RtpPacket.parse(out) == pkt
    return pkt


# -- RTCP --------------------------------------------------------------------------------------
def rtcp_headers(data: bytes) -> list[tuple[int, int, int]]:
    """(first byte, packet type, length in words) of each packet, walking the length fields."""
    out = []
    offset = 0
    while offset + 4 <= len(data):
        b0, pt, words = struct.unpack_from("!BBH", data, offset)
        out.append((b0, pt, words))
        offset += 4 + 4 * words
    return out


def check_rtcp(data: bytes) -> list[object] | None:
    """parse_rtcp raises only RtcpError, lenient or strict. What the lenient parser accepts has
    RFC 3550 A.2's structure: version 2 throughout, lengths that add up to the datagram
    exactly, padding only on the last packet; what the strict one accepts also starts with an
    unpadded SR/RR and parses the same."""
    try:
        packets: list[object] | None = list(parse_rtcp(data))
    except RtcpError:
        packets = None
    try:
        strict: list[object] | None = list(parse_rtcp(data, strict=True))
    except RtcpError:
        strict = None
    if strict is not None:
        assert strict == packets
        assert data[0] & 0xE0 == 0x80 and data[1] in (SR, RR)
    if packets is None:
        return None
    heads = rtcp_headers(data)
    assert sum(4 + 4 * words for _, _, words in heads) == len(data)
    assert len(heads) == len(packets)
    assert all(b0 >> 6 == 2 for b0, _, _ in heads)
    assert not any(b0 & 0x20 for b0, _, _ in heads[:-1])
    for (b0, _, _), p in zip(heads, packets):
        if isinstance(p, (SenderReport, ReceiverReport)):
            assert len(p.reports) == b0 & 0x1F
        elif isinstance(p, Bye):
            assert len(p.ssrcs) == b0 & 0x1F
    return packets


# -- RtpSession --------------------------------------------------------------------------------
ADDRS = [("192.0.2.10", 4000), ("192.0.2.10", 4002), ("198.51.100.7", 6000)]
CODECS = {"PCMU": (0, 8000, 160), "G722": (9, 8000, 160), "opus": (111, 48000, 960)}
DTMF_PT = 101


@dataclass(frozen=True)
class SessionOp:
    data: bytes
    addr: int = 0           # index into ADDRS
    rtcp_port: bool = False  # arrives on the RTCP socket (receive_rtcp) instead of receive
    dt: float = 0.02        # time since the previous op
    pops: int = 1           # media ticks after it (pop_frame calls)
    report: bool = False    # build our RTCP report after it


def session_ops_from_bytes(data: bytes) -> list[SessionOp]:
    """A byte string as session ops (for atheris): per op a control byte (address, RTCP socket,
    pops, report, time step) and a length byte, then that many datagram bytes."""
    ops: list[SessionOp] = []
    i = 0
    while i + 2 <= len(data) and len(ops) < 64:
        ctrl, n = data[i], data[i + 1]
        i += 2
        step = ctrl >> 5                    # 0..60 ms, or 2 s (timeouts, resyncs)
        ops.append(SessionOp(bytes(data[i:i + n]), ctrl & 3, bool(ctrl & 4),
                             2.0 if step == 7 else step * 0.01, 0 if ctrl & 8 else 1, bool(ctrl & 0x10)))
        i += n
    return ops


_COUNTERS = ("packets_sent", "octets_sent", "packets_received", "octets_received", "malformed",
             "unknown_pt", "comfort_noise", "foreign", "ssrc_changes", "latches", "rtcp_received",
             "rtcp_malformed", "rtcp_foreign", "send_pauses")
_JB_COUNTERS = ("received", "late", "lost", "concealed", "duplicates", "dropped", "resyncs",
                "target_delay_ms", "depth_ms")


def run_session(ops: Iterable[SessionOp], codec: str = "PCMU") -> RtpSession:
    """Feed the datagrams to one RtpSession, ticking and reporting in between. Checks: nothing
    raises; counters never negative; ``malformed`` and the RTCP counters equal what the
    parsers say of the same datagrams; packets/octets received never exceed the valid RTP
    packets/payload octets fed; a byte codec's frames are exactly one frame long; DTMF events
    are real digits; our own reports pass the strict (A.2) RTCP check."""
    pt, clock, frame = CODECS[codec]
    s = RtpSession(0x1234ABCD, pt, clock, frame, DTMF_PT, 8000, ADDRS[0], initial_seq=7, initial_ts=9)
    now = 100.0
    malformed = rtcp = rtcp_bad = valid = valid_octets = 0
    for op in ops:
        now += op.dt
        addr = ADDRS[op.addr % len(ADDRS)]
        if op.rtcp_port or is_rtcp(op.data):
            rtcp += 1
            try:
                parse_rtcp(op.data)
            except RtcpError:
                rtcp_bad += 1
        else:
            try:
                valid_octets += len(RtpPacket.parse(op.data).payload)
                valid += 1
            except RtpError:
                malformed += 1
        if op.rtcp_port:
            s.receive_rtcp(op.data, addr, now)
            events = []
        else:
            events = s.receive(op.data, addr, now)
        for _ in range(op.pops):
            item = s.pop_frame()
            assert isinstance(item, (Frame, Missing, Empty))
            if isinstance(item, Frame) and pt in (0, 9) and len(item.payload) != frame:
                assert SKIP_KNOWN, f"jitter-long-frame: {len(item.payload)} bytes, not {frame}"
            events += s.poll(now)
        for ev in events:
            assert ev.digit in EVENT_DIGITS and ev.duration_ms >= 0
        if op.report:
            report = s.rtcp_report(now)
            parsed = parse_rtcp(report, strict=True)
            assert isinstance(parsed[0], (SenderReport, ReceiverReport)) and len(parsed[0].reports) <= 1
        s.packetize(b"\xff" * frame, frame, now=now)
        stats = s.stats()
        assert all(stats.get(name, 0) >= 0 for name in _COUNTERS), stats
        assert all(stats["jitter_buffer"][name] >= 0 for name in _JB_COUNTERS), stats
    stats = s.stats()
    assert s.malformed == malformed
    # rtcp_foreign: RTCP from an address that is not the peer's (strict source), where it exists.
    assert s.rtcp_received + s.rtcp_malformed + getattr(s, "rtcp_foreign", 0) == rtcp
    assert s.rtcp_malformed == rtcp_bad
    assert s.packets_received <= valid and s.octets_received <= valid_octets
    assert stats["jitter_buffer"]["received"] <= s.packets_received
    return s


# -- SDP ---------------------------------------------------------------------------------------
def check_sdp(data: bytes | str) -> None:
    """parse_sdp raises only SdpError; what parses serialises to SDP that parses again."""
    try:
        sd = parse_sdp(data)
    except SdpError:
        return
    again = parse_sdp(sd.serialize())
    assert len(again.media) == len(sd.media)


def answer_problems(offer: bytes | str, media: NegotiatedMedia) -> list[tuple[str, str]]:
    """(issue class, description) for each thing wrong with an answer we would send."""
    problems = []
    for name, pt in (("codec", media.payload_type), ("telephone-event", media.dtmf_pt)):
        if pt is not None and not 0 <= pt <= 127:
            problems.append(("pt-range", f"{name} payload type {pt}"))
    if not 0 < media.remote_port < 65536:
        problems.append(("port-range", f"remote port {media.remote_port}"))
    if not 0 < media.remote_rtcp_port < 65536:
        problems.append(("rtcp-port-range", f"remote RTCP port {media.remote_rtcp_port}"))
    if not 5 <= media.ptime <= 200:
        problems.append(("ptime", f"ptime {media.ptime}"))
    if media.codec not in ALLOWED or media.clock_rate <= 0:
        problems.append(("codec", f"{media.codec}/{media.clock_rate}"))
    offer_sd = parse_sdp(offer)
    answer = parse_sdp(media.answer_sdp)
    if len(answer.media) != len(offer_sd.media):
        problems.append(("m-lines", f"{len(offer_sd.media)} m= lines offered, {len(answer.media)} answered"))
    live = [m for m in answer.media if m.port != 0]
    if len(live) != 1 or live[0].formats[:1] != [str(media.payload_type)]:
        problems.append(("answer", f"accepted streams {[m.formats for m in live]}"))
    return problems


def check_answer(offer: bytes | str, allowed: Sequence[str] = ALLOWED) -> NegotiatedMedia | None:
    """answer_offer raises only NegotiationError (SdpError included) and what it accepts is
    an answer we can use (see answer_problems)."""
    try:
        media = answer_offer(offer if isinstance(offer, bytes) else offer.encode(), allowed,
                             "127.0.0.1", 20000, 1, 1)
    except NegotiationError:
        return None
    problems = answer_problems(offer, media)
    assert not problems, problems
    return media


# -- SIP ---------------------------------------------------------------------------------------
def check_sip_message(data: bytes) -> SipRequest | SipResponse | None:
    """parse_message raises only SipParseError; what parses serialises to a message that
    parses again to the same start line, headers and body."""
    try:
        msg = parse_message(data)
    except SipParseError:
        return None
    again = parse_message(msg.to_bytes())
    assert type(again) is type(msg) and again.body == msg.body
    expected = [(n, v) for n, v in msg.headers if n != "Content-Length"]
    assert [(n, v) for n, v in again.headers if n != "Content-Length"] == expected
    return msg


UDP = Flow("udp", ("10.0.0.1", 5062))


def check_sip_endpoint(data: bytes) -> None:
    """A fresh endpoint fed one datagram (then its timers run out): no internal error (receive()
    swallows and counts them), and what it sends parses."""
    ep = SipEndpoint(contact_host="127.0.0.1", contact_port=5060, rng=random.Random(1))
    ep.receive(data, UDP, 0.0)
    outputs = [o.data for o in ep.messages_to_send()]
    while ep.next_event() is not None:
        pass
    ep.handle_timer(100.0)
    outputs += [o.data for o in ep.messages_to_send()]
    check_sip_endpoint_outputs(outputs)
    assert not ep.internal_errors, f"{ep.internal_errors} internal error(s)"


def check_sip_endpoint_outputs(outputs: Iterable[bytes]) -> None:
    """Everything the endpoint sends parses, except 400/505 answers that echo the peer's own
    broken headers (by design, see tests/unit/test_sip_fuzz.py)."""
    for data in outputs:
        if data.startswith((b"SIP/2.0 400 ", b"SIP/2.0 505 ")):
            continue
        parse_message(data)


# -- entry points for scripts/fuzz.py (one input: the fuzzer's bytes) ---------------------------
def session_target(data: bytes) -> None:
    """First byte: the codec; the rest: session ops (session_ops_from_bytes)."""
    codec = list(CODECS)[data[0] % len(CODECS)] if data else "PCMU"
    run_session(session_ops_from_bytes(data[1:]), codec)


def sdp_target(data: bytes) -> None:
    check_sdp(data)
    check_answer(data)


def sip_target(data: bytes) -> None:
    check_sip_message(data)
    check_sip_endpoint(data)


TARGETS = {
    "rtp": check_rtp,
    "rtcp": check_rtcp,
    "sdp": sdp_target,
    "sip": sip_target,
    "session": session_target,
}


def seeds() -> dict[str, list[bytes]]:
    """A few valid inputs per target, so coverage-guided runs start from real messages."""
    from bridge.rtp.rtcp import ReportBlock, SourceDescription, build_compound

    audio = [RtpPacket(0, 100 + i, 160 * i, 0xAAAA, bytes([0x55]) * 160).serialize() for i in range(8)]
    rr = build_compound([ReceiverReport(1, [ReportBlock(0x1234ABCD, 3, 5, 70000, 20, 7, 9)]),
                         SourceDescription([(1, "a@b")])])
    sr = build_compound([SenderReport(2, 1 << 40, 160, 10, 1600), SourceDescription([(2, "x")]), Bye([2], "bye")])
    offer = (b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
             b"m=audio 4000 RTP/AVP 0 8 9 111 101\r\na=rtpmap:111 opus/48000/2\r\n"
             b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")
    invite = (b"INVITE sip:room1@127.0.0.1 SIP/2.0\r\n"
              b"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;rport\r\nMax-Forwards: 70\r\n"
              b"From: \"A\" <sip:a@10.0.0.1>;tag=ft\r\nTo: <sip:room1@127.0.0.1>\r\nCall-ID: c1\r\n"
              b"CSeq: 1 INVITE\r\nContact: <sip:a@10.0.0.1:5062>\r\nContent-Type: application/sdp\r\n"
              b"Content-Length: " + str(len(offer)).encode() + b"\r\n\r\n" + offer)
    response = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
                b"From: <sip:room1@127.0.0.1>;tag=a\r\nTo: <sip:a@10.0.0.1>;tag=b\r\nCall-ID: c9\r\n"
                b"CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
    stream = b"\x00" + b"".join(bytes([0x40 | (0x10 if i == 7 else 0), len(p)]) + p for i, p in enumerate(audio))
    return {
        "rtp": audio[:1] + [RtpPacket(101, 7, 8, 9, b"\x01\x8a\x03\x20", True, [5], (0xBEDE, b"\x10\x01\x00\x00"),
                                      4).serialize()],
        "rtcp": [rr, sr],
        "sdp": [offer],
        "sip": [invite, invite.replace(b"INVITE", b"OPTIONS").split(b"Content-Type")[0] + b"Content-Length: 0\r\n\r\n",
                response],
        "session": [stream, stream + bytes([0x04, len(rr)]) + rr],
    }
