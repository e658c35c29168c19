"""Full UAS call flows against SipEndpoint with a fake clock."""

import random

import pytest

from bridge.sip import (
    CallConfirmed, CallEnded, Flow, IncomingCall, Info, ReInvite, SipEndpoint, SipRequest, SipResponse, Update,
    parse_message,
)

UDP = Flow("udp", ("10.0.0.1", 5062))
TCP = Flow("tcp", ("10.0.0.1", 40000), conn_id=7)
SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def req(method: str = "INVITE", *, branch: str = "z9hG4bK1", call_id: str = "c1", from_tag: str = "ft",
        to_tag: str | None = None, cseq: int = 1, cseq_method: str | None = None, body: bytes = b"",
        extra: str = "", via_host: str = "10.0.0.1:5062", rport: bool = True, uri: str = "sip:room1@127.0.0.1",
        transport: str = "UDP") -> bytes:
    to = "<sip:room1@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    head = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {via_host};branch={branch}{';rport' if rport else ''}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: \"Alice\" <sip:alice@10.0.0.1>;tag={from_tag}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Contact: <sip:alice@10.0.0.1:5062>\r\n"
        + extra
        + ("Content-Type: application/sdp\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Harness:
    def __init__(self, **kw: object) -> None:
        self.ep = SipEndpoint(contact_host="127.0.0.1", contact_port=5060, rng=random.Random(1), **kw)  # type: ignore[arg-type]
        self.now = 0.0

    def send(self, data: bytes, flow: Flow = UDP) -> list[SipResponse]:
        self.ep.receive(data, flow, self.now)
        return self.out()

    def out(self) -> list[SipResponse]:
        msgs = []
        for o in self.ep.messages_to_send():
            m = parse_message(o.data)
            assert isinstance(m, SipResponse)
            msgs.append(m)
        return msgs

    def raw_out(self) -> list:
        return self.ep.messages_to_send()

    def events(self) -> list:
        evs = []
        while (e := self.ep.next_event()) is not None:
            evs.append(e)
        return evs

    def advance(self, to: float) -> list:
        """Run timers up to `to`, returning every Outgoing sent."""
        sent = []
        while (t := self.ep.get_timer()) is not None and t <= to:
            self.now = t
            self.ep.handle_timer(t)
            sent += self.ep.messages_to_send()
        self.now = to
        return sent

    def incoming(self, data: bytes | None = None, flow: Flow = UDP):
        resps = self.send(data or req(body=SDP), flow)
        assert [r.status for r in resps] == [100]
        (ev,) = self.events()
        assert isinstance(ev, IncomingCall)
        return ev

    def answered(self, flow: Flow = UDP):
        ev = self.incoming(flow=flow)
        self.ep.respond(ev.call, 200, body=SDP, now=self.now)
        (ok,) = self.out()
        assert ok.status == 200
        return ev.call, ok


def test_invite_200_retransmit_ack_bye() -> None:
    h = Harness()
    ev = h.incoming()
    call = ev.call
    assert ev.offer == SDP and call.room == "room1" and call.caller == ("Alice", "alice")
    assert call.state == "early" and h.ep.active_calls() == [call]
    h.ep.respond(call, 180, now=0.0)
    (ringing,) = h.out()
    assert ringing.status == 180 and ringing.to.tag == call.local_tag
    assert ringing.headers.get("Contact") == "<sip:127.0.0.1:5060>"
    h.ep.respond(call, 200, body=SDP, now=0.1)
    (ok,) = h.out()
    assert ok.status == 200 and ok.body == SDP and ok.headers.get("Content-Type") == "application/sdp"
    assert "INVITE" in ok.headers.get_all("Allow")
    assert call.state == "confirmed"
    # Retransmitted INVITE: the 200 goes out again (not a 100 / not a new call).
    assert [r.status for r in h.send(req(body=SDP))] == [200]
    assert h.events() == []
    # 2xx retransmitted at T1, 2*T1 ... until the ACK.
    sent = h.advance(1.7)  # 200 sent at 0.1: again at 0.6 and 1.6
    assert len(sent) == 2 and all(parse_message(s.data).status == 200 for s in sent)  # type: ignore[union-attr]
    assert h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag)) == []
    (conf,) = h.events()
    assert isinstance(conf, CallConfirmed) and conf.answer is None and conf.initial
    assert h.advance(40.0) == []  # no more 2xx after the ACK
    (bye_ok,) = h.send(req("BYE", branch="z9hG4bK3", to_tag=call.local_tag, cseq=2))
    assert bye_ok.status == 200 and bye_ok.to.tag == call.local_tag
    (end,) = h.events()
    assert isinstance(end, CallEnded) and end.reason == "bye" and end.call is call
    assert call.state == "terminated" and h.ep.active_calls() == []
    # BYE retransmission is absorbed by its transaction and answered with the same 200.
    assert [r.status for r in h.send(req("BYE", branch="z9hG4bK3", to_tag=call.local_tag, cseq=2))] == [200]
    assert h.events() == []
    h.advance(100.0)
    assert h.ep.get_timer() is None and h.ep.internal_errors == 0


def test_responses_use_rport_and_received() -> None:
    h = Harness()
    nat = Flow("udp", ("203.0.113.5", 61000))
    h.ep.receive(req(body=SDP, via_host="192.168.1.2:5062"), nat, 0.0)
    (out,) = h.raw_out()
    assert out.flow == nat
    via = parse_message(out.data).top_via
    assert via.param("rport") == "61000" and via.param("received") == "203.0.113.5"


def test_without_rport_response_goes_to_sent_by_port_with_received() -> None:
    h = Harness()
    h.ep.receive(req(body=SDP, via_host="192.168.1.2:5070", rport=False), Flow("udp", ("203.0.113.5", 61000)), 0)
    (out,) = h.raw_out()
    assert out.flow.remote == ("203.0.113.5", 5070)
    via = parse_message(out.data).top_via
    assert via.param("received") == "203.0.113.5" and via.param("rport") is None


def test_no_received_when_source_matches_via() -> None:
    h = Harness()
    h.ep.receive(req(body=SDP, rport=False), UDP, 0)
    (out,) = h.raw_out()
    assert parse_message(out.data).top_via.param("received") is None and out.flow == UDP


def test_late_offer_answer_in_ack() -> None:
    h = Harness()
    ev = h.incoming(req())
    assert ev.offer is None
    h.ep.respond(ev.call, 200, body=SDP, now=0)
    h.out()
    h.send(req("ACK", branch="z9hG4bK2", to_tag=ev.call.local_tag, body=b"v=0\r\n"))
    (conf,) = h.events()
    assert isinstance(conf, CallConfirmed) and conf.answer == b"v=0\r\n"


def test_ack_timeout_sends_bye_and_ends_once() -> None:
    h = Harness()
    call, _ = h.answered()
    sent = h.advance(31.9)
    # 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5: T1 doubling, capped at T2
    assert [parse_message(s.data).status for s in sent] == [200] * 10  # type: ignore[union-attr]
    assert h.events() == []
    sent = h.advance(32.0)
    byes = [parse_message(s.data) for s in sent]
    assert [type(b) for b in byes] == [SipRequest] and byes[0].method == "BYE"  # type: ignore[union-attr]
    (end,) = h.events()
    assert isinstance(end, CallEnded) and end.reason == "ack_timeout"
    # The BYE gets answered; no second CallEnded.
    bye = byes[0]
    resp = (f"SIP/2.0 200 OK\r\nVia: {bye.headers.get('Via')}\r\nFrom: {bye.headers.get('From')}\r\n"
            f"To: {bye.headers.get('To')}\r\nCall-ID: c1\r\nCSeq: {bye.headers.get('CSeq')}\r\n\r\n")
    h.send(resp.encode())
    assert h.events() == [] and h.ep.active_calls() == []
    h.advance(200)
    assert h.ep.get_timer() is None and h.ep.internal_errors == 0


def test_cancel_before_answer() -> None:
    h = Harness()
    ev = h.incoming()
    h.ep.respond(ev.call, 180, now=0)
    h.out()
    resps = h.send(req("CANCEL"))
    assert sorted((r.status, r.cseq.method) for r in resps) == [(200, "CANCEL"), (487, "INVITE")]
    inv487 = next(r for r in resps if r.status == 487)
    assert inv487.to.tag == ev.call.local_tag
    (end,) = h.events()
    assert isinstance(end, CallEnded) and end.reason == "cancel" and end.status == 487
    # 487 retransmitted (timer G) until the ACK, which the transaction absorbs.
    sent = h.advance(0.6)
    assert [parse_message(s.data).status for s in sent] == [487]  # type: ignore[union-attr]
    assert h.send(req("ACK", to_tag=ev.call.local_tag)) == []
    assert h.advance(40) == [] and h.events() == []
    assert not h.ep.respond(ev.call, 200, body=SDP, now=h.now)  # too late: nothing pending
    assert h.out() == []


def test_non2xx_final_timer_h_without_ack() -> None:
    h = Harness()
    ev = h.incoming()
    h.ep.respond(ev.call, 486, now=0)
    assert [r.status for r in h.out()] == [486]
    (end,) = h.events()
    assert end.reason == "local" and end.status == 486
    sent = h.advance(100)
    assert len(sent) == 10  # G: 0.5,1,2,4,4,... until H at 32 s
    assert h.ep.get_timer() is None


def test_cancel_unknown_is_481() -> None:
    h = Harness()
    (r,) = h.send(req("CANCEL", branch="z9hG4bKnone"))
    assert r.status == 481


def test_reinvite_hold_and_update_and_info() -> None:
    h = Harness()
    call, _ = h.answered()
    h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag))
    h.events()
    hold = SDP + b"a=sendonly\r\n"
    (trying,) = h.send(req(branch="z9hG4bK4", to_tag=call.local_tag, cseq=2, body=hold,
                           extra="Contact: <sip:alice@10.0.0.9:5062>\r\n".replace("Contact", "X-Ignored")))
    assert trying.status == 100
    (ri,) = h.events()
    assert isinstance(ri, ReInvite) and ri.offer == hold and ri.call is call
    # A second re-INVITE while this one is pending: 500 with Retry-After (RFC 3261 §14.2).
    (busy,) = h.send(req(branch="z9hG4bK5", to_tag=call.local_tag, cseq=3, body=SDP))
    assert busy.status == 500 and busy.headers.get("Retry-After") is not None
    h.ep.respond(call, 200, body=SDP + b"a=recvonly\r\n", now=h.now)
    (ok,) = h.out()
    assert ok.status == 200 and ok.cseq.seq == 2
    h.send(req("ACK", branch="z9hG4bK6", to_tag=call.local_tag, cseq=2))
    (conf,) = h.events()
    assert isinstance(conf, CallConfirmed) and not conf.initial
    h.send(req("UPDATE", branch="z9hG4bK7", to_tag=call.local_tag, cseq=4, body=SDP))
    (up,) = h.events()
    assert isinstance(up, Update) and up.offer == SDP
    h.ep.respond(call, 200, body=SDP, now=h.now)
    (uok,) = h.out()
    assert uok.status == 200 and uok.cseq.method == "UPDATE"
    (iok,) = h.send(req("INFO", branch="z9hG4bK8", to_tag=call.local_tag, cseq=5,
                        extra="Content-Type: application/dtmf-relay\r\n", body=b"") .replace(
        b"Content-Length: 0", b"Content-Length: 24").rstrip(b"\r\n") + b"\r\n\r\nSignal=5\r\nDuration=160\r\n")
    assert iok.status == 200
    (info,) = h.events()
    assert isinstance(info, Info) and info.content_type == "application/dtmf-relay"
    assert info.body == b"Signal=5\r\nDuration=160\r\n"


def test_reinvite_refreshes_remote_target() -> None:
    h = Harness()
    call, _ = h.answered()
    h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag))
    raw = req(branch="z9hG4bK4", to_tag=call.local_tag, cseq=2, body=SDP).replace(
        b"<sip:alice@10.0.0.1:5062>", b"<sip:alice@10.0.0.9:5099>")
    h.send(raw)
    h.events()
    assert call.remote_target == "sip:alice@10.0.0.1:5062"
    h.ep.respond(call, 200, body=SDP, now=h.now)
    assert call.remote_target == "sip:alice@10.0.0.9:5099"


def test_options_inside_and_outside_dialog() -> None:
    h = Harness()
    (r,) = h.send(req("OPTIONS", branch="z9hG4bKo"))
    assert r.status == 200 and r.to.tag
    assert set(r.headers.get_all("Allow")) == {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE"}
    assert "application/sdp" in r.headers.get_all("Accept")
    call, _ = h.answered()
    (r,) = h.send(req("OPTIONS", branch="z9hG4bKo2", to_tag=call.local_tag, cseq=2))
    assert r.status == 200 and r.to.tag == call.local_tag


@pytest.mark.parametrize("method", ["REGISTER", "SUBSCRIBE", "MESSAGE", "REFER", "PUBLISH"])
def test_unsupported_methods_405(method: str) -> None:
    h = Harness()
    (r,) = h.send(req(method, branch="z9hG4bKm"))
    assert r.status == 405 and "INVITE" in r.headers.get_all("Allow") and r.to.tag


def test_require_unknown_extension_420() -> None:
    h = Harness()
    (r,) = h.send(req(body=SDP, extra="Require: 100rel, foo\r\n"))
    assert r.status == 420 and r.headers.get_all("Unsupported") == ["100rel", "foo"]
    assert h.events() == []
    h2 = Harness(supported_extensions=frozenset({"100rel", "foo"}))
    assert [x.status for x in h2.send(req(body=SDP, extra="Require: 100rel, foo\r\n"))] == [100]


def test_unknown_dialog_481() -> None:
    h = Harness()
    for m in ("BYE", "INFO", "INVITE", "UPDATE"):
        (r,) = h.send(req(m, branch=f"z9hG4bK{m}", to_tag="nosuch", cseq=5))
        assert r.status == 481, m
    (r,) = h.send(req("BYE", branch="z9hG4bKnt"))  # BYE outside any dialog
    assert r.status == 481
    assert h.events() == []


def test_merged_request_482() -> None:
    h = Harness()
    h.incoming()
    (r,) = h.send(req(body=SDP, branch="z9hG4bKother"), Flow("udp", ("10.0.0.50", 5060)))
    assert r.status == 482
    assert h.events() == []


def test_cseq_out_of_order_500() -> None:
    h = Harness()
    call, _ = h.answered()
    h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag))
    h.events()
    assert h.send(req("INFO", branch="z9hG4bKi1", to_tag=call.local_tag, cseq=10))[0].status == 200
    (r,) = h.send(req("INFO", branch="z9hG4bKi2", to_tag=call.local_tag, cseq=9))
    assert r.status == 500
    (r,) = h.send(req("BYE", branch="z9hG4bKi3", to_tag=call.local_tag, cseq=10))
    assert r.status == 500
    h.events()
    assert call.state == "confirmed"


def test_max_forwards_zero_483_but_options_answered() -> None:
    h = Harness()
    (r,) = h.send(req(body=SDP).replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))
    assert r.status == 483
    (r,) = h.send(req("OPTIONS", branch="z9hG4bKmf").replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))
    assert r.status == 200


def test_malformed_request_gets_400_with_warning() -> None:
    h = Harness()
    bad = req(body=SDP).replace(b"Max-Forwards: 70", b"Max-Forwards: lots")
    (r,) = h.send(bad)
    assert r.status == 400 and "Max-Forwards" in r.reason
    assert r.headers.get("Warning", ).startswith("399 127.0.0.1:5060 ")  # type: ignore[union-attr]
    assert r.to.tag and r.top_via.param("received") == "10.0.0.1"
    assert h.events() == []


def test_malformed_without_addressable_headers_and_garbage_dropped() -> None:
    h = Harness()
    assert h.send(req().replace(b"Call-ID: c1\r\n", b"")) == []
    assert h.send(b"\x16\x03\x01 hello") == []
    assert h.send(b"\r\n\r\n") == []
    assert h.send(req("ACK").replace(b"CSeq: 1 ACK", b"CSeq: zz ACK")) == []
    assert h.ep.internal_errors == 0


def test_record_route_in_200_and_route_on_our_bye() -> None:
    h = Harness()
    rr = "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    ev = h.incoming(req(body=SDP, extra=rr))
    call = ev.call
    assert call.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    h.ep.respond(call, 200, body=SDP, now=0)
    (ok,) = h.out()
    assert ok.headers.get_all("Record-Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag))
    h.events()
    h.ep.hangup(call, now=1.0)
    assert call.state == "terminated"
    (out,) = h.raw_out()
    bye = parse_message(out.data)
    assert isinstance(bye, SipRequest) and bye.method == "BYE" and out.flow == UDP
    assert str(bye.uri) == "sip:alice@10.0.0.1:5062"  # remote target (loose routing)
    # UAS route set = Record-Route in order (RFC 3261 §12.1.1).
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.from_.tag == call.local_tag and bye.to.tag == "ft" and bye.call_id == "c1"
    assert bye.from_.uri.user == "room1" and bye.cseq.method == "BYE"


def test_strict_route_puts_target_last() -> None:
    h = Harness()
    ev = h.incoming(req(body=SDP, extra="Record-Route: <sip:strict.example.com>\r\n"))
    h.ep.respond(ev.call, 200, body=SDP, now=0)
    h.out()
    h.send(req("ACK", branch="z9hG4bK2", to_tag=ev.call.local_tag))
    h.ep.hangup(ev.call, now=1)
    bye = parse_message(h.raw_out()[0].data)
    assert isinstance(bye, SipRequest)
    assert str(bye.uri) == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == ["<sip:alice@10.0.0.1:5062>"]


def test_our_bye_retransmitted_over_udp_then_timer_f() -> None:
    h = Harness()
    call, _ = h.answered()
    h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag))
    h.events()
    h.ep.hangup(call, now=0)
    assert len(h.raw_out()) == 1
    sent = h.advance(31.9)
    assert len(sent) == 10 and all(parse_message(s.data).method == "BYE" for s in sent)  # type: ignore[union-attr]
    assert h.events() == []
    h.advance(32.0)
    (end,) = h.events()
    assert isinstance(end, CallEnded) and end.reason == "timeout"
    h.advance(100)
    assert h.events() == [] and h.ep.get_timer() is None


def test_our_bye_over_tcp_not_retransmitted_and_answered() -> None:
    h = Harness()
    call, ok = h.answered(flow=TCP)
    assert ok.headers.get("Contact") is not None
    h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag), TCP)
    h.events()
    h.ep.hangup(call, now=0)
    (out,) = h.raw_out()
    assert out.flow == TCP
    assert h.advance(10) == []
    bye = parse_message(out.data)
    resp = (f"SIP/2.0 200 OK\r\nVia: {bye.headers.get('Via')}\r\nFrom: {bye.headers.get('From')}\r\n"
            f"To: {bye.headers.get('To')}\r\nCall-ID: c1\r\nCSeq: {bye.headers.get('CSeq')}\r\n\r\n")
    h.send(resp.encode(), TCP)
    (end,) = h.events()
    assert isinstance(end, CallEnded) and end.reason == "local" and end.status == 200
    h.send(resp.encode(), TCP)  # retransmitted 200: dropped
    assert h.events() == []


def test_tcp_contact_names_transport() -> None:
    h = Harness()
    ev = h.incoming(req(body=SDP, transport="TCP"), TCP)
    h.ep.respond(ev.call, 200, body=SDP, now=0)
    (ok,) = h.out()
    assert ok.headers.get("Contact") == "<sip:127.0.0.1:5060;transport=tcp>"


def test_hangup_before_ack_defers_bye() -> None:
    h = Harness()
    call, _ = h.answered()
    h.ep.hangup(call, now=0.2)
    assert h.raw_out() == []
    h.ep.receive(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag), UDP, 0.3)
    (out,) = h.raw_out()
    assert parse_message(out.data).method == "BYE"  # type: ignore[union-attr]
    assert h.events() == []  # no CallConfirmed for a call we are ending


def test_hangup_early_answers_480() -> None:
    h = Harness()
    ev = h.incoming()
    h.ep.hangup(ev.call, now=0)
    (r,) = h.out()
    assert r.status == 480
    (end,) = h.events()
    assert end.reason == "local" and end.status == 480


def test_invite_ack_bye_back_to_back() -> None:
    h = Harness()
    ev = h.incoming()
    h.ep.respond(ev.call, 200, body=SDP, now=0)
    h.out()
    tag = ev.call.local_tag
    h.send(req("ACK", branch="z9hG4bK2", to_tag=tag))
    (r,) = h.send(req("BYE", branch="z9hG4bK3", to_tag=tag, cseq=2))
    assert r.status == 200
    evs = h.events()
    assert [type(e) for e in evs] == [CallConfirmed, CallEnded]


def test_bye_before_ack_and_before_answer() -> None:
    h = Harness()
    call, _ = h.answered()
    (r,) = h.send(req("BYE", branch="z9hG4bK3", to_tag=call.local_tag, cseq=2))
    assert r.status == 200
    (end,) = h.events()
    assert end.reason == "bye"
    assert h.advance(100) == []  # 2xx retransmission stopped, no BYE of ours
    h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag))  # late ACK: dropped
    assert h.events() == [] and h.out() == []


def test_call_id_reuse_after_termination_is_new_call() -> None:
    h = Harness()
    call, _ = h.answered()
    h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag))
    h.send(req("BYE", branch="z9hG4bK3", to_tag=call.local_tag, cseq=2))
    h.events()
    h.advance(40)  # old transactions gone
    ev = h.incoming(req(body=SDP, branch="z9hG4bKnew"))
    assert ev.call is not call and ev.call.local_tag != call.local_tag
    # Same Call-ID, different From tag while the first call is alive: also a separate call.
    ev2 = h.incoming(req(body=SDP, branch="z9hG4bKnew2", from_tag="other"))
    assert ev2.call is not ev.call and len(h.ep.active_calls()) == 2


def test_unsupported_body_type_415() -> None:
    h = Harness()
    (r,) = h.send(req(body=SDP).replace(b"application/sdp", b"text/plain"))
    assert r.status == 415 and r.headers.get("Accept") == "application/sdp"


def test_rfc2543_peer_without_magic_cookie() -> None:
    h = Harness()
    ev = h.incoming(req(body=SDP, branch="oldstyle"))
    assert [r.status for r in h.send(req(body=SDP, branch="oldstyle"))] == [100]  # retransmission
    h.ep.respond(ev.call, 404, now=0)
    h.out()
    assert h.send(req("ACK", branch="oldstyle", to_tag=ev.call.local_tag)) == []
    assert h.advance(1) == []  # ACK stopped timer G


def test_reinvite_retransmission_resends_its_200() -> None:
    h = Harness()
    call, _ = h.answered()
    h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag))
    h.events()
    ri = req(branch="z9hG4bK4", to_tag=call.local_tag, cseq=2, body=SDP)
    h.send(ri)
    h.events()
    h.ep.respond(call, 200, body=SDP, now=h.now)
    h.out()
    assert [r.status for r in h.send(ri)] == [200]


def test_in_dialog_request_on_new_tcp_connection_moves_the_flow() -> None:
    h = Harness()
    call, _ = h.answered(flow=TCP)
    h.send(req("ACK", branch="z9hG4bK2", to_tag=call.local_tag), TCP)
    newer = Flow("tcp", ("10.0.0.1", 40001), conn_id=8)
    h.send(req("INFO", branch="z9hG4bK9", to_tag=call.local_tag, cseq=2), newer)
    h.ep.hangup(call, now=1)
    (out,) = h.raw_out()
    assert out.flow == newer


@pytest.mark.parametrize(("uri", "transport", "contact"), [
    ("sips:room1@127.0.0.1", "TLS", "<sips:127.0.0.1:5061>"),          # RFC 3261 §12.1.1, RFC 5630
    ("sip:room1@127.0.0.1;transport=tls", "TLS", "<sip:127.0.0.1:5061;transport=tls>"),
    ("sip:room1@127.0.0.1", "TCP", "<sip:127.0.0.1:5060;transport=tcp>"),
])
def test_contact_is_sips_for_a_sips_request_over_tls(uri: str, transport: str, contact: str) -> None:
    h = Harness()
    h.ep.tls_port = 5061
    flow = Flow("tls" if transport == "TLS" else "tcp", ("10.0.0.1", 40000), conn_id=9)
    h.incoming(req(body=SDP, uri=uri, transport=transport), flow)
    call = h.ep.active_calls()[0]
    h.ep.respond(call, 200, body=SDP, now=0.0)
    (ok,) = h.out()
    assert ok.headers.get("Contact") == contact
