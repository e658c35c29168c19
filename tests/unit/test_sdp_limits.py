"""Hostile offers are refused at the edge (488 + warning code) or the bad attribute ignored."""

from __future__ import annotations

import pytest

from bridge.sdp import NegotiationError
from bridge.sdp.limits import MAX_FORMATS
from bridge.sdp.negotiate import accept_answer, answer_offer, build_offer

ALL = ["PCMU", "PCMA", "G722", "opus"]


def offer(media: str, conn: str = "c=IN IP4 192.0.2.1\r\n") -> bytes:
    return ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n" + conn + "t=0 0\r\n" + media).encode()


def refused(body: bytes) -> NegotiationError:
    with pytest.raises(NegotiationError) as info:
        answer_offer(body, ALL, "127.0.0.1", 20000, 1, 1)
    return info.value


@pytest.mark.parametrize("pt", ["300", "128", "-1", "1e2", "99999999999999999999"])
def test_payload_type_out_of_range_is_refused(pt: str) -> None:
    err = refused(offer(f"m=audio 5000 RTP/AVP {pt} 0\r\na=rtpmap:{pt} PCMU/8000\r\n"))
    assert err.warn_code == 305 and "payload type" in err.reason


@pytest.mark.parametrize("port", [65535, 99999])
def test_port_whose_rtcp_would_overflow_is_refused(port: int) -> None:
    err = refused(offer(f"m=audio {port} RTP/AVP 0\r\n"))
    assert "port" in err.reason


def test_port_65534_is_the_last_usable() -> None:
    nm = answer_offer(offer("m=audio 65534 RTP/AVP 0\r\n"), ALL, "127.0.0.1", 20000, 1, 1)
    assert nm.remote_port == 65534 and nm.remote_rtcp_port == 65535


def test_layered_port_count_is_refused() -> None:
    assert refused(offer("m=audio 5000/2 RTP/AVP 0\r\n")).warn_code == 307


@pytest.mark.parametrize("conn", [
    "c=IN IP4 media.example.com\r\n",       # a host name: never resolved
    "c=IN IP4 2001:db8::1\r\n",             # wrong family for the address type
    "c=IN IP6 192.0.2.1\r\n",
    "c=IN IP4 224.2.1.1/127\r\n",           # multicast
    "c=IN IP4 255.255.255.255\r\n",         # broadcast
    "c=IN XYZ 192.0.2.1\r\n",
    "c=ATM NSAP 192.0.2.1\r\n",
])
def test_connection_must_be_a_unicast_ip_literal(conn: str) -> None:
    err = refused(offer("m=audio 5000 RTP/AVP 0\r\n", conn))
    assert err.warn_code in (300, 301), err.reason


def test_null_address_is_still_hold() -> None:
    nm = answer_offer(offer("m=audio 5000 RTP/AVP 0\r\n", "c=IN IP4 0.0.0.0\r\n"), ALL, "127.0.0.1", 2, 1, 1)
    assert nm.on_hold and nm.remote_host == "0.0.0.0"


def test_too_many_formats_is_refused() -> None:
    fmts = " ".join(str(96 + i % 32) for i in range(MAX_FORMATS + 1))
    assert refused(offer(f"m=audio 5000 RTP/AVP {fmts}\r\n")).warn_code == 305


def test_too_many_attributes_is_refused() -> None:
    attrs = "".join(f"a=x-junk:{i}\r\n" for i in range(500))
    assert refused(offer("m=audio 5000 RTP/AVP 0\r\n" + attrs)).warn_code == 307


def test_too_many_media_lines_is_refused() -> None:
    assert refused(offer("m=video 0 RTP/AVP 31\r\n" * 20 + "m=audio 5000 RTP/AVP 0\r\n")).warn_code == 307


@pytest.mark.parametrize("rtpmap", [
    "a=rtpmap:8 opus/48000/2",      # static type rebound to another codec
    "a=rtpmap:74 opus/48000/2",     # RTCP conflict range
    "a=rtpmap:50 opus/48000/2",     # dynamic codec outside 96-127
    "a=rtpmap:111 opus/44100/2",    # wrong clock
    "a=rtpmap:111 opus/48000/6",    # wrong channel count
])
def test_insane_codec_bindings_are_never_chosen(rtpmap: str) -> None:
    pt = rtpmap.split(":")[1].split()[0]
    err = refused(offer(f"m=audio 5000 RTP/AVP {pt}\r\n{rtpmap}\r\n"))
    assert "no common codec" in err.reason


def test_pcmu_with_two_channels_is_not_pcmu() -> None:
    err = refused(offer("m=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000/2\r\n"))
    assert "no common codec" in err.reason


@pytest.mark.parametrize("dtmf", [
    "a=rtpmap:101 telephone-event/0",
    "a=rtpmap:101 telephone-event/12345",
    "a=rtpmap:13 telephone-event/8000",   # a static type
])
def test_unusable_telephone_event_is_ignored_not_fatal(dtmf: str) -> None:
    pt = dtmf.split(":")[1].split()[0]
    nm = answer_offer(offer(f"m=audio 5000 RTP/AVP 0 {pt}\r\n{dtmf}\r\n"), ALL, "127.0.0.1", 2, 1, 1)
    assert nm.codec == "PCMU" and nm.dtmf_pt is None


@pytest.mark.parametrize("value, expected", [("0", 20), ("-5", 20), ("100000", 20), ("nan", 20),
                                             ("1e309", 20), ("40", 40)])
def test_ptime_outside_what_the_codec_allows_falls_back(value: str, expected: int) -> None:
    nm = answer_offer(offer(f"m=audio 5000 RTP/AVP 0\r\na=ptime:{value}\r\n"), ALL, "127.0.0.1", 2, 1, 1)
    assert nm.ptime == expected


@pytest.mark.parametrize("rtcp, expected", [("0", 5001), ("70000", 5001), ("abc", 5001), ("7000", 7000),
                                            ("7000 IN IP4 198.51.100.9", 7000)])
def test_unusable_rtcp_attribute_is_ignored(rtcp: str, expected: int) -> None:
    nm = answer_offer(offer(f"m=audio 5000 RTP/AVP 0\r\na=rtcp:{rtcp}\r\n"), ALL, "127.0.0.1", 2, 1, 1)
    assert nm.remote_rtcp_port == expected


def test_answers_are_held_to_the_same_rules() -> None:
    ours = build_offer(ALL, "127.0.0.1", 20000, 1, 1)
    with pytest.raises(NegotiationError) as info:
        accept_answer(ours, offer("m=audio 5000 RTP/AVP 0\r\n", "c=IN IP4 evil.example\r\n"))
    assert info.value.warn_code == 301
    with pytest.raises(NegotiationError):
        accept_answer(ours, offer("m=audio 65535 RTP/AVP 0\r\n"))
