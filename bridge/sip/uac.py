"""Outgoing calls (the UAC side, RFC 3261 §13.2, §9.1, §22): INVITE until it is answered or not.

``OutgoingCalls`` owns each outgoing INVITE until it has a final response; once a 2xx arrives
the call is handed to the endpoint as an ordinary dialog (BYE, re-INVITE, INFO both ways).

- Provisional responses are reported (``CallProgress``); early media is not our business here.
- A 2xx is ACKed by us (the transaction only ACKs 300-699); retransmitted 2xx get the same ACK.
- 401/407: the INVITE is sent again with credentials (strongest challenge; a second challenge is
  answered only when it says ``stale=true``), so a wrong password fails fast with that status.
- ``cancel``: CANCEL only after a provisional response (§9.1); asked earlier, it goes out when
  one arrives. The INVITE then ends with 487 (ACKed by the transaction). A 2xx that crosses our
  CANCEL is ACKed and the call is ended with BYE at once.
- Timer B (no response at all) fails the call with 408. The no-answer timer after a 180 is the
  caller's job (the call core), which then cancels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import digest
from .dialog import Dialog, contact_target
from .events import Call, CallAnswered, CallFailed, CallProgress, SipEvent
from .flow import Flow, Outgoing
from .headers import add_tag
from .message import Headers, SipRequest, SipResponse
from .transaction import ClientInviteTransaction, ClientNonInviteTransaction, TimerConfig, sibling_request
from .uri import SipUri


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(eq=False)
class OutgoingInvite:
    call: Call
    tx: ClientInviteTransaction
    body: bytes
    credentials: Credentials | None
    extra: list[tuple[str, str]]
    auth_tries: int = 0
    provisional: bool = False
    cancel_wanted: bool = False
    cancel_tx: ClientNonInviteTransaction | None = None
    ack: bytes | None = None
    done: bool = False           # a final response was reported

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.tx.next_deadline(),
                                 self.cancel_tx.next_deadline() if self.cancel_tx else None) if d is not None]
        return min(deadlines) if deadlines else None


class OutgoingCalls:
    def __init__(
        self,
        timers: TimerConfig,
        *,
        send: Callable[[Outgoing], None],
        emit: Callable[[SipEvent], None],
        arm: Callable[[OutgoingInvite], None],
        token: Callable[[], str],
        via_for: Callable[[Flow], tuple[str, str]],
        contact: Callable[[str], str],
        adopt: Callable[[Call], None],
        user_agent: str,
    ) -> None:
        self.timers = timers
        self._send, self._emit, self._arm, self._token = send, emit, arm, token
        self._via_for, self._contact, self._adopt = via_for, contact, adopt
        self.user_agent = user_agent
        self.by_branch: dict[str, OutgoingInvite] = {}
        self._by_call: dict[int, OutgoingInvite] = {}

    def invite(self, target: SipUri, to_uri: str, from_uri: str, from_display: str | None, flow: Flow,
               body: bytes, now: float, credentials: Credentials | None = None,
               extra: list[tuple[str, str]] | None = None) -> Call:
        display = from_display.replace('"', "") if from_display else None
        local = f'"{display}" <{from_uri}>' if display else f"<{from_uri}>"
        dialog = Dialog(call_id=self._token() + self._token(), local_tag=self._token(), remote_tag="",
                        local_uri=local, remote_uri=f"<{to_uri}>", remote_target=target)
        call = Call(dialog=dialog, caller_display=display, caller_uri=to_uri, caller_user=target.user_text,
                    room=None, flow=flow)
        extra = list(extra or [])
        branch, tx = self._invite_tx(call, body, extra, [], now)
        oi = OutgoingInvite(call, tx, body, credentials, extra)
        self._by_call[id(call)] = oi
        self.by_branch[branch] = oi
        self._pump(oi)
        return call

    def _invite_tx(self, call: Call, body: bytes, extra: list[tuple[str, str]], auth: list[tuple[str, str]],
                   now: float) -> tuple[str, ClientInviteTransaction]:
        branch, via = self._via_for(call.flow)
        headers = [("Contact", self._contact(call.flow.transport)), ("User-Agent", self.user_agent),
                   ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"), *extra, *auth]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        req = call.dialog.build_request("INVITE", via, headers, body)
        return branch, ClientInviteTransaction(req, call.flow, self.timers, now)

    def _send_invite(self, oi: OutgoingInvite, auth: list[tuple[str, str]], now: float) -> None:
        branch, oi.tx = self._invite_tx(oi.call, oi.body, oi.extra, auth, now)
        oi.provisional = False
        self.by_branch[branch] = oi
        self._pump(oi)

    def _pump(self, oi: OutgoingInvite) -> None:
        for tx in (oi.tx, oi.cancel_tx):
            if tx is not None:
                for data in tx.out:
                    self._send(Outgoing(data, tx.flow))
                tx.out.clear()
        if oi.tx.terminated and (oi.cancel_tx is None or oi.cancel_tx.terminated):
            for branch in [b for b, x in self.by_branch.items() if x is oi]:
                del self.by_branch[branch]
            self._by_call.pop(id(oi.call), None)
        else:
            self._arm(oi)

    def owns(self, call: Call) -> bool:
        """An outgoing call not answered yet (hang-ups of it are cancels)."""
        oi = self._by_call.get(id(call))
        return oi is not None and not oi.done

    def cancel(self, call: Call, now: float) -> None:
        oi = self._by_call.get(id(call))
        if oi is None or oi.done or oi.cancel_wanted:
            return
        oi.cancel_wanted = True
        if oi.provisional:
            self._send_cancel(oi, now)

    def _send_cancel(self, oi: OutgoingInvite, now: float) -> None:
        inv = oi.tx.request
        cancel = sibling_request(inv, "CANCEL", inv.headers.get("To") or "")
        oi.cancel_tx = ClientNonInviteTransaction(cancel.to_bytes(), oi.call.flow, self.timers, now)
        self._pump(oi)

    def on_timer(self, oi: OutgoingInvite, now: float) -> None:
        oi.tx.on_timer(now)
        if oi.cancel_tx is not None:
            oi.cancel_tx.on_timer(now)
        if oi.tx.timed_out and not oi.done:
            self._fail(oi, 408, "no response (timer B)")
        elif oi.cancel_tx is not None and oi.cancel_tx.timed_out and not oi.done:
            self._fail(oi, 487, "cancelled (no answer to CANCEL)")   # §9.1: give up after 64*T1
        self._pump(oi)

    def on_response(self, oi: OutgoingInvite, resp: SipResponse, now: float) -> None:
        if resp.cseq.method == "CANCEL":
            if oi.cancel_tx is not None:
                oi.cancel_tx.on_response(resp.status, now)
                self._pump(oi)
            return
        if resp.cseq.seq != oi.tx.request.cseq.seq:
            return          # a response to the INVITE we sent before the credentials
        news = oi.tx.on_response(resp, now)
        status = resp.status
        if 200 <= status < 300 and oi.ack is not None:
            self._send(Outgoing(oi.ack, oi.call.flow))    # a retransmitted 2xx: our ACK was lost
        elif news and status < 200:
            if status > 100:
                oi.provisional = True
                self._emit(CallProgress(oi.call, status, resp.body or None))
            if oi.cancel_wanted and oi.cancel_tx is None:
                self._send_cancel(oi, now)
        elif news and status < 300:
            self._answered(oi, resp, now)
        elif news and status in (401, 407) and self._retry_with_auth(oi, resp, now):
            return
        elif news:
            self._fail(oi, status, resp.reason)
        self._pump(oi)

    def _retry_with_auth(self, oi: OutgoingInvite, resp: SipResponse, now: float) -> bool:
        header = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        challenge = digest.strongest(digest.parse_challenges(resp.headers.get_all(header)))
        if oi.credentials is None or challenge is None or oi.cancel_wanted:
            return False
        if oi.auth_tries >= 1 and not challenge.stale:
            return False                 # the same credentials were refused: a wrong password
        oi.auth_tries += 1
        value = digest.authorization(challenge, username=oi.credentials.username,
                                     password=oi.credentials.password, method="INVITE",
                                     uri=str(oi.tx.request.uri), cnonce=self._token(), nc=1)
        name = "Authorization" if resp.status == 401 else "Proxy-Authorization"
        self._pump(oi)                   # the transaction's ACK for the 401/407
        self._send_invite(oi, [(name, value)], now)
        return True

    def _answered(self, oi: OutgoingInvite, resp: SipResponse, now: float) -> None:
        call, dialog = oi.call, oi.call.dialog
        oi.done = True
        dialog.remote_tag = resp.to.tag or ""
        dialog.remote_uri = resp.headers.get("To") or dialog.remote_uri
        target = contact_target(resp)
        if target is not None:
            dialog.remote_target = target
        dialog.route_set = list(reversed(resp.headers.get_all("Record-Route")))   # §12.1.2
        dialog.state = "confirmed"
        call.state = "confirmed"
        oi.ack = self._build_ack(call, oi.tx.request.cseq.seq)
        self._send(Outgoing(oi.ack, call.flow))
        self._adopt(call)
        if oi.cancel_wanted:
            # Our CANCEL crossed their 2xx: the call exists now, so it is ended with BYE.
            self._emit(CallFailed(call, 487, "cancelled (answered as we cancelled)", answered=True))
        else:
            self._emit(CallAnswered(call, resp.body or None))

    def _build_ack(self, call: Call, seq: int) -> bytes:
        dialog = call.dialog
        _branch, via = self._via_for(call.flow)
        h = Headers()
        h.add("Via", via)
        for route in dialog.route_set:
            h.add("Route", route)
        h.add("Max-Forwards", "70")
        h.add("From", add_tag(dialog.local_uri, dialog.local_tag))
        h.add("To", dialog.remote_uri)
        h.add("Call-ID", dialog.call_id)
        h.add("CSeq", f"{seq} ACK")
        return SipRequest(headers=h, method="ACK", uri=dialog.remote_target).to_bytes()

    def _fail(self, oi: OutgoingInvite, status: int, reason: str) -> None:
        oi.done = True
        oi.call.state = "terminated"
        oi.call.dialog.state = "terminated"
        self._emit(CallFailed(oi.call, status, reason))
