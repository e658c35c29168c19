"""SIP parser and transaction layer, kept small (RFC 4475 torture tests live in
tests/unit/test_sip_torture.py, mutation fuzzing of receive() in tests/unit/test_sip_fuzz.py):

- parse_message on messages from a header grammar with hostile values raises only
  SipParseError, and what parses serialises to the same headers (targets.check_sip_message);
- SipEndpoint driven through random but well-formed call flows (INVITE, retransmissions,
  CANCEL, ACK, BYE, in-dialog requests, the app answering or hanging up, time passing):
  no internal error, everything sent parses, timers always lie in the future, and once every
  call is hung up and the clock has run on, no call, transaction or timer is left.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from bridge.sip import SipEndpoint
from bridge.sip.events import Call, IncomingCall, ReInvite, Update
from bridge.sip.flow import Flow
from bridge.sip.message import SipRequest, SipResponse, parse_message
from tests.fuzz._settings import fuzz
from tests.fuzz.targets import check_sip_message


def mostly(usual: list[str], odd: list[str]) -> st.SearchStrategy[str]:
    """A usual value about 6 times in 7, so most messages parse and reach the later checks."""
    return st.sampled_from(usual * max(1, 6 * len(odd) // len(usual)) + odd)


ODD_NUMBERS = ["4294967296", "-1", "", "1.0", "²", "1" * 40, "0x10", "1" * 5000]
NUMBERS = mostly(["0", "1", "70", "4294967295"], ODD_NUMBERS)
HOSTS = mostly(["10.0.0.1", "10.0.0.1:5062", "[2001:db8::1]:5060", "host.example"],
               ["[::1]", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:²", "[::1", "a b", ""])
VALUES = {
    "Via": st.builds(lambda t, h, p: f"SIP/2.0/{t} {h}{p}", mostly(["UDP", "TCP"], ["TLS", "udp", "X"]), HOSTS,
                     mostly([";branch=z9hG4bK1", ";branch=z9hG4bK1;rport"],
                            [";rport=", ";branch=", "", ";received=1.2.3.4", ";ttl=²", ";branch=z9hG4bK1, x"])),
    "From": mostly(["<sip:a@10.0.0.1>;tag=ft", '"A" <sip:a@10.0.0.1>;tag=1', "sip:a@b;tag=x"],
                   ["<sip:a@10.0.0.1", "<>", '"unterminated <sip:a@b>', "<sip:a@[::1]:5060>;tag=t", "tag=x"]),
    "To": mostly(["<sip:room1@127.0.0.1>", "<sip:room1@127.0.0.1>;tag=tt", "sip:x@y"],
                 ["<sip:room1@127.0.0.1;transport=tcp>", "<tel:+123>", "garbage", "<sip:a@b:²>"]),
    "Call-ID": mostly(["c1", "abc@host"], ["", "x" * 300, "a b"]),
    "CSeq": st.builds(lambda n, m: f"{n} {m}", mostly(["1", "70", "2147483647"], ["0", "2147483648", *ODD_NUMBERS]),
                      mostly(["INVITE"], ["BYE", "ACK", "FOO", ""])),
    "Max-Forwards": NUMBERS,
    "Content-Length": NUMBERS,
    "Contact": st.sampled_from(["<sip:a@10.0.0.1:5062>", "*", "<sip:a@10.0.0.1>;expires=²", "sip:a@b, sip:c@d"]),
    "Route": st.sampled_from(["<sip:p1;lr>", "<sip:p1;lr>, <sip:p2;lr>", "<sip:[::1]:70000;lr>"]),
    "Expires": NUMBERS,
    "Require": st.sampled_from(["100rel", "timer", "", "foo, bar"]),
    "Content-Type": st.sampled_from(["application/sdp", "text/plain", "", "application/sdp;charset=utf-8"]),
}
REQUIRED = ["Via", "From", "To", "Call-ID", "CSeq"]
COMPACT = {"Via": "v", "From": "f", "To": "t", "Call-ID": "i", "Content-Length": "l", "Contact": "m",
           "Content-Type": "c"}


@st.composite
def sip_messages(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 3)):
        method = draw(mostly(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE"], ["FOO", "inv ite"]))
        uri = draw(mostly(["sip:room1@127.0.0.1", "sip:room1@127.0.0.1:5060;transport=tcp", "sips:x@y"],
                          ["sip:[::1]:²", "tel:+1", "sip:%41@h", "sip:a@" + "1" * 40, "sip:", "sip:a@b:1" + "0" * 5000]))
        start = f"{method} {uri} SIP/2.0"
        cseq_method = method
    else:
        status = draw(mostly(["100", "180", "200", "487", "699"], ["700", "099", "²00", "20", "2000"]))
        start = f"SIP/2.0 {status} {draw(st.sampled_from(['OK', '', 'Ringing']))}"
        cseq_method = "INVITE"
    names = REQUIRED + draw(st.lists(st.sampled_from(sorted(set(VALUES) - set(REQUIRED))), unique=True, max_size=5))
    if not draw(st.integers(0, 7)):
        names.append(draw(st.sampled_from(REQUIRED)))              # a duplicate
    if not draw(st.integers(0, 7)):
        names.remove(draw(st.sampled_from(REQUIRED)))              # a missing one
    lines = [start]
    for name in draw(st.permutations(names)):
        shown = COMPACT[name] if name in COMPACT and draw(st.booleans()) else name
        sep = draw(mostly([": ", ":"], [" : ", ":\r\n "]))          # the last one folds the line
        value = draw(VALUES[name])
        if name == "CSeq" and draw(st.integers(0, 3)):
            value = value.split(" ")[0] + " " + cseq_method         # usually matching the method
        lines.append(f"{shown}{sep}{value}")
    body = draw(st.sampled_from([b"", b"v=0\r\n", b"x" * 10]))
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    return (eol.join(lines) + eol + eol).encode() + body


@fuzz(250)
@given(sip_messages())
def test_sip_parse_grammar_messages(data: bytes) -> None:
    check_sip_message(data)


@fuzz(200)
@given(st.binary(max_size=300))
def test_sip_parse_arbitrary_bytes(data: bytes) -> None:
    check_sip_message(data)


# -- the endpoint through random call flows ----------------------------------------------------
SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
PEER = Flow("udp", ("10.0.0.1", 5062))


@dataclass
class Peer:
    """One caller's view of its call: what it needs to build its next request."""
    k: int
    cseq: int = 0
    invite_branch: str = ""
    invite_cseq: int = 0
    to_tag: str | None = None
    last: bytes = b""
    our_branches: set[str] = field(default_factory=set)


def build(p: Peer, method: str, *, branch: str, cseq: int, to_tag: str | None, body: bytes = b"",
          cseq_method: str | None = None) -> bytes:
    to = "<sip:room1@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    head = (f"{method} sip:room1@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.0.0.1:5062;branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:p{p.k}@10.0.0.1>;tag=ft{p.k}\r\nTo: {to}\r\n"
            f"Call-ID: call{p.k}\r\nCSeq: {cseq} {cseq_method or method}\r\n"
            f"Contact: <sip:p{p.k}@10.0.0.1:5062>\r\n"
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class Driver:
    def __init__(self) -> None:
        self.ep = SipEndpoint(contact_host="127.0.0.1", contact_port=5060, rng=random.Random(5))
        self.now = 0.0
        self.peers = [Peer(0), Peer(1)]
        self.calls: dict[int, Call] = {}      # each caller's latest call
        self.all_calls: list[Call] = []
        self.branch_no = 0
        self.sent_branches: set[str] = set()

    def branch(self) -> str:
        self.branch_no += 1
        return f"z9hG4bKf{self.branch_no}"

    def deliver(self, data: bytes) -> None:
        self.sent_branches.add(data.split(b"branch=")[1].split(b";")[0].decode())
        self.ep.receive(data, PEER, self.now)
        self.drain()

    def drain(self) -> None:
        for out in self.ep.messages_to_send():
            msg = parse_message(out.data)
            if isinstance(msg, SipResponse):
                assert msg.top_via.branch in self.sent_branches, msg.top_via.branch
                k = int(msg.call_id[4:])
                if msg.cseq.method == "INVITE" and msg.to.tag:
                    self.peers[k].to_tag = msg.to.tag
            else:
                assert isinstance(msg, SipRequest) and msg.method == "BYE", msg
                self.answer_request(msg)
        while (ev := self.ep.next_event()) is not None:
            if isinstance(ev, IncomingCall):
                self.calls[int(ev.call.call_id[4:])] = ev.call
                self.all_calls.append(ev.call)
        assert self.ep.internal_errors == 0

    def answer_request(self, req: SipRequest) -> None:
        """The caller answers our BYE with 200 (unless the clock runs it out: see 'mute')."""
        if getattr(self, "mute", False):
            return
        resp = SipResponse(headers=req.headers.copy(), status=200, reason="OK")
        resp.headers.remove("Max-Forwards")
        resp.headers.remove("Route")
        self.ep.receive(resp.to_bytes(), PEER, self.now)

    def advance(self, dt: float) -> None:
        to = self.now + dt
        for _ in range(10_000):
            t = self.ep.get_timer()
            if t is None or t > to:
                break
            self.now = max(self.now, t)
            self.ep.handle_timer(self.now)
            self.drain()
        else:
            raise AssertionError("timers keep firing")
        self.now = to
        t = self.ep.get_timer()
        assert t is None or t > self.now

    def step(self, op: str, k: int, arg: int) -> None:
        p = self.peers[k]
        call = self.calls.get(k)
        if op == "invite":
            p.cseq += 1
            p.invite_branch, p.invite_cseq = self.branch(), p.cseq
            p.last = build(p, "INVITE", branch=p.invite_branch, cseq=p.cseq, to_tag=p.to_tag,
                           body=SDP if arg % 2 else b"")
            self.deliver(p.last)
        elif op == "retransmit" and p.last:
            self.deliver(p.last)
        elif op == "ack" and p.invite_branch:
            # ACK for a 2xx is a new transaction; for a non-2xx it reuses the INVITE's branch.
            branch = self.branch() if arg % 2 else p.invite_branch
            self.deliver(build(p, "ACK", branch=branch, cseq=p.invite_cseq, to_tag=p.to_tag,
                               body=SDP if arg % 3 == 0 else b""))
        elif op == "cancel" and p.invite_branch:
            self.deliver(build(p, "CANCEL", branch=p.invite_branch, cseq=p.invite_cseq, to_tag=None))
        elif op in ("bye", "info", "update", "options", "refer"):
            p.cseq += 1 if arg % 4 else 0          # sometimes a stale CSeq
            p.last = build(p, op.upper(), branch=self.branch(), cseq=p.cseq,
                           to_tag=p.to_tag if arg % 5 else None, body=SDP if op == "update" else b"")
            self.deliver(p.last)
        elif op == "respond" and call is not None:
            status = (100, 180, 183, 200, 200, 486, 488, 603)[arg % 8]
            self.ep.respond(call, status, body=SDP if status in (183, 200) else b"", now=self.now)
            self.drain()
        elif op == "hangup" and call is not None:
            self.ep.hangup(call, self.now)
            self.drain()
        elif op == "time":
            self.advance((0.0, 0.1, 0.5, 1.0, 4.0, 32.0)[arg % 6])

    def finish(self) -> None:
        for call in self.all_calls:
            self.ep.hangup(call, self.now)
        self.drain()
        for _ in range(3):
            self.advance(100.0)
            for call in self.all_calls:      # late events (re-INVITE, UPDATE) still get one
                self.ep.respond(call, 200, body=SDP, now=self.now)
            self.drain()
        self.advance(100.0)
        assert self.ep.active_calls() == []
        assert self.ep.get_timer() is None


OPS = st.tuples(st.sampled_from(["invite", "invite", "retransmit", "ack", "ack", "cancel", "bye", "info", "update",
                                 "options", "refer", "respond", "respond", "respond", "hangup", "time", "time"]),
                st.integers(0, 1), st.integers(0, 59))


@fuzz(150)
@given(st.lists(OPS, max_size=30), st.booleans())
def test_endpoint_random_call_flows(ops: list[tuple[str, int, int]], mute: bool) -> None:
    d = Driver()
    d.mute = mute           # type: ignore[attr-defined]  # the caller never answers our BYE
    for op, k, arg in ops:
        d.step(op, k, arg)
    d.finish()


def test_endpoint_driver_basic_call() -> None:
    d = Driver()
    for step in [("invite", 0, 1), ("respond", 0, 3), ("ack", 0, 1), ("time", 0, 3), ("bye", 0, 1)]:
        d.step(*step)
    assert isinstance(d.calls[0], Call) and d.calls[0].state == "terminated"
    d.finish()
    assert not isinstance(d.ep.next_event(), (ReInvite, Update))
