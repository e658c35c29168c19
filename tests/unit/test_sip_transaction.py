"""RFC 3261 §17 state machines driven directly, UDP vs TCP, with a fake clock."""

from bridge.sip.flow import Flow
from bridge.sip.message import SipRequest, SipResponse, parse_message
from bridge.sip.transaction import (
    ClientInviteTransaction, ClientNonInviteTransaction, ServerInviteTransaction, ServerNonInviteTransaction,
    TimerConfig,
)

UDP = Flow("udp", ("10.0.0.1", 5060))
TCP = Flow("tcp", ("10.0.0.1", 5060), 1)
CFG = TimerConfig()


def run(tx, until: float) -> list[tuple[float, bytes]]:
    """Fire timers up to `until`; returns (time, bytes) of everything sent."""
    sent = []
    while (d := tx.next_deadline()) is not None and d <= until:
        tx.on_timer(d)
        sent += [(d, b) for b in tx.out]
        tx.out.clear()
    return sent


def test_server_invite_non2xx_udp_timer_g_h() -> None:
    tx = ServerInviteTransaction(UDP, CFG)
    tx.respond(b"100", 100, 0)
    tx.on_retransmit(0.1)
    assert tx.out == [b"100", b"100"]
    tx.out.clear()
    tx.respond(b"486", 486, 1.0)
    assert tx.state == "completed" and tx.out == [b"486"]
    tx.out.clear()
    tx.on_retransmit(1.2)
    assert tx.out == [b"486"]
    tx.out.clear()
    sent = run(tx, 100)
    times = [round(t - 1.0, 3) for t, _ in sent]
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert tx.terminated and tx.timed_out


def test_server_invite_ack_confirms_then_timer_i() -> None:
    tx = ServerInviteTransaction(UDP, CFG)
    tx.respond(b"404", 404, 0)
    tx.on_ack(0.2)
    assert tx.state == "confirmed" and tx.next_deadline() == 0.2 + CFG.t4
    tx.on_retransmit(0.3)  # INVITE retransmission in Confirmed is absorbed
    assert tx.out == [b"404"]
    run(tx, 10)
    assert tx.terminated and not tx.timed_out


def test_server_invite_tcp_no_g_and_immediate_i() -> None:
    tx = ServerInviteTransaction(TCP, CFG)
    tx.respond(b"480", 480, 0)
    assert set(tx.timers) == {"H"}
    tx.on_ack(1)
    assert tx.next_deadline() == 1
    run(tx, 1)
    assert tx.terminated


def test_server_invite_2xx_accepted_state() -> None:
    tx = ServerInviteTransaction(UDP, CFG)
    tx.respond(b"200", 200, 0)
    tx.out.clear()
    tx.on_retransmit(1)
    assert tx.out == []  # 2xx retransmission is the core's job (RFC 6026)
    tx.respond(b"500", 500, 2)
    assert tx.out == []  # no second final response
    assert run(tx, 31.9) == [] and tx.state == "accepted"
    run(tx, 32)
    assert tx.terminated


def test_server_non_invite_udp_and_tcp() -> None:
    tx = ServerNonInviteTransaction(UDP, CFG)
    tx.on_retransmit(0)
    assert tx.out == []  # Trying: absorbed
    tx.respond(b"200", 200, 1)
    tx.on_retransmit(2)
    assert tx.out == [b"200", b"200"]
    assert tx.next_deadline() == 1 + 64 * CFG.t1
    run(tx, 100)
    assert tx.terminated
    t2 = ServerNonInviteTransaction(TCP, CFG)
    t2.respond(b"200", 200, 1)
    assert t2.next_deadline() == 1


def test_client_non_invite_udp_retransmits_then_timer_f() -> None:
    tx = ClientNonInviteTransaction(b"BYE", UDP, CFG, 0)
    assert tx.out == [b"BYE"]
    tx.out.clear()
    sent = run(tx, 40)
    assert [t for t, _ in sent] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert tx.terminated and tx.timed_out and tx.final_status == 408


def test_client_non_invite_proceeding_uses_t2_and_final_then_k() -> None:
    tx = ClientNonInviteTransaction(b"BYE", UDP, CFG, 0)
    tx.out.clear()
    assert tx.on_response(100, 0.1)
    sent = run(tx, 9)
    assert [t for t, _ in sent] == [0.5, 4.5, 8.5]
    assert tx.on_response(200, 9)
    assert not tx.on_response(200, 9.1)  # retransmitted final: not news
    assert tx.next_deadline() == 9 + CFG.t4
    run(tx, 20)
    assert tx.terminated and tx.final_status == 200 and not tx.timed_out


def test_client_non_invite_tcp_no_retransmit() -> None:
    tx = ClientNonInviteTransaction(b"BYE", TCP, CFG, 0)
    tx.out.clear()
    assert run(tx, 31.9) == []
    run(tx, 32)
    assert tx.timed_out


def _invite() -> SipRequest:
    m = parse_message(
        b"INVITE sip:bob@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKc1\r\n"
        b"Route: <sip:proxy;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:room@127.0.0.1>;tag=me\r\n"
        b"To: <sip:bob@10.0.0.1>\r\nCall-ID: out1\r\nCSeq: 5 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(m, SipRequest)
    return m


def _resp(status: int) -> SipResponse:
    m = parse_message(
        f"SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKc1\r\n"
        "From: <sip:room@127.0.0.1>;tag=me\r\nTo: <sip:bob@10.0.0.1>;tag=bob\r\nCall-ID: out1\r\n"
        "CSeq: 5 INVITE\r\n\r\n".encode()
    )
    assert isinstance(m, SipResponse)
    return m


def test_client_invite_timer_a_doubles_and_b_times_out() -> None:
    tx = ClientInviteTransaction(_invite(), UDP, CFG, 0)
    tx.out.clear()
    sent = run(tx, 40)
    assert [t for t, _ in sent] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert tx.timed_out and tx.final_status == 408


def test_client_invite_provisional_stops_a_and_non2xx_acked() -> None:
    tx = ClientInviteTransaction(_invite(), UDP, CFG, 0)
    tx.out.clear()
    assert tx.on_response(_resp(180), 0.2)
    assert run(tx, 5) == []
    assert tx.on_response(_resp(486), 6)
    (ack_bytes,) = tx.out
    ack = parse_message(ack_bytes)
    assert isinstance(ack, SipRequest) and ack.method == "ACK"
    assert ack.to.tag == "bob" and ack.cseq.seq == 5 and ack.cseq.method == "ACK"
    assert ack.top_via.branch == "z9hG4bKc1" and ack.headers.get_all("Route") == ["<sip:proxy;lr>"]
    tx.out.clear()
    assert not tx.on_response(_resp(486), 7)  # retransmitted final: ACK again, TU not told
    assert tx.out == [ack_bytes]
    tx.out.clear()
    run(tx, 6 + 31.9)
    assert not tx.terminated
    run(tx, 6 + 32)
    assert tx.terminated


def test_client_invite_2xx_goes_to_tu_in_accepted() -> None:
    tx = ClientInviteTransaction(_invite(), TCP, CFG, 0)
    assert "A" not in tx.timers
    assert tx.on_response(_resp(200), 1) and tx.state == "accepted"
    assert tx.on_response(_resp(200), 2)  # retransmitted 2xx still reaches the TU for its ACK
    assert not any(b.startswith(b"ACK") for b in tx.out)
    run(tx, 100)
    assert tx.terminated
