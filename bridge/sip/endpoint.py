"""The UA core the app drives (UAS here, outgoing calls in uac.py): bytes + now in, events + bytes out (RFC 3261 §8, §12-§17).

Decisions worth knowing:
- Symmetric signalling: every request we send in a dialog (BYE) goes to the Flow the INVITE came
  in on, so callers behind NAT and TCP callers work; the Request-URI and Route headers still follow
  the dialog (remote target, route set) so proxies route it correctly.
- UDP responses go to the packet's source IP; the port is the source port when the top Via has
  `rport` (RFC 3581), else the Via sent-by port (RFC 3261 §18.2.2). TCP responses use the same
  connection (Flow.conn_id).
- The 2xx to an INVITE is retransmitted by the core (§13.3.1.4) on every transport, T1 doubling up
  to T2, and given up after 64*T1: then we send BYE and report CallEnded("ack_timeout").
- hangup() after our 2xx but before the ACK defers the BYE until the ACK (or the ACK timeout), as
  §15 requires. hangup() of an unanswered call answers 480.
- receive()/handle_timer() never raise: an unexpected internal error drops that message and is
  counted in `internal_errors` (tests assert it stays 0).
- Nothing malformed reaches a dialog (RFC 4475, tests/unit/test_sip_torture.py): a request that
  does not parse gets a stateless 400 naming the bad header (505 for another SIP version), and a
  well-formed one passes validate.refusal() (483/405/501/416/420/415/406) first.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Sequence

from .dialog import Dialog
from .events import Call, CallConfirmed, CallEnded, EndReason, IncomingCall, Info, ReInvite, SipEvent, Update
from .flow import Flow, Outgoing, response_flow, stamp_via
from .headers import Via, parse_via
from .message import SipParseError, SipRequest, SipResponse, parse_message
from .responses import build_response
from .transaction import ClientNonInviteTransaction, ServerInviteTransaction, ServerNonInviteTransaction, TimerConfig
from .uac import Credentials, OutgoingCalls, OutgoingInvite
from .uri import SipUri
from .validate import ACCEPT, ALLOW, SDP, malformed_reply, refusal, session_offer

ServerTx = ServerInviteTransaction | ServerNonInviteTransaction
Kind = Literal["invite", "reinvite", "update"]


@dataclass(eq=False)
class _ServerEntry:
    key: tuple[object, ...]
    merge_key: tuple[object, ...] | None
    tx: ServerTx

    def next_deadline(self) -> float | None:
        return self.tx.next_deadline()


@dataclass(eq=False)
class _ClientEntry:
    key: tuple[str, str]
    tx: ClientNonInviteTransaction
    session: "_Session"

    def next_deadline(self) -> float | None:
        return self.tx.next_deadline()


@dataclass(eq=False)
class _Pending:
    request: SipRequest
    entry: _ServerEntry
    kind: Kind

    @property
    def tx(self) -> ServerTx:
        return self.entry.tx


@dataclass(eq=False)
class _Session:
    call: Call
    pending: list[_Pending] = field(default_factory=list)  # awaiting the app's respond(), last on top
    ok_data: bytes | None = None  # our 2xx to an INVITE, retransmitted until the ACK
    ok_flow: Flow | None = None
    ok_cseq: int = 0
    ok_initial: bool = True
    ok_interval: float = 0.0
    ok_next: float = 0.0
    ok_giveup: float = 0.0
    bye_tx: ClientNonInviteTransaction | None = None
    bye_after_ack: bool = False
    ended: bool = False

    def next_deadline(self) -> float | None:
        return min(self.ok_next, self.ok_giveup) if self.ok_data is not None else None


_Timed = _ServerEntry | _ClientEntry | _Session | OutgoingInvite


class SipEndpoint:
    ack_wait_s = 32.0  # how long a 2xx waits for its ACK; the app may shorten 64*T1 (security.ack_timeout_s)
    def __init__(self, *, contact_host: str, contact_port: int, user_agent: str = "tutti-bridge",
                 t1: float = 0.5, t2: float = 4.0, t4: float = 5.0,
                 supported_extensions: frozenset[str] = frozenset(), rng: random.Random | None = None) -> None:
        self.contact_host = contact_host
        self.contact_port, self.tls_port = contact_port, 0    # tls_port: the TLS listener's (app.py)
        self.user_agent = user_agent
        self.timers = TimerConfig(t1, t2, t4)
        self.supported = supported_extensions
        self._rng = rng or random.Random()
        self._events: deque[SipEvent] = deque()
        self._out: list[Outgoing] = []
        self._server: dict[tuple[object, ...], _ServerEntry] = {}
        self._merge: dict[tuple[object, ...], _ServerEntry] = {}
        self._client: dict[tuple[str, str], _ClientEntry] = {}
        self._dialogs: dict[tuple[str, str, str], _Session] = {}
        self._heap: list[tuple[float, int, _Timed]] = []
        self._seq = 0
        self.internal_errors = 0
        self.outgoing = OutgoingCalls(
            self.timers, send=self._out.append, emit=self._events.append, arm=self._arm, token=self._new_token,
            via_for=self._via_for, contact=self._contact, adopt=self._adopt, user_agent=user_agent)

    # ------------------------------------------------------------------ public contract
    def receive(self, data: bytes, flow: Flow, now: float) -> None:
        try:
            self._receive(data, flow, now)
        except Exception:  # noqa: BLE001 - one bad message must not take the endpoint down
            self.internal_errors += 1

    def next_event(self) -> SipEvent | None:
        return self._events.popleft() if self._events else None

    def messages_to_send(self) -> list[Outgoing]:
        out = self._out[:]
        self._out.clear()       # the same list: uac.py holds its append
        return out

    def has_output(self) -> bool:
        """Messages are waiting for ``messages_to_send`` (cheap: the adapter asks every tick)."""
        return bool(self._out)

    def get_timer(self) -> float | None:
        while self._heap and self._heap[0][2].next_deadline() != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def handle_timer(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            deadline, _, obj = heapq.heappop(self._heap)
            if obj.next_deadline() != deadline:
                continue  # stale entry; a fresher one is in the heap
            try:
                self._fire(obj, now)
            except Exception:  # noqa: BLE001
                self.internal_errors += 1

    def active_calls(self) -> list[Call]:
        return [s.call for s in self._dialogs.values() if s.call.state != "terminated"]

    def respond(
        self,
        call: Call,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        content_type: str = SDP,
        headers: Sequence[tuple[str, str]] = (),
        now: float,
    ) -> bool:
        """Answer the call's latest pending INVITE / re-INVITE / UPDATE. Returns False (and does
        nothing) when nothing is pending, e.g. the caller cancelled meanwhile."""
        sess = self._session_of(call)
        if sess is None or not sess.pending or not 100 <= status <= 699:
            return False
        p = sess.pending[-1]
        if status < 200 and p.kind == "update":
            return False
        self._answer(sess, p, status, reason, body, content_type, headers, now)
        return True

    def invite(self, target: SipUri, *, to_uri: str, from_uri: str, from_display: str | None, flow: Flow,
               body: bytes, now: float, credentials: Credentials | None = None) -> Call:
        """Call out (uac.py): progress, answer or failure come back as events."""
        return self.outgoing.invite(target, to_uri, from_uri, from_display, flow, body, now, credentials)

    def _adopt(self, call: Call) -> None:
        """An answered outgoing call becomes an ordinary dialog."""
        self._dialogs[call.dialog.id] = _Session(call)

    def hangup(self, call: Call, now: float) -> None:
        """End a call: BYE, 480 for an unanswered incoming one, CANCEL for an unanswered outgoing one."""
        if self.outgoing.owns(call):
            self.outgoing.cancel(call, now)
            return
        sess = self._session_of(call)
        if sess is None or call.state == "terminated":
            return
        if call.state == "early":
            self._reject_pending(sess, now, initial_status=480)
            self._end(sess, "local", 480)
            self._maybe_forget(sess)
            return
        self._reject_pending(sess, now)
        call.state = "terminated"
        if sess.ok_data is not None:
            sess.bye_after_ack = True  # §15: no BYE before the ACK (or its timeout)
        else:
            self._send_bye(sess, now)

    # ------------------------------------------------------------------ plumbing
    def _session_of(self, call: Call) -> _Session | None:
        sess = self._dialogs.get(call.dialog.id)
        return sess if sess is not None and sess.call is call else None

    def _arm(self, obj: _Timed) -> None:
        d = obj.next_deadline()
        if d is not None:
            self._seq += 1
            heapq.heappush(self._heap, (d, self._seq, obj))

    def _pump(self, entry: _ServerEntry | _ClientEntry) -> None:
        tx = entry.tx
        for data in tx.out:
            self._out.append(Outgoing(data, tx.flow))
        tx.out.clear()
        if tx.terminated:
            if isinstance(entry, _ServerEntry):
                if self._server.get(entry.key) is entry:
                    del self._server[entry.key]
                if entry.merge_key is not None and self._merge.get(entry.merge_key) is entry:
                    del self._merge[entry.merge_key]
            elif self._client.get(entry.key) is entry:
                del self._client[entry.key]
        else:
            self._arm(entry)

    def _fire(self, obj: _Timed, now: float) -> None:
        if isinstance(obj, OutgoingInvite):
            self.outgoing.on_timer(obj, now)
            return
        if isinstance(obj, _Session):
            self._session_timer(obj, now)
            return
        obj.tx.on_timer(now)
        self._pump(obj)
        if isinstance(obj, _ClientEntry) and obj.tx.timed_out:
            self._end(obj.session, "timeout", None)
            self._maybe_forget(obj.session)

    def _new_token(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def _via_for(self, flow: Flow) -> tuple[str, str]:
        branch = "z9hG4bK" + self._new_token()
        return branch, f"SIP/2.0/{flow.transport.upper()} {self._hostport(flow.transport)};branch={branch};rport"

    def _hostport(self, transport: str = "udp") -> str:
        host = f"[{self.contact_host}]" if ":" in self.contact_host else self.contact_host
        return f"{host}:{self.tls_port if transport.lower() == 'tls' and self.tls_port else self.contact_port}"

    def _contact(self, via_transport: str, sips: bool = False) -> str:
        """Our Contact, naming the transport the peer used so it keeps using it in the dialog."""
        tp = via_transport.lower()
        if tp == "tls" and sips:    # a sips: request (RFC 3261 §12.1.1); sips: has no transport=tls (RFC 5630)
            return f"<sips:{self._hostport(tp)}>"
        return f"<sip:{self._hostport(tp)}{'' if tp == 'udp' else ';transport=' + tp}>"

    # ------------------------------------------------------------------ receive path
    def _receive(self, data: bytes, flow: Flow, now: float) -> None:
        if not data.strip(b"\r\n\t "):
            return  # keep-alive
        try:
            msg = parse_message(data)
        except SipParseError as err:
            reply = malformed_reply(err, flow, hostport=self._hostport(), user_agent=self.user_agent,
                                    new_tag=self._new_token)
            if reply is not None:
                self._out.append(reply)
            return
        if isinstance(msg, SipResponse):
            self._on_response(msg, now)
        else:
            self._on_request(msg, flow, now)

    @staticmethod
    def _server_key(req: SipRequest, via: Via, method: str) -> tuple[object, ...]:
        branch = via.branch
        if branch and branch.startswith("z9hG4bK") and len(branch) > 7:
            return ("3261", branch, via.sent_by, method)
        # RFC 2543 peers (and a bare magic cookie, RFC 4475 §3.2.1): match on the request's
        # identity instead (§17.2.3).
        return ("2543", req.call_id, req.from_.tag or "", req.cseq.seq, via.sent_by, method)

    def _on_request(self, req: SipRequest, flow: Flow, now: float) -> None:
        via = req.top_via
        stamp_via(req.headers, via, flow)
        rflow = response_flow(via, flow)
        method = req.method
        if method == "ACK":
            self._on_ack(req, self._server_key(req, via, "INVITE"), now)
            return
        key = self._server_key(req, via, method)
        existing = self._server.get(key)
        if existing is not None:
            existing.tx.on_retransmit(now)
            self._pump(existing)
            self._resend_ok_on_retransmit(req)
            return
        to_tag = req.to.tag
        merge_key: tuple[object, ...] | None = None
        if to_tag is None and method != "CANCEL":
            merge_key = (req.from_.tag, req.call_id, req.cseq.seq, method)
        tx: ServerTx = (
            ServerInviteTransaction(rflow, self.timers) if method == "INVITE"
            else ServerNonInviteTransaction(rflow, self.timers)
        )
        entry = _ServerEntry(key, merge_key, tx)
        merged = merge_key is not None and merge_key in self._merge
        self._server[key] = entry
        if merge_key is not None and not merged:
            self._merge[merge_key] = entry
        if merged:
            self._reply(entry, req, 482, now)  # §8.2.2.2: same request reached us by another path
        elif method == "CANCEL":
            self._on_cancel(req, entry, via, now)
        else:
            self._dispatch(req, entry, flow, now)

    def _dispatch(self, req: SipRequest, entry: _ServerEntry, flow: Flow, now: float) -> None:
        method = req.method
        refused = refusal(req, self.supported, self._hostport())
        if refused is not None:
            self._reply(entry, req, refused.status, now, headers=refused.headers)
            return
        to_tag = req.to.tag
        if to_tag is None:
            if method == "INVITE":
                self._new_call(req, entry, flow, now)
            elif method == "OPTIONS":
                self._reply_options(entry, req, now)
            else:
                self._reply(entry, req, 481, now)
            return
        sess = self._dialogs.get((req.call_id, to_tag, req.from_.tag or ""))
        if sess is None:
            self._reply(entry, req, 481, now)
            return
        self._in_dialog(sess, req, entry, flow, now)

    def _new_call(self, req: SipRequest, entry: _ServerEntry, flow: Flow, now: float) -> None:
        dialog = Dialog.for_uas(req, self._new_token())
        caller = req.from_
        call = Call(
            dialog=dialog,
            caller_display=caller.display,
            caller_uri=str(caller.uri),
            caller_user=caller.uri.user_text,
            room=req.uri.user_text,
            flow=flow,
        )
        sess = _Session(call, pending=[_Pending(req, entry, "invite")])
        self._dialogs[dialog.id] = sess
        self._reply(entry, req, 100, now)  # at once: the app may take a while to answer
        self._events.append(IncomingCall(call, req, session_offer(req)))

    def _in_dialog(self, sess: _Session, req: SipRequest, entry: _ServerEntry, flow: Flow, now: float) -> None:
        call, dialog, method = sess.call, sess.call.dialog, req.method
        tag = dialog.local_tag
        if call.state == "terminated":
            # Our BYE is on its way; a crossing BYE still gets its 200 (§15.1.2).
            self._reply(entry, req, 200 if method == "BYE" else 481, now, to_tag=tag)
            if method == "BYE":
                self._end(sess, "bye", None)
                self._maybe_forget(sess)
            return
        seq = req.cseq.seq
        if dialog.remote_seq is not None and seq <= dialog.remote_seq:
            self._reply(entry, req, 500, now, reason="Out of Order CSeq", to_tag=tag)  # §12.2.2
            return
        dialog.remote_seq = seq
        call.flow = flow  # follow the peer to its latest path (e.g. a new TCP connection)
        if method == "BYE":
            self._reply(entry, req, 200, now, to_tag=tag)
            self._reject_pending(sess, now)
            sess.ok_data = None
            self._end(sess, "bye", None)
            self._maybe_forget(sess)
        elif method == "INFO":
            self._reply(entry, req, 200, now, to_tag=tag)
            self._events.append(Info(call, req.content_type, req.body))
        elif method == "OPTIONS":
            self._reply_options(entry, req, now, to_tag=tag)
        elif method == "INVITE":
            if call.state != "confirmed" or sess.ok_data is not None or any(
                p.kind != "update" for p in sess.pending
            ):
                # §14.2: a second INVITE while one is still being handled.
                self._reply(entry, req, 500, now, to_tag=tag,
                            headers=[("Retry-After", str(self._rng.randint(0, 10)))])
                return
            sess.pending.append(_Pending(req, entry, "reinvite"))
            self._reply(entry, req, 100, now)
            self._events.append(ReInvite(call, req, session_offer(req)))
        elif method == "UPDATE":
            if any(p.kind == "update" for p in sess.pending):
                # RFC 3311 §5.2: an UPDATE before the previous one got its final response.
                self._reply(entry, req, 500, now, to_tag=tag,
                            headers=[("Retry-After", str(self._rng.randint(0, 10)))])
                return
            sess.pending.append(_Pending(req, entry, "update"))
            self._events.append(Update(call, req, session_offer(req)))
        else:
            self._reply(entry, req, 405, now, to_tag=tag, headers=[("Allow", ", ".join(ALLOW))])

    def _on_ack(self, req: SipRequest, inv_key: tuple[object, ...], now: float) -> None:
        entry = self._server.get(inv_key)
        if entry is not None and entry.tx.state in ("completed", "confirmed"):
            assert isinstance(entry.tx, ServerInviteTransaction)
            entry.tx.on_ack(now)  # ACK for our non-2xx: the transaction's business
            self._pump(entry)
            return
        to_tag = req.to.tag
        if to_tag is None:
            return
        sess = self._dialogs.get((req.call_id, to_tag, req.from_.tag or ""))
        if sess is None or sess.ok_data is None or req.cseq.seq != sess.ok_cseq:
            return  # late or duplicate ACK
        sess.ok_data = None
        if sess.bye_after_ack:
            self._send_bye(sess, now)
        else:
            self._events.append(CallConfirmed(sess.call, req.body or None, sess.ok_initial))

    def _on_cancel(self, req: SipRequest, entry: _ServerEntry, via: Via, now: float) -> None:
        inv = self._server.get(self._server_key(req, via, "INVITE"))
        if inv is None or not isinstance(inv.tx, ServerInviteTransaction):
            self._reply(entry, req, 481, now)
            return
        owner = self._pending_owner(inv.tx)
        tag = owner[0].call.local_tag if owner else None
        self._reply(entry, req, 200, now, to_tag=tag)
        if owner is None or inv.tx.state != "proceeding":
            return  # already answered: CANCEL has no effect (§9.2)
        sess, pending = owner
        self._answer(sess, pending, 487, None, b"", SDP, (), now, end_reason="cancel")

    def _pending_owner(self, tx: ServerTx) -> tuple[_Session, _Pending] | None:
        for sess in self._dialogs.values():
            for p in sess.pending:
                if p.tx is tx:
                    return sess, p
        return None

    def _resend_ok_on_retransmit(self, req: SipRequest) -> None:
        """An INVITE retransmitted after our 2xx: the 2xx was probably lost, resend it now."""
        if req.method != "INVITE":
            return
        to_tag = req.to.tag
        for sess in self._dialogs.values():
            d = sess.call.dialog
            if (sess.ok_data is not None and sess.ok_flow is not None and d.call_id == req.call_id
                    and d.remote_tag == (req.from_.tag or "") and sess.ok_cseq == req.cseq.seq
                    and to_tag in (None, d.local_tag)):
                self._out.append(Outgoing(sess.ok_data, sess.ok_flow))

    def _on_response(self, resp: SipResponse, now: float) -> None:
        vias = resp.headers.get_all("Via")
        if len(vias) != 1:
            return  # §8.1.3.3: more than one Via, not for us
        branch = parse_via(vias[0]).branch or ""
        outgoing = self.outgoing.by_branch.get(branch)
        if outgoing is not None and resp.cseq.method in ("INVITE", "CANCEL"):
            self.outgoing.on_response(outgoing, resp, now)
            return
        entry = self._client.get((branch, resp.cseq.method))
        if entry is None:
            return
        news = entry.tx.on_response(resp.status, now)
        self._pump(entry)
        if news and resp.status >= 200:
            self._end(entry.session, "local", resp.status)
            self._maybe_forget(entry.session)

    # ------------------------------------------------------------------ answering
    def _answer(self, sess: _Session, p: _Pending, status: int, reason: str | None, body: bytes,
                content_type: str, headers: Sequence[tuple[str, str]], now: float,
                end_reason: EndReason = "local") -> None:
        call = sess.call
        tag = call.local_tag if status > 100 else None
        data = self._build_response(
            p.request, status, reason, to_tag=tag, headers=list(headers), body=body,
            content_type=content_type, contact=100 < status < 300,
            record_route=p.kind == "invite" and 100 < status < 300,
            allow=p.kind != "update" and 200 <= status < 300,
        )
        p.tx.respond(data, status, now)
        self._pump(p.entry)
        if status < 200:
            return
        sess.pending.remove(p)
        if 200 <= status < 300:
            if p.kind == "invite":
                call.state = "confirmed"
                call.dialog.state = "confirmed"
            else:
                call.dialog.refresh_target(p.request)
            if p.kind in ("invite", "reinvite"):
                t1 = self.timers.t1
                sess.ok_data, sess.ok_flow = data, p.tx.flow
                sess.ok_cseq, sess.ok_initial = p.request.cseq.seq, p.kind == "invite"
                sess.ok_interval, sess.ok_next, sess.ok_giveup = t1, now + t1, now + min(64 * t1, self.ack_wait_s)
                self._arm(sess)
        elif p.kind == "invite":
            self._reject_pending(sess, now)
            self._end(sess, end_reason, status)
            self._maybe_forget(sess)

    def _reject_pending(self, sess: _Session, now: float, initial_status: int = 487) -> None:
        """Final-answer everything the app still owes (§15.1.2 recommends 487)."""
        for p in list(reversed(sess.pending)):
            status = initial_status if p.kind == "invite" else 487
            sess.pending.remove(p)
            data = self._build_response(p.request, status, None, to_tag=sess.call.local_tag)
            p.tx.respond(data, status, now)
            self._pump(p.entry)

    def _reply(self, entry: _ServerEntry, req: SipRequest, status: int, now: float, *,
               reason: str | None = None, to_tag: str | None = None,
               headers: Sequence[tuple[str, str]] = ()) -> None:
        if status > 100 and to_tag is None and req.to.tag is None:
            to_tag = self._new_token()  # §8.2.6.2: every non-100 response carries a To tag
        data = self._build_response(req, status, reason, to_tag=to_tag, headers=list(headers))
        entry.tx.respond(data, status, now)
        self._pump(entry)

    def _reply_options(self, entry: _ServerEntry, req: SipRequest, now: float,
                       to_tag: str | None = None) -> None:
        if to_tag is None:
            to_tag = self._new_token()
        data = self._build_response(req, 200, None, to_tag=to_tag, headers=[("Accept", ACCEPT)],
                                    contact=True, allow=True)
        entry.tx.respond(data, 200, now)
        self._pump(entry)

    def _build_response(self, req: SipRequest, status: int, reason: str | None, *, to_tag: str | None,
                        headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                        content_type: str = SDP, contact: bool = False, record_route: bool = False,
                        allow: bool = False) -> bytes:
        contact_uri = self._contact(req.top_via.transport, sips=req.uri.scheme == "sips")
        return build_response(req, status, reason, to_tag=to_tag, contact_uri=contact_uri,
                              supported=self.supported, user_agent=self.user_agent, headers=headers, body=body,
                              content_type=content_type, contact=contact, record_route=record_route, allow=allow)

    # ------------------------------------------------------------------ ending calls
    def _send_bye(self, sess: _Session, now: float) -> None:
        call = sess.call
        call.state = "terminated"
        call.dialog.state = "terminated"
        branch, via = self._via_for(call.flow)
        req = call.dialog.build_request("BYE", via, [("User-Agent", self.user_agent)])
        tx = ClientNonInviteTransaction(req.to_bytes(), call.flow, self.timers, now)
        entry = _ClientEntry((branch, "BYE"), tx, sess)
        self._client[entry.key] = entry
        sess.bye_tx = tx
        self._pump(entry)

    def _session_timer(self, sess: _Session, now: float) -> None:
        if sess.ok_data is None or sess.ok_flow is None:
            return
        if now >= sess.ok_giveup:
            sess.ok_data = None  # §13.3.1.4: no ACK within 64*T1 -> end the dialog with BYE
            already_hung_up = sess.bye_after_ack
            self._send_bye(sess, now)
            if not already_hung_up:
                self._end(sess, "ack_timeout", None)
            return
        self._out.append(Outgoing(sess.ok_data, sess.ok_flow))
        sess.ok_interval = min(2 * sess.ok_interval, self.timers.t2)
        sess.ok_next = now + sess.ok_interval
        self._arm(sess)

    def _end(self, sess: _Session, reason: EndReason, status: int | None) -> None:
        sess.call.state = "terminated"
        sess.call.dialog.state = "terminated"
        if not sess.ended:
            sess.ended = True
            self._events.append(CallEnded(sess.call, reason, status))

    def _maybe_forget(self, sess: _Session) -> None:
        busy = sess.ok_data is not None or (sess.bye_tx is not None and not sess.bye_tx.terminated
                                            and sess.bye_tx.final_status is None)
        if sess.ended and not busy:
            d = sess.call.dialog
            if self._dialogs.get(d.id) is sess:
                del self._dialogs[d.id]
