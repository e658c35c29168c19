"""Outgoing calls through SipEndpoint with a fake clock: answer, busy, digest, CANCEL, races, timer B."""

from __future__ import annotations

import random

from bridge.sip import Flow, SipEndpoint, SipRequest, parse_message, parse_uri
from bridge.sip.events import CallAnswered, CallEnded, CallFailed, CallProgress
from bridge.sip.uac import Credentials

TRUNK = Flow("udp", ("10.0.0.9", 5070))
OFFER = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


class Uac:
    def __init__(self, credentials: Credentials | None = None) -> None:
        self.ep = SipEndpoint(contact_host="192.0.2.1", contact_port=5060, rng=random.Random(3))
        self.now = 0.0
        self.call = self.ep.invite(parse_uri("sip:+15551234@10.0.0.9:5070"), to_uri="sip:+15551234@10.0.0.9",
                                   from_uri="sip:bridge@192.0.2.1", from_display="Tutti", flow=TRUNK,
                                   body=OFFER, now=0.0, credentials=credentials)

    def sent(self) -> list[SipRequest]:
        out = [parse_message(o.data) for o in self.ep.messages_to_send()]
        return [m for m in out if isinstance(m, SipRequest)]

    def reply(self, req: SipRequest, status: int, *, tag: str | None = "callee1", extra: str = "",
              body: bytes = b"") -> None:
        to = req.headers.get("To") or ""
        if tag and ";tag=" not in to:
            to += f";tag={tag}"
        text = (f"SIP/2.0 {status} X\r\nVia: {req.headers.get('Via')}\r\nFrom: {req.headers.get('From')}\r\n"
                f"To: {to}\r\nCall-ID: {req.call_id}\r\nCSeq: {req.headers.get('CSeq')}\r\n"
                "Contact: <sip:callee@10.0.0.9:5070>\r\n" + extra
                + ("Content-Type: application/sdp\r\n" if body else "") + f"Content-Length: {len(body)}\r\n\r\n")
        self.ep.receive(text.encode() + body, TRUNK, self.now)

    def events(self) -> list[object]:
        out = []
        while (e := self.ep.next_event()) is not None:
            out.append(e)
        return out

    def advance(self, to: float) -> None:
        while (t := self.ep.get_timer()) is not None and t <= to:
            self.now = t
            self.ep.handle_timer(t)
        self.now = to


def test_ringing_then_answer_acked_then_their_bye() -> None:
    u = Uac()
    (invite,) = u.sent()
    assert invite.method == "INVITE" and invite.body == OFFER and str(invite.uri) == "sip:+15551234@10.0.0.9:5070"
    assert '"Tutti" <sip:bridge@192.0.2.1>' in (invite.headers.get("From") or "")
    u.reply(invite, 100, tag=None)
    u.reply(invite, 180)
    u.reply(invite, 200, body=b"v=0\r\n")
    (ack,) = u.sent()
    assert ack.method == "ACK" and ack.cseq.seq == invite.cseq.seq and str(ack.uri) == "sip:callee@10.0.0.9:5070"
    events = u.events()
    assert [type(e) for e in events] == [CallProgress, CallAnswered]
    assert isinstance(events[1], CallAnswered) and events[1].answer == b"v=0\r\n"
    u.reply(invite, 200)                                  # retransmitted 2xx: the same ACK again
    assert [m.method for m in u.sent()] == ["ACK"]
    bye = (f"BYE sip:bridge@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKbye1\r\n"
           f"From: {u.ep.active_calls()[0].dialog.remote_uri}\r\nTo: {invite.headers.get('From')}\r\n"
           f"Call-ID: {invite.call_id}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n")
    u.ep.receive(bye.encode(), TRUNK, u.now)
    assert [type(e) for e in u.events()] == [CallEnded]


def test_busy_is_acked_by_the_transaction_and_reported() -> None:
    u = Uac()
    (invite,) = u.sent()
    u.reply(invite, 486)
    assert [m.method for m in u.sent()] == ["ACK"]
    (failed,) = u.events()
    assert isinstance(failed, CallFailed) and failed.status == 486 and not failed.answered


def test_proxy_digest_challenge_is_answered_once() -> None:
    u = Uac(Credentials("alice", "secret"))
    (invite,) = u.sent()
    challenge = 'Proxy-Authenticate: Digest realm="trunk", nonce="abc", algorithm=MD5, qop="auth"\r\n'
    u.reply(invite, 407, extra=challenge)
    ack, again = u.sent()
    assert ack.method == "ACK" and again.method == "INVITE" and again.cseq.seq == invite.cseq.seq + 1
    auth = again.headers.get("Proxy-Authorization") or ""
    assert auth.startswith('Digest username="alice", realm="trunk", nonce="abc"') and "qop=auth" in auth
    assert again.call_id == invite.call_id and again.from_.tag == invite.from_.tag
    u.reply(again, 407, extra=challenge)                  # refused again, not stale: a wrong password
    (failed,) = u.events()
    assert isinstance(failed, CallFailed) and failed.status == 407


def test_cancel_waits_for_a_provisional_then_487_is_acked() -> None:
    u = Uac()
    (invite,) = u.sent()
    u.ep.hangup(u.call, u.now)                             # no provisional yet: no CANCEL (§9.1)
    assert u.sent() == []
    u.reply(invite, 180)
    (cancel,) = u.sent()
    assert cancel.method == "CANCEL" and cancel.headers.get("Via") == invite.headers.get("Via")
    assert cancel.cseq.seq == invite.cseq.seq and cancel.cseq.method == "CANCEL"
    u.reply(cancel, 200)
    u.reply(invite, 487)
    assert [m.method for m in u.sent()] == ["ACK"]
    assert [(type(e), getattr(e, "status", None)) for e in u.events()] == [(CallProgress, 180), (CallFailed, 487)]


def test_an_answer_crossing_our_cancel_is_acked_then_ended() -> None:
    u = Uac()
    (invite,) = u.sent()
    u.reply(invite, 180)
    u.ep.hangup(u.call, u.now)
    assert [m.method for m in u.sent()] == ["CANCEL"]
    u.reply(invite, 200)
    assert [m.method for m in u.sent()] == ["ACK"]
    failed = u.events()[-1]
    assert isinstance(failed, CallFailed) and failed.answered
    u.ep.hangup(u.call, u.now)                             # the core ends the call it never wanted
    assert [m.method for m in u.sent()] == ["BYE"]


def test_no_response_at_all_is_408_after_timer_b() -> None:
    u = Uac()
    u.sent()
    u.advance(40.0)
    retransmits = u.sent()
    assert retransmits and all(m.method == "INVITE" for m in retransmits)
    (failed,) = u.events()
    assert isinstance(failed, CallFailed) and failed.status == 408


def test_sha256_challenge_checked_by_an_independent_uas_computation() -> None:
    import hashlib
    import re

    u = Uac(Credentials("alice", "secret"))
    (invite,) = u.sent()
    u.reply(invite, 401, extra='WWW-Authenticate: Digest realm="r", nonce="n1", algorithm=SHA-256, qop="auth"\r\n')
    _ack, again = u.sent()
    fields = dict(re.findall(r'(\w+)="?([^",]+)"?', (again.headers.get("Authorization") or "").split(" ", 1)[1]))
    h = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731 - the UAS's own arithmetic
    expected = h(f"{h('alice:r:secret')}:n1:{fields['nc']}:{fields['cnonce']}:auth:{h('INVITE:' + fields['uri'])}")
    assert fields["algorithm"] == "SHA-256" and fields["response"] == expected
