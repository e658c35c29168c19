"""Hypothesis: receive() never raises and a bad message never disturbs an established call."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.sip import Call, CallConfirmed, Flow, IncomingCall, SipEndpoint, SipResponse, parse_message

UDP = Flow("udp", ("10.0.0.1", 5062))
BASE = (
    b"INVITE sip:room1@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1;rport\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:a@10.0.0.1>;tag=ft\r\nTo: <sip:room1@127.0.0.1>\r\n"
    b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@10.0.0.1:5062>\r\nContent-Length: 0\r\n\r\n"
)
TOKENS = [b"INVITE", b"ACK", b"BYE", b"CANCEL", b"OPTIONS", b"SIP/2.0", b"SIP/2.0 200 OK", b"\r\n", b":",
          b";", b",", b"<", b">", b'"', b"Via", b"v", b"CSeq", b"Call-ID", b"To", b"From", b"tag=", b"branch=",
          b"z9hG4bK", b"Content-Length", b"l", b" ", b"\t", b"[", b"]", b"@", b"sip:", b"1", b"0", b"-1",
          b"99999999999", b"rport", b"Require", b"Max-Forwards", b"\xff", b"\x00"]


def established() -> tuple[SipEndpoint, Call]:
    ep = SipEndpoint(contact_host="127.0.0.1", contact_port=5060, rng=random.Random(3))
    ep.receive(BASE, UDP, 0)
    ev = ep.next_event()
    assert isinstance(ev, IncomingCall)
    ep.respond(ev.call, 200, body=b"v=0\r\n", now=0)
    ep.receive(BASE.replace(b"z9hG4bK1", b"z9hG4bK2").replace(b"1 INVITE", b"1 ACK").replace(b"INVITE sip", b"ACK sip")
               .replace(b"<sip:room1@127.0.0.1>\r\n", f"<sip:room1@127.0.0.1>;tag={ev.call.local_tag}\r\n".encode()),
               UDP, 0)
    assert isinstance(ep.next_event(), CallConfirmed)
    ep.messages_to_send()
    return ep, ev.call


def _mutations() -> st.SearchStrategy[bytes]:
    raw = st.binary(max_size=300)
    spliced = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)
    mutated = st.tuples(st.integers(0, len(BASE)), st.integers(0, 40), st.binary(max_size=20)).map(
        lambda t: BASE[: t[0]] + t[2] + BASE[t[0] + t[1] :]
    )
    return st.one_of(raw, spliced, mutated)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutations(), min_size=1, max_size=5), st.sampled_from(["udp", "tcp"]))
def test_receive_never_raises(datas: list[bytes], transport: str) -> None:
    ep, call = established()
    flow = Flow(transport, ("10.0.0.1", 5062), 1 if transport == "tcp" else None)  # type: ignore[arg-type]
    for i, data in enumerate(datas):
        ep.receive(data, flow, 1.0 + i)
        for out in ep.messages_to_send():
            if out.data.startswith((b"SIP/2.0 400 ", b"SIP/2.0 505 ")):
                continue  # echoes the peer's own broken headers, by design
            msg = parse_message(out.data)  # everything else we send must parse
            assert isinstance(msg, SipResponse) or msg.method == "BYE"
        while ep.next_event() is not None:
            pass
    ep.handle_timer(10.0)
    assert ep.internal_errors == 0
    assert call in ep.active_calls() or call.state == "terminated"  # only a real BYE/CANCEL may end it


@settings(max_examples=300, deadline=None)
@given(_mutations())
def test_parser_raises_only_sip_parse_error(data: bytes) -> None:
    from bridge.sip import SipParseError

    try:
        msg = parse_message(data)
    except SipParseError:
        return
    parse_message(msg.to_bytes())  # what parsed must serialise to something that parses again
