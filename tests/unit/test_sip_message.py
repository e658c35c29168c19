import pytest

from bridge.sip.headers import parse_name_addr, parse_via, split_commas
from bridge.sip.message import FramingError, SipParseError, SipRequest, SipResponse, StreamFramer, parse_message
from bridge.sip.uri import UriError, parse_uri

BASIC = (
    "INVITE sip:room1@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: \"Alice, A\" <sip:alice@10.0.0.1>;tag=a1\r\n"
    "To: sip:room1@127.0.0.1\r\n"
    "Call-ID: call-1@10.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@10.0.0.1:5062>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length:    4   \r\n"
    "\r\n"
    "v=0\r\n"
)


def test_basic_request_padded_content_length_and_to_without_brackets() -> None:
    msg = parse_message(BASIC.encode())
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE"
    assert msg.uri.user == "room1" and msg.uri.port is None
    assert msg.body == b"v=0\r"  # Content-Length wins over trailing bytes
    assert msg.to.uri.user == "room1" and msg.to.tag is None
    assert msg.from_.display == "Alice, A" and msg.from_.tag == "a1"
    assert msg.top_via.param("rport") == "" and msg.top_via.port == 5062
    assert msg.cseq.seq == 1 and msg.cseq.method == "INVITE"


def test_compact_forms_folding_and_multi_values() -> None:
    raw = (
        "OPTIONS sip:room1@example.com SIP/2.0\r\n"
        "v: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1, SIP/2.0/TCP 10.0.0.2:5060\r\n"
        " ;branch=z9hG4bK2\r\n"
        "f: <sip:a@x>;tag=1\r\n"
        "t: <sip:room1@example.com>\r\n"
        "i: abc\r\n"
        "CSEQ: 7 OPTIONS\r\n"
        "m: \"B, C\" <sip:b@y>, <sip:c@z;lr>\r\n"
        "k: replaces,  timer\r\n"
        "Route: <sip:p1;lr>,<sip:p2;lr>\r\n"
        "Route: <sip:p3;lr>\r\n"
        "l: 0\r\n\r\n"
    )
    msg = parse_message(raw.encode())
    assert len(msg.vias) == 2
    assert msg.vias[1].branch == "z9hG4bK2" and msg.vias[1].transport == "TCP"
    assert msg.headers.get_all("Contact") == ['"B, C" <sip:b@y>', "<sip:c@z;lr>"]
    assert msg.headers.get_all("Supported") == ["replaces", "timer"]
    assert msg.headers.get_all("route") == ["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
    assert msg.call_id == "abc"


def test_ipv6_references() -> None:
    uri = parse_uri("sip:room@[2001:db8::1]:5070;transport=tcp")
    assert uri.host == "[2001:db8::1]" and uri.port == 5070 and uri.param("transport") == "tcp"
    assert str(uri) == "sip:room@[2001:db8::1]:5070;transport=tcp"
    via = parse_via("SIP/2.0/UDP [::1]:5060;branch=z9hG4bKx")
    assert via.host == "[::1]" and via.port == 5060
    with pytest.raises(UriError):
        parse_uri("sip:room@[::1")


def test_name_addr_without_brackets_params_belong_to_header() -> None:
    na = parse_name_addr("sip:room1@127.0.0.1;tag=xyz")
    assert na.tag == "xyz" and na.uri.params == ()
    na = parse_name_addr("Bob <sip:bob@h;transport=udp>;tag=9")
    assert na.display == "Bob" and na.uri.param("transport") == "udp" and na.tag == "9"


def test_split_commas_respects_quotes_and_angles() -> None:
    assert split_commas('"a,b" <sip:x?h=1,2>, <sip:y>') == ['"a,b" <sip:x?h=1,2>', "<sip:y>"]


def test_response_roundtrip() -> None:
    raw = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n" \
          b"To: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    msg = parse_message(raw)
    assert isinstance(msg, SipResponse) and msg.status == 200 and msg.reason == "OK"
    again = parse_message(msg.to_bytes())
    assert isinstance(again, SipResponse) and again.cseq.method == "BYE"


def test_serialiser_sets_content_length() -> None:
    msg = parse_message(BASIC.encode())
    msg.body = b"v=0\r\no=x\r\n"
    out = msg.to_bytes()
    assert b"Content-Length: 10\r\n" in out and out.count(b"Content-Length") == 1
    assert parse_message(out).body == b"v=0\r\no=x\r\n"


@pytest.mark.parametrize(
    "raw, reason, line_ok",
    [
        (BASIC.replace("Call-ID: call-1@10.0.0.1\r\n", ""), "missing Call-ID", True),
        (BASIC.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), "CSeq method", True),
        (BASIC.replace("CSeq: 1 INVITE", "CSeq: x INVITE"), "bad CSeq", True),
        (BASIC.replace("Content-Length:    4", "Content-Length: 400"), "Content-Length larger", True),
        (BASIC.replace("sip:room1@127.0.0.1 SIP", "sip:room1@ SIP"), "Request-URI", False),
        (BASIC.replace("From: \"Alice, A\" <sip:alice@10.0.0.1>", "From: <sip:alice@10.0.0.1"), "bad From", True),
    ],
)
def test_malformed_requests_keep_partial_headers(raw: str, reason: str, line_ok: bool) -> None:
    with pytest.raises(SipParseError) as ei:
        parse_message(raw.encode())
    err = ei.value
    assert reason in err.reason
    assert err.request_line_ok is line_ok
    assert err.partial is not None and err.partial.method == "INVITE"
    assert err.partial.headers.get("Via") is not None


@pytest.mark.parametrize("raw", [b"", b"\r\n\r\n", b"hello", b"\x00\xff\xfe", b"SIP/2.0 abc OK\r\n\r\n",
                                 b"INVITE sip:a@b\r\n\r\n"])
def test_garbage_raises_parse_error(raw: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(raw)


def test_framer_splits_stream_and_skips_keepalives() -> None:
    a = BASIC.encode()[:-1]  # exactly Content-Length 4 body
    b = b"BYE sip:x SIP/2.0\r\nl: 0\r\n\r\n"
    f = StreamFramer()
    stream = b"\r\n\r\n" + a + b"\r\n" + b
    out: list[bytes] = []
    for i in range(0, len(stream), 7):
        out += f.feed(stream[i : i + 7])
    assert out == [a, b]


def test_framer_missing_content_length_means_empty_body() -> None:
    f = StreamFramer()
    assert f.feed(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: 1\r\n\r\nOPTIONS") == [
        b"OPTIONS sip:x SIP/2.0\r\nCall-ID: 1\r\n\r\n"
    ]


def test_framer_rejects_bad_length() -> None:
    with pytest.raises(FramingError):
        StreamFramer().feed(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: lots\r\n\r\n")
    with pytest.raises(FramingError):
        StreamFramer(max_size=100).feed(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 1000\r\n\r\n")


def test_sip_core_is_pure() -> None:
    import ast
    import pathlib

    import bridge.sip

    for path in pathlib.Path(bridge.sip.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not names & {"asyncio", "socket", "threading", "time", "os", "select"}, path


def test_sipp_style_invite_parses() -> None:
    raw = (
        "INVITE sip:room1@127.0.0.1:5060 SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-1-0\n"
        "From: sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag001\n"
        "To: room1 <sip:room1@127.0.0.1:5060>\n"
        "Call-ID: 1-4242@127.0.0.1\n"
        "CSeq: 1 INVITE\n"
        "Contact: sip:sipp@127.0.0.1:5061\n"
        "Max-Forwards: 70\n"
        "Subject: Performance Test\n"
        "Content-Type: application/sdp\n"
        "Content-Length:   5\n"
        "\n"
        "v=0\r\n"
    ).encode()
    msg = parse_message(raw)
    assert isinstance(msg, SipRequest) and msg.body == b"v=0\r\n"
    assert msg.to.display == "room1" and msg.headers.get("Contact") == "sip:sipp@127.0.0.1:5061"
