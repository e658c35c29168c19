"""SDP parser and offer/answer: parse_sdp raises only SdpError, answer_offer only
NegotiationError, and an accepted offer gives an answer the media path can use
(targets.check_answer). Offers come from a grammar that stresses every number and address
the negotiator reads; the failures found are pinned as strict-xfail tests at the end."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.sdp.errors import NegotiationError, SdpError
from bridge.sdp.model import parse_sdp
from bridge.sdp.negotiate import answer_offer
from tests.fuzz._settings import fuzz
from tests.fuzz.targets import ALLOWED, check_answer, check_sdp

# Numbers a peer can write where the negotiator expects one ('²' is str.isdigit() but not int()).
WEIRD_NUMBERS = ["0", "-1", "00", "1.5", "", "abc", "1e999", "inf", "nan", "99999999999", "٣"]


def mostly(usual: list[str], odd: list[str]) -> st.SearchStrategy[str]:
    """One of the usual values about 6 times in 7, so that many offers get as far as the answer
    (a one_of of the two lists would not: hypothesis favours the rarer branch)."""
    return st.sampled_from(usual * max(1, 6 * len(odd) // len(usual)) + odd)


PORTS = mostly(["4000", "20000", "1", "65534"], ["0", "65535", "65536", "99999", "4000/2", "4000/1", "70000",
                                                 *WEIRD_NUMBERS])
PTS = mostly(["0", "8", "9", "101", "111", "96", "127", "13", "18"], ["72", "110", "128", "255", "300", "²",
                                                                       *WEIRD_NUMBERS])
ENCODINGS = mostly(["PCMU", "PCMA", "G722", "opus", "telephone-event"], ["pcmu", "OPUS", "CN", "L16", "speex", ""])
RATES = mostly(["8000", "16000", "48000"], ["44100", "1", "4294967296", *WEIRD_NUMBERS])
CHANNELS = mostly(["", "", "/1", "/2"], ["/0", "/3", "/-1", "/x", "/²"])
HOSTS = mostly(["IN IP4 192.0.2.10", "IN IP4 10.0.0.1", "IN IP4 0.0.0.0", "IN IP6 2001:db8::1"], [
    "IN IP4 224.2.1.1/127/3", "IN IP4 255.255.255.255", "IN IP4 example.com", "IN IP4 localhost",
    "IN IP4 " + "a" * 64, "IN IP4 999.1.1.1", "IN IP4 ::1", "IN IP6 ::", "IN IP6 192.0.2.1",
    "IN IP6 fe80::1%eth0", "ATM NSAP 47.0005", "IN IP4", "IN IP4 192.0.2.10 extra",
    "in ip4 192.0.2.10", "IN IP4 127.0.0.1", "IN IP4 [::1]", "IN IP4 192.0.2.10/"])
PTIMES = mostly(["10", "20", "30", "60"], ["0", "-5", "1000", "2.5", "20.9", "abc", "inf", "nan", "1e999", "",
                                           "4294967296"])
RTCP = mostly(["4001", "4001 IN IP4 192.0.2.10"], ["0", "1", "65535", "65536", "99999", "abc", "", "-1", "²"])
DIRECTIONS = st.sampled_from(["sendrecv", "sendonly", "recvonly", "inactive"])


@st.composite
def media_section(draw: st.DrawFn) -> list[str]:
    media = draw(mostly(["audio"], ["video", "application", "AUDIO", "image"]))
    proto = draw(mostly(["RTP/AVP", "RTP/AVPF"], ["RTP/SAVP", "UDP/TLS/RTP/SAVPF", "udp", "rtp/avp"]))
    pts = draw(st.lists(PTS, min_size=1, max_size=8))
    lines = [f"m={media} {draw(PORTS)} {proto} {' '.join(pts)}".rstrip()]
    if draw(st.booleans()):
        lines.append(f"c={draw(HOSTS)}")
    for pt in draw(st.lists(st.sampled_from(pts) if pts else PTS, max_size=6)) + draw(st.lists(PTS, max_size=2)):
        lines.append(f"a=rtpmap:{pt} {draw(ENCODINGS)}/{draw(RATES)}{draw(CHANNELS)}")
        if draw(st.booleans()):
            lines.append(f"a=fmtp:{pt} " + draw(st.sampled_from(["0-16", "0-15", "useinbandfec=1", "", "x"])))
    extra = st.sampled_from(["a=ptime:", "a=maxptime:", "a=rtcp:", "a=", "a=rtcp-mux", "a=mid:", "b=AS:"])
    for kind in draw(st.lists(extra, max_size=4)):
        value = draw(PTIMES) if "ptime" in kind else draw(RTCP) if kind == "a=rtcp:" else draw(DIRECTIONS)
        lines.append(kind + value)
    return lines


@st.composite
def offers(draw: st.DrawFn) -> str:
    lines = ["v=0", draw(st.sampled_from(["o=- 1 1 IN IP4 192.0.2.10", "o=alice 2890844526 2890844526 IN IP4 host",
                                          "o=- 1 1 IN IP6 ::1"])),
             "s=" + draw(st.sampled_from(["-", "call", ""]))]
    if draw(mostly(["c"], [""])):
        lines.append(f"c={draw(HOSTS)}")
    lines.append("t=0 0")
    if draw(st.booleans()):
        lines.append("a=" + draw(DIRECTIONS))
    if draw(st.booleans()):
        lines.append("a=ptime:" + draw(PTIMES))
    for section in draw(st.lists(media_section(), min_size=1, max_size=3)):
        lines += section
    eol = draw(st.sampled_from(["\r\n", "\n", "\r\n", "\r"]))
    return eol.join(lines) + eol


BASE_OFFER = ("v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
              "m=audio 4000 RTP/AVP 0 8 9 111 101\r\na=rtpmap:111 opus/48000/2\r\n"
              "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")


@fuzz(250)
@given(offers())
def test_answer_generated_offers(offer: str) -> None:
    check_sdp(offer)
    check_answer(offer)


@fuzz(100)
@given(offers(), st.lists(st.sampled_from(["PCMU", "PCMA", "G722", "opus", "L16", "pcmu"]), max_size=4))
def test_answer_generated_offers_other_rooms(offer: str, allowed: list[str]) -> None:
    check_answer(offer, allowed)


@fuzz(300)
@given(st.binary(max_size=400))
def test_sdp_arbitrary_bytes(data: bytes) -> None:
    check_sdp(data)
    check_answer(data)


@fuzz(300)
@given(st.lists(st.tuples(st.integers(0, len(BASE_OFFER)), st.integers(0, 12),
                          st.text(max_size=12) | st.sampled_from(["\r\n", "m=audio 0 RTP/AVP 0\r\n", " ", "²",
                                                                   "c=IN IP4 ", "a=rtpmap:", "/", "0"])),
                min_size=1, max_size=4))
def test_sdp_mutated_offer(edits: list[tuple[int, int, str]]) -> None:
    offer = BASE_OFFER
    for at, cut, text in edits:
        at = min(at, len(offer))
        offer = offer[:at] + text + offer[at + cut:]
    check_sdp(offer)
    check_answer(offer)


def test_base_offer_is_answered() -> None:
    media = check_answer(BASE_OFFER)
    assert media is not None and media.codec == "PCMU" and media.dtmf_pt == 101


# -- regressions found by the targets above (bridge/sdp is owned by another engineer) ----------
def _offer(m_line: str = "m=audio 4000 RTP/AVP 0", *extra: str, version: str = "0") -> bytes:
    return "\r\n".join([f"v={version}", "o=- 1 1 IN IP4 192.0.2.10", "s=-", "c=IN IP4 192.0.2.10", "t=0 0",
                        m_line, *extra, ""]).encode()


def _answer(offer: bytes) -> None:
    answer_offer(offer, ALLOWED, "127.0.0.1", 20000, 1, 1)


# Regression tests for what the fuzzers found in the SDP code (fixed: model.is_number, and a c=
# whose address is empty is refused): str.isdigit() accepted '²' and int() then raised ValueError,
# numbers of more than 4,300 digits made int() raise, and 'c=IN IP4 /127' was kept as an empty
# address whose serialisation did not parse.


@pytest.mark.parametrize("offer", [_offer(version="²"), _offer("m=audio ² RTP/AVP 0"),
                                   _offer("m=audio 4000/² RTP/AVP 0")], ids=["v", "m-port", "m-port-count"])
def test_sdp_superscript_digit_parse(offer: bytes) -> None:
    with pytest.raises(SdpError):
        parse_sdp(offer)


@pytest.mark.parametrize("offer", [
    _offer("m=audio 4000 RTP/AVP ²"),
    _offer("m=audio 4000 RTP/AVP 0", "a=rtpmap:²0 PCMU/8000"),
    _offer("m=audio 4000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000²"),
    _offer("m=audio 4000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000/²"),
    _offer("m=audio 4000 RTP/AVP 0", "a=fmtp:² 0-16"),
    _offer("m=audio 4000 RTP/AVP 0", "a=rtcp:²"),
], ids=["m-format", "rtpmap-pt", "rtpmap-clock", "rtpmap-channels", "fmtp-pt", "rtcp"])
def test_sdp_superscript_digit_answer(offer: bytes) -> None:
    try:
        _answer(offer)
    except NegotiationError:
        pass


@pytest.mark.parametrize("offer", [
    _offer("m=audio " + "1" * 5000 + " RTP/AVP 0"),
    _offer("m=audio 4000 RTP/AVP " + "1" * 5000),
    _offer("m=audio 4000 RTP/AVP 0", "a=rtpmap:0 PCMU/" + "8" * 5000),
    _offer("m=audio 4000 RTP/AVP 0", "a=rtcp:" + "1" * 5000),
], ids=["m-port", "m-format", "rtpmap-clock", "rtcp"])
def test_sdp_huge_number(offer: bytes) -> None:
    try:
        _answer(offer)
    except NegotiationError:
        pass


def test_sdp_empty_c_address() -> None:
    """Either parse_sdp rejects the offer, or what it accepted serialises to SDP that parses."""
    try:
        sd = parse_sdp(_offer().replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 /127"))
    except SdpError:
        return
    parse_sdp(sd.serialize())
