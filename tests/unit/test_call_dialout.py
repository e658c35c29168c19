"""Dial-out through the call core with a scripted trunk: answer, busy, no answer, cancel by the API."""

from __future__ import annotations

from pathlib import Path

from bridge.control import events as ev
from bridge.sip import SipRequest
from tests.unit.call_harness import Bridge, Phone

TRUNK_ADDR = ("10.0.0.200", 5070)


class Trunk(Phone):
    """The far end of dial-outs: answers each INVITE as told (and its RTP is this Phone's)."""

    def __init__(self, bridge: Bridge, answer: list[int]) -> None:
        super().__init__(bridge, 200)
        self.addr = TRUNK_ADDR
        self.answer = answer            # statuses to send, in order, to each new INVITE
        self.invites: list[SipRequest] = []

    def on_request(self, req: SipRequest) -> None:
        if req.method == "INVITE":
            self.invites.append(req)
            self.room = req.uri.user_text or ""
            for status in self.answer:
                self.reply(req, status)
        elif req.method in ("CANCEL", "BYE"):
            self.reply(req, 200)
            if req.method == "CANCEL":
                self.reply(self.invites[-1], 487)

    def reply(self, req: SipRequest, status: int) -> None:
        to = req.headers.get("To") or ""
        if status > 100 and ";tag=" not in to:
            to += ";tag=trunk1"
        body = self.sdp() if status == 200 and req.method == "INVITE" else b""
        text = (f"SIP/2.0 {status} X\r\nVia: {req.headers.get('Via')}\r\nFrom: {req.headers.get('From')}\r\n"
                f"To: {to}\r\nCall-ID: {req.call_id}\r\nCSeq: {req.headers.get('CSeq')}\r\n"
                f"Contact: <sip:callee@{TRUNK_ADDR[0]}:{TRUNK_ADDR[1]}>\r\n"
                + ("Content-Type: application/sdp\r\n" if body else "") + f"Content-Length: {len(body)}\r\n\r\n")
        self.send(text.encode() + body)


def trunk_bridge(tmp_path: Path, answer: list[int]) -> tuple[Bridge, Trunk]:
    bridge = Bridge(tmp_path, trunks=[{"name": "t1", "host": TRUNK_ADDR[0], "port": TRUNK_ADDR[1]}],
                    dial_out={"default_trunk": "t1", "no_answer_timeout_s": 5})
    trunk = Trunk(bridge, answer)
    bridge.phones[TRUNK_ADDR] = trunk
    return bridge, trunk


def test_answered_call_joins_with_its_role_and_both_hear_each_other(tmp_path: Path) -> None:
    bridge, trunk = trunk_bridge(tmp_path, [100, 180, 200])
    conf = bridge.directory.add("conf_o")
    caller = bridge.phone()
    caller.call("conf_o")
    bridge.run(0.1, speak={caller: None})
    view = bridge.core.dial_out(conf, "+12025551234", "John Smith", "presenter", False, bridge.now)
    bridge.route_sip()
    assert view.status == "dialing" and view.joined_at is None
    assert [r.method for r in trunk.invites] == ["INVITE"] and trunk.invites[0].uri.user_text == "+12025551234"
    trunk.transport = bridge.media.by_port[Phone._answer_port_of(trunk.invites[0])]
    bridge.run(0.5, speak={caller: 1000.0, trunk: 600.0})
    dialled = next(p for p in bridge.core.book.listing("conf_o") if p.kind == "sip_outbound")
    assert (dialled.status, dialled.role) == ("connected", "presenter") and dialled.joined_at is not None
    assert trunk.hears(1000.0) and caller.hears(600.0)
    names = bridge.names("conf_o")
    assert names.index("participant.dialing") < names.index("participant.joined", 2)


def test_busy_and_no_answer_are_rejected_with_reasons(tmp_path: Path) -> None:
    bridge, trunk = trunk_bridge(tmp_path, [486])
    conf = bridge.directory.add("conf_b")
    bridge.core.dial_out(conf, "+12025550001", "Busy", "listener", False, bridge.now)
    bridge.route_sip()
    trunk.answer = [180]                                  # rings forever: our timer cancels
    bridge.core.dial_out(conf, "+12025550002", "Away", "listener", False, bridge.now)
    bridge.route_sip()
    bridge.run(5.5)
    rejected = [e for e in bridge.events if isinstance(e, ev.ParticipantRejected)]
    assert [(e.reason, e.sip_status) for e in rejected] == [("busy", 486), ("no_answer", 487)]
    assert [p.status for p in bridge.core.book.listing("conf_b")] == ["rejected", "rejected"]
    assert not bridge.core.legs_by_call and not bridge.core.dialout.ringing


def test_removing_a_ringing_participant_cancels_the_call(tmp_path: Path) -> None:
    bridge, trunk = trunk_bridge(tmp_path, [180])
    conf = bridge.directory.add("conf_c")
    view = bridge.core.dial_out(conf, "+12025550003", "", "listener", False, bridge.now)
    bridge.route_sip()
    assert bridge.core.act("conf_c", view.participant_id, "kick", bridge.now)
    bridge.route_sip()
    bridge.run(0.1)
    (p,) = bridge.core.book.listing("conf_c")
    assert (p.status, p.reject_reason) == ("rejected", "canceled")
