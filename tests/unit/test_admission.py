"""Admission control (bridge/sip/admission.py) with a fake clock: buckets, unACKed caps, bans."""

from __future__ import annotations

from bridge.sip.admission import Admission, AdmissionLimits, Drop, Refuse, SipGate, is_scanner
from bridge.sip.flow import Flow, Outgoing
from bridge.sip.message import parse_message


def _invite(adm: Admission, src: str, call_id: str, now: float, **kw: object) -> object:
    return adm.check("INVITE", src, call_id=call_id, initial=True, user_agent=None, now=now, **kw)  # type: ignore


def test_invite_bucket_then_503_with_retry_after() -> None:
    adm = Admission(AdmissionLimits(invite_rate=2, invite_burst=3, max_unconfirmed_per_source=100))
    verdicts = [_invite(adm, "10.0.0.1", f"c{i}", 0.0) for i in range(5)]
    assert [type(v).__name__ for v in verdicts] == ["Admit"] * 3 + ["Refuse"] * 2
    assert isinstance(verdicts[3], Refuse) and verdicts[3].reason == "rate_invite"
    assert verdicts[3].retry_after == 1
    # Another address is unaffected; the bucket refills at the rate.
    assert type(_invite(adm, "10.0.0.2", "other", 0.0)).__name__ == "Admit"
    assert type(_invite(adm, "10.0.0.1", "later", 0.5)).__name__ == "Admit"


def test_unconfirmed_cap_per_source_released_by_ack_or_expiry() -> None:
    adm = Admission(AdmissionLimits(invite_rate=100, invite_burst=100, max_unconfirmed_per_source=2,
                                    unconfirmed_hold_s=8))
    assert type(_invite(adm, "10.0.0.1", "a", 0.0)).__name__ == "Admit"
    assert type(_invite(adm, "10.0.0.1", "a", 0.1)).__name__ == "Admit"     # retransmission: counted once
    assert type(_invite(adm, "10.0.0.1", "b", 0.2)).__name__ == "Admit"
    refused = _invite(adm, "10.0.0.1", "c", 0.3)
    assert isinstance(refused, Refuse) and refused.reason == "unconfirmed_source"
    adm.check("ACK", "10.0.0.1", call_id="a", initial=False, user_agent=None, now=0.4)
    assert type(_invite(adm, "10.0.0.1", "c", 0.5)).__name__ == "Admit"
    assert isinstance(_invite(adm, "10.0.0.1", "d", 0.6), Refuse)
    assert adm.unconfirmed == 2
    assert type(_invite(adm, "10.0.0.1", "d", 8.3)).__name__ == "Admit"     # b expired at 8.2
    assert adm.counts["unconfirmed_expired"] == 1


def test_total_unconfirmed_cap() -> None:
    adm = Admission(AdmissionLimits(invite_rate=100, invite_burst=100, max_unconfirmed=3))
    for i in range(3):
        assert type(_invite(adm, f"10.0.1.{i}", f"c{i}", 0.0)).__name__ == "Admit"
    refused = _invite(adm, "10.0.1.9", "x", 0.0)
    assert isinstance(refused, Refuse) and refused.reason == "unconfirmed_total"


def test_ban_after_repeated_refusals_then_expiry() -> None:
    adm = Admission(AdmissionLimits(invite_rate=1, invite_burst=1, ban_after=3, ban_window_s=10, ban_s=60))
    kinds = [type(_invite(adm, "10.0.0.1", f"c{i}", 0.0)).__name__ for i in range(6)]
    assert kinds == ["Admit", "Refuse", "Refuse", "Drop", "Drop", "Drop"]
    assert adm.counts["bans"] == 1 and adm.banned(1.0) == 1
    assert adm.check("ACK", "10.0.0.1", call_id="c0", initial=False, user_agent=None, now=1.0) == Drop("banned")
    assert type(_invite(adm, "10.0.0.1", "late", 61.0)).__name__ == "Admit"
    assert adm.banned(61.0) == 0


def test_scanners_get_silence_and_a_ban() -> None:
    adm = Admission(AdmissionLimits())
    assert is_scanner("friendly-scanner") and is_scanner("SIPVicious 0.3") and not is_scanner("baresip v1.0.0")
    v = adm.check("OPTIONS", "10.0.0.5", call_id="s", initial=True, user_agent="friendly-scanner", now=0.0)
    assert v == Drop("scanner")
    assert _invite(adm, "10.0.0.5", "t", 1.0) == Drop("banned")


def test_trusted_proxy_exempt() -> None:
    adm = Admission(AdmissionLimits(invite_rate=1, invite_burst=1, max_unconfirmed_per_source=1,
                                    trusted_proxies=("192.0.2.0/24",)))
    assert all(type(_invite(adm, "192.0.2.7", f"c{i}", 0.0)).__name__ == "Admit" for i in range(50))
    assert adm.counts["trusted"] == 50


def test_capacity_refuses_new_calls_only() -> None:
    adm = Admission(AdmissionLimits(max_calls=2))
    refused = _invite(adm, "10.0.0.1", "a", 0.0, calls_in_progress=2)
    assert isinstance(refused, Refuse) and refused.reason == "capacity"
    bye = adm.check("BYE", "10.0.0.1", call_id="z", initial=False, user_agent=None, now=0.0)
    assert type(bye).__name__ == "Admit"


def test_gate_answers_503_statelessly() -> None:
    adm = Admission(AdmissionLimits(invite_rate=1, invite_burst=1))
    gate = SipGate(adm, user_agent="tutti-bridge", contact_uri="<sip:127.0.0.1:5060>")
    flow = Flow("udp", ("127.0.0.2", 5099))

    def invite(n: int) -> bytes:
        return (f"INVITE sip:demo@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5099;branch=z9hG4bK{n};rport\r\n"
                f"From: <sip:m@127.0.0.2>;tag=f{n}\r\nTo: <sip:demo@127.0.0.1>\r\nCall-ID: id{n}\r\n"
                f"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()

    assert type(gate.screen(invite(1), flow, 0.0)).__name__ == "Admit"
    out = gate.screen(invite(2), flow, 0.0)
    assert isinstance(out, Outgoing) and out.flow.remote == ("127.0.0.2", 5099)
    reply = parse_message(out.data)
    assert reply.status == 503 and reply.headers.get("Retry-After") == "1"  # type: ignore[union-attr]
    assert reply.to.tag                                                     # §8.2.6.2
    assert type(gate.screen(b"SIP/2.0 200 OK\r\n\r\n", flow, 0.0)).__name__ == "Admit"
    assert type(gate.screen(b"\r\n\r\n", flow, 0.0)).__name__ == "Admit"
