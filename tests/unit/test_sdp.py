"""SDP parsing and offer/answer against SDP shaped like real clients send."""

from __future__ import annotations

import pytest

from bridge.sdp import (
    NegotiationError,
    SdpError,
    accept_answer,
    answer_offer,
    build_offer,
    parse_sdp,
)

# Shaped after baresip 1.0 with PCMU,PCMA,G722/16000/1,opus/48000/2 enabled.
BARESIP_OFFER = (
    "v=0\r\n"
    "o=- 1209386215 3584930633 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "a=tool:baresip 1.0.0\r\n"
    "m=audio 10000 RTP/AVP 0 8 9 96 101\r\n"
    "b=AS:64\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=fmtp:96 stereo=1;sprop-stereo=1\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=rtcp:10001\r\n"
    "a=sendrecv\r\n"
    "a=label:1\r\n"
    "a=ssrc:1922424571 cname:sip:alice@127.0.0.1\r\n"
    "a=rtcp-rsize\r\n"
)

# Captured verbatim from baresip 1.0.0 (Debian 12) dialing with
# audio_codecs=PCMU,PCMA,G722/16000/1,opus/48000/2.
BARESIP_CAPTURED = (
    "v=0\r\no=- 2467545438 2085551644 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "a=tool:baresip 1.0.0\r\nm=audio 27106 RTP/AVP 0 8 9 96 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:96 opus/48000/2\r\n"
    "a=fmtp:96 stereo=1;sprop-stereo=1\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    "a=sendrecv\r\na=label:1\r\na=rtcp-rsize\r\na=ssrc:4190099764 cname:sip:alice@127.0.0.1\r\n"
    "a=minptime:20\r\na=ptime:20\r\n"
)

# SIPp's uac scenario body: static PT 0, no rtpmap, LF only, trailing spaces.
SIPP_OFFER = (
    "v=0\n"
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1  \n"
    "s=-\n"
    "c=IN IP4 127.0.0.1\n"
    "t=0 0\n"
    "m=audio 6000 RTP/AVP 0\n"
    "a=rtpmap:0 PCMU/8000   \n"
)

SIPP_NO_RTPMAP = "v=0\r\no=u 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"


def offer(media: str, session: str = "c=IN IP4 192.0.2.1\r\n") -> bytes:
    return ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n" + session + "t=0 0\r\n" + media).encode()


def answer_media(nm_answer: bytes) -> list[str]:
    return [ln for ln in nm_answer.decode().split("\r\n") if ln.startswith("m=")]


# --- parsing ---------------------------------------------------------------

def test_parse_baresip_offer_keeps_everything() -> None:
    sd = parse_sdp(BARESIP_OFFER.encode())
    assert sd.origin.session_id == "1209386215"
    assert sd.connection is not None and sd.connection.address == "127.0.0.1"
    (m,) = sd.media
    assert m.port == 10000 and m.payload_types() == [0, 8, 9, 96, 101]
    maps = m.rtpmaps()
    assert maps[96].encoding == "opus" and maps[96].clock_rate == 48000 and maps[96].channels == 2
    assert m.fmtps()[101] == "0-15"
    assert m.attribute("rtcp") == "10001"
    assert sd.media_direction(m) == "sendrecv"
    assert ("b", "AS:64") in m.extra
    out = sd.serialize().decode()
    assert "a=ssrc:1922424571 cname:sip:alice@127.0.0.1\r\n" in out
    assert "a=tool:baresip 1.0.0\r\n" in out
    assert parse_sdp(sd.serialize()).serialize() == sd.serialize()


def test_parse_lf_trailing_spaces_and_static_without_rtpmap() -> None:
    sd = parse_sdp(SIPP_OFFER)
    assert sd.origin.address == "127.0.0.1"
    assert sd.media[0].rtpmaps()[0].encoding == "PCMU"
    sd2 = parse_sdp(SIPP_NO_RTPMAP.encode())
    assert sd2.media[0].rtpmaps()[0].clock_rate == 8000


def test_unknown_lines_kept_and_serialized_in_order() -> None:
    sd = parse_sdp(offer("m=audio 5 RTP/AVP 0\r\ny=weird\r\n", "c=IN IP4 1.2.3.4\r\nb=CT:128\r\n"))
    assert ("y", "weird") in sd.media[0].extra
    text = sd.serialize().decode()
    assert text.index("c=IN IP4 1.2.3.4") < text.index("b=CT:128") < text.index("t=0 0")
    assert "y=weird" in text


@pytest.mark.parametrize("bad", [
    b"", b"\r\n\r\n", b"hello world", b"o=- 1 1 IN IP4 x\r\nv=0\r\n",
    b"v=0\r\ns=-\r\n",                                # no o=
    b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nm=audio abc RTP/AVP 0\r\n",
    b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nm=audio 70000 RTP/AVP 0\r\n",
    b"v=0\r\no=- 1 1 IN IP4 x\r\ns=-\r\nc=IN\r\n",
    b"v=0\r\no=- 1\r\ns=-\r\n",
    b"v=0\r\no=- 1 1 IN IP4 x\r\nthis is not sdp\r\n",
])
def test_unusable_input_raises_sdp_error(bad: bytes) -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(bad)
    assert info.value.reason


def test_bad_rtpmap_ignored_not_fatal() -> None:
    sd = parse_sdp(offer("m=audio 5 RTP/AVP 0 97\r\na=rtpmap:97 garbage\r\n"))
    assert set(sd.media[0].rtpmaps()) == {0}


# --- answering -------------------------------------------------------------

def test_answer_baresip_follows_offerer_order() -> None:
    nm = answer_offer(BARESIP_OFFER.encode(), ["opus", "G722", "PCMA", "PCMU"], "10.1.1.1", 20000, 7, 1)
    assert (nm.codec, nm.payload_type, nm.clock_rate) == ("PCMU", 0, 8000)
    assert (nm.dtmf_pt, nm.dtmf_clock_rate) == (101, 8000)
    assert (nm.remote_host, nm.remote_port, nm.ptime) == ("127.0.0.1", 10000, 20)
    assert nm.remote_rtcp_port == 10001
    assert nm.offer_direction == "sendrecv" and not nm.on_hold
    text = nm.answer_sdp.decode()
    assert "o=- 7 1 IN IP4 10.1.1.1\r\n" in text
    assert "s=tutti-bridge\r\n" in text and "c=IN IP4 10.1.1.1\r\n" in text and "t=0 0\r\n" in text
    assert answer_media(nm.answer_sdp) == ["m=audio 20000 RTP/AVP 0 101"]
    assert "a=rtpmap:0 PCMU/8000\r\n" in text
    assert "a=rtpmap:101 telephone-event/8000\r\n" in text and "a=fmtp:101 0-16\r\n" in text
    assert "a=ptime:20\r\n" in text and "a=sendrecv\r\n" in text
    # The answer itself is valid SDP.
    assert parse_sdp(nm.answer_sdp).media[0].port == 20000


def test_answer_opus_only_room() -> None:
    nm = answer_offer(BARESIP_OFFER.encode(), ["opus"], "10.1.1.1", 20000, 7, 1)
    assert (nm.codec, nm.payload_type, nm.clock_rate, nm.channels) == ("opus", 96, 48000, 2)
    assert nm.fmtp == "stereo=1;sprop-stereo=1"
    text = nm.answer_sdp.decode()
    assert "a=rtpmap:96 opus/48000/2\r\n" in text
    assert "a=fmtp:96 useinbandfec=1;stereo=0;sprop-stereo=0\r\n" in text
    # Only telephone-event/8000 offered: take it although the codec clock is 48000.
    assert (nm.dtmf_pt, nm.dtmf_clock_rate) == (101, 8000)


def test_answer_g722_keeps_8000_clock() -> None:
    nm = answer_offer(BARESIP_OFFER.encode(), ["G722"], "h", 1, 1, 1)
    assert (nm.codec, nm.payload_type, nm.clock_rate) == ("G722", 9, 8000)
    assert "a=rtpmap:9 G722/8000\r\n" in nm.answer_sdp.decode()


def test_answer_sipp_static_without_rtpmap() -> None:
    nm = answer_offer(SIPP_NO_RTPMAP.encode(), ["PCMA", "PCMU"], "127.0.0.1", 4000, 1, 1)
    assert nm.codec == "PCMU" and nm.dtmf_pt is None and nm.remote_host == "10.0.0.5"
    assert nm.remote_rtcp_port == 6001
    assert answer_media(nm.answer_sdp) == ["m=audio 4000 RTP/AVP 0"]
    assert "telephone-event" not in nm.answer_sdp.decode()


@pytest.mark.parametrize("pt", [96, 97, 101])
def test_telephone_event_payload_type_mapped_from_offer(pt: int) -> None:
    nm = answer_offer(offer(f"m=audio 5000 RTP/AVP 8 {pt}\r\na=rtpmap:{pt} telephone-event/8000\r\n"),
                      ["PCMA"], "h", 1, 1, 1)
    assert (nm.dtmf_pt, nm.dtmf_clock_rate) == (pt, 8000)
    assert answer_media(nm.answer_sdp) == [f"m=audio 1 RTP/AVP 8 {pt}"]


def test_telephone_event_prefers_codec_clock_rate() -> None:
    media = ("m=audio 5000 RTP/AVP 111 9 101 102 103\r\na=rtpmap:111 opus/48000/2\r\n"
             "a=rtpmap:101 telephone-event/8000\r\na=rtpmap:102 telephone-event/16000\r\n"
             "a=rtpmap:103 telephone-event/48000\r\n")
    nm = answer_offer(offer(media), ["opus"], "h", 1, 1, 1)
    assert (nm.dtmf_pt, nm.dtmf_clock_rate) == (103, 48000)
    assert "a=rtpmap:103 telephone-event/48000\r\n" in nm.answer_sdp.decode()
    nm = answer_offer(offer(media), ["G722"], "h", 1, 1, 1)
    assert (nm.dtmf_pt, nm.dtmf_clock_rate) == (101, 8000)


def test_telephone_event_16000_only() -> None:
    media = "m=audio 5000 RTP/AVP 0 100\r\na=rtpmap:100 telephone-event/16000\r\n"
    nm = answer_offer(offer(media), ["PCMU"], "h", 1, 1, 1)
    assert (nm.dtmf_pt, nm.dtmf_clock_rate) == (100, 16000)


def test_media_level_connection_overrides_session() -> None:
    media = "m=audio 5000 RTP/AVP 0\r\nc=IN IP4 198.51.100.7\r\n"
    nm = answer_offer(offer(media, "c=IN IP4 192.0.2.1\r\n"), ["PCMU"], "h", 1, 1, 1)
    assert nm.remote_host == "198.51.100.7"


def test_media_level_connection_only() -> None:
    media = "m=audio 5000 RTP/AVP 0\r\nc=IN IP4 198.51.100.8\r\n"
    nm = answer_offer(offer(media, ""), ["PCMU"], "h", 1, 1, 1)
    assert nm.remote_host == "198.51.100.8"


def test_missing_connection_is_negotiation_error() -> None:
    with pytest.raises(NegotiationError):
        answer_offer(offer("m=audio 5000 RTP/AVP 0\r\n", ""), ["PCMU"], "h", 1, 1, 1)


@pytest.mark.parametrize(("offered", "answered", "hold"), [
    ("sendrecv", "sendrecv", False), ("sendonly", "recvonly", True),
    ("recvonly", "sendonly", False), ("inactive", "inactive", True),
])
def test_direction_mirrored_media_level(offered: str, answered: str, hold: bool) -> None:
    nm = answer_offer(offer(f"m=audio 5000 RTP/AVP 0\r\na={offered}\r\n"), ["PCMU"], "h", 1, 1, 1)
    assert nm.offer_direction == offered and nm.on_hold is hold
    assert f"a={answered}\r\n" in nm.answer_sdp.decode()


def test_direction_session_level_and_media_override() -> None:
    nm = answer_offer(offer("m=audio 5000 RTP/AVP 0\r\n", "c=IN IP4 1.1.1.1\r\na=sendonly\r\n"),
                      ["PCMU"], "h", 1, 1, 1)
    assert nm.offer_direction == "sendonly" and nm.on_hold
    nm = answer_offer(offer("m=audio 5000 RTP/AVP 0\r\na=sendrecv\r\n", "c=IN IP4 1.1.1.1\r\na=sendonly\r\n"),
                      ["PCMU"], "h", 1, 1, 1)
    assert nm.offer_direction == "sendrecv" and not nm.on_hold


def test_old_style_hold_with_null_address() -> None:
    nm = answer_offer(offer("m=audio 5000 RTP/AVP 0\r\n", "c=IN IP4 0.0.0.0\r\n"), ["PCMU"], "h", 1, 1, 1)
    assert nm.on_hold and nm.remote_host == "0.0.0.0"


def test_no_common_codec_reason() -> None:
    media = "m=audio 5000 RTP/AVP 18 98\r\na=rtpmap:98 PCMX/8000\r\n"
    with pytest.raises(NegotiationError) as info:
        answer_offer(offer(media), ["PCMU", "PCMA"], "h", 1, 1, 1)
    assert info.value.reason == "no common codec: offered G729, PCMX; allowed PCMU, PCMA"


def test_codec_with_wrong_clock_not_matched() -> None:
    media = "m=audio 5000 RTP/AVP 98\r\na=rtpmap:98 opus/16000/1\r\n"
    with pytest.raises(NegotiationError):
        answer_offer(offer(media), ["opus"], "h", 1, 1, 1)


def test_port_zero_audio_is_not_accepted() -> None:
    with pytest.raises(NegotiationError):
        answer_offer(offer("m=audio 0 RTP/AVP 0\r\n"), ["PCMU"], "h", 1, 1, 1)


def test_srtp_audio_rejected() -> None:
    with pytest.raises(NegotiationError):
        answer_offer(offer("m=audio 5000 RTP/SAVP 0\r\n"), ["PCMU"], "h", 1, 1, 1)


def test_multiple_mlines_video_rejected_with_port_zero_in_order() -> None:
    media = ("m=video 6000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
             "m=audio 0 RTP/AVP 0\r\n"
             "m=audio 5000 RTP/AVP 8 0\r\n"
             "m=audio 5002 RTP/AVP 0\r\n"
             "m=application 7000 UDP/BFCP *\r\n")
    nm = answer_offer(offer(media), ["PCMU", "PCMA"], "h", 4000, 1, 1)
    assert nm.codec == "PCMA" and nm.remote_port == 5000
    assert answer_media(nm.answer_sdp) == [
        "m=video 0 RTP/AVP 96", "m=audio 0 RTP/AVP 0", "m=audio 4000 RTP/AVP 8",
        "m=audio 0 RTP/AVP 0", "m=application 0 UDP/BFCP *",
    ]


def test_ptime_from_offer_and_ipv6() -> None:
    media = "m=audio 5000 RTP/AVP 0\r\na=ptime:30\r\n"
    nm = answer_offer(offer(media, "c=IN IP6 2001:db8::1\r\n"), ["PCMU"], "2001:db8::2", 4000, 1, 1)
    assert nm.ptime == 30 and nm.remote_host == "2001:db8::1"
    text = nm.answer_sdp.decode()
    assert "c=IN IP6 2001:db8::2\r\n" in text and "o=- 1 1 IN IP6 2001:db8::2\r\n" in text


# --- our offers ------------------------------------------------------------

def test_build_offer_lists_all_with_rtpmaps() -> None:
    sdp = build_offer(["G722", "opus", "PCMU"], "10.0.0.1", 30000, 5, 2, direction="sendonly")
    sd = parse_sdp(sdp)
    (m,) = sd.media
    assert m.payload_types() == [9, 111, 0, 101, 110]
    maps = m.rtpmaps()
    assert maps[9].encoding == "G722" and maps[111].channels == 2 and maps[110].clock_rate == 48000
    assert m.direction == "sendonly" and m.attribute("ptime") == "20"
    assert sd.session_name == "tutti-bridge" and sd.origin.session_version == "2"
    assert "a=rtpmap:0 PCMU/8000\r\n" in sdp.decode()


def test_build_offer_round_trips_through_answer_offer_and_accept_answer() -> None:
    ours = build_offer(["PCMA", "opus"], "10.0.0.1", 30000, 5, 1)
    remote = answer_offer(ours, ["opus"], "10.0.0.2", 40000, 9, 1)
    assert remote.codec == "opus" and remote.dtmf_clock_rate == 48000
    nm = accept_answer(ours, remote.answer_sdp)
    assert (nm.codec, nm.payload_type, nm.clock_rate) == ("opus", 111, 48000)
    assert (nm.dtmf_pt, nm.dtmf_clock_rate) == (110, 48000)
    assert (nm.remote_host, nm.remote_port) == ("10.0.0.2", 40000)
    assert nm.answer_sdp == b"" and not nm.on_hold


def test_accept_answer_rejections() -> None:
    ours = build_offer(["PCMU"], "10.0.0.1", 30000, 5, 1)
    with pytest.raises(NegotiationError):
        accept_answer(ours, offer("m=audio 0 RTP/AVP 0\r\n"))
    with pytest.raises(NegotiationError):
        accept_answer(ours, offer("m=audio 5000 RTP/AVP 8\r\n"))
    nm = accept_answer(ours, offer("m=audio 5000 RTP/AVP 0\r\na=inactive\r\n"))
    assert nm.on_hold and nm.offer_direction == "inactive"


def test_unparseable_offer_is_a_negotiation_error_too() -> None:
    with pytest.raises(SdpError):
        answer_offer(b"garbage", ["PCMU"], "h", 1, 1, 1)
    with pytest.raises(NegotiationError):       # callers mapping only 488 never crash
        answer_offer(b"garbage", ["PCMU"], "h", 1, 1, 1)


@pytest.mark.parametrize(("allowed", "codec", "pt", "clock"), [
    (["PCMU", "PCMA"], "PCMU", 0, 8000), (["PCMA"], "PCMA", 8, 8000),
    (["G722", "opus"], "G722", 9, 8000), (["opus"], "opus", 96, 48000),
])
def test_answer_captured_baresip_offer(allowed: list[str], codec: str, pt: int, clock: int) -> None:
    nm = answer_offer(BARESIP_CAPTURED.encode(), allowed, "127.0.0.1", 30000, 3, 1)
    assert (nm.codec, nm.payload_type, nm.clock_rate) == (codec, pt, clock)
    assert (nm.dtmf_pt, nm.dtmf_clock_rate, nm.ptime) == (101, 8000, 20)
    assert (nm.remote_host, nm.remote_port, nm.remote_rtcp_port) == ("127.0.0.1", 27106, 27107)
    assert answer_media(nm.answer_sdp) == [f"m=audio 30000 RTP/AVP {pt} 101"]
    assert parse_sdp(BARESIP_CAPTURED).serialize().decode() == BARESIP_CAPTURED
