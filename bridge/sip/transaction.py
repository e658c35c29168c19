"""RFC 3261 §17 transaction state machines (with RFC 6026's Accepted state), sans-IO.

Each transaction queues wire bytes in `out` and keeps its timers as absolute deadlines; the
owner drains `out`, asks `next_deadline()` and calls `on_timer(now)` when it is due."""

from __future__ import annotations

from dataclasses import dataclass

from .flow import Flow
from .message import Headers, SipRequest, SipResponse


@dataclass(frozen=True)
class TimerConfig:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


class _Transaction:
    def __init__(self, flow: Flow, timers: TimerConfig) -> None:
        self.flow = flow
        self.cfg = timers
        self.state = ""
        self.out: list[bytes] = []
        self.timers: dict[str, float] = {}

    @property
    def reliable(self) -> bool:
        return self.flow.reliable

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def next_deadline(self) -> float | None:
        return min(self.timers.values()) if self.timers and not self.terminated else None

    def _due(self, now: float) -> list[str]:
        due = sorted((t, n) for n, t in self.timers.items() if t <= now)
        for _, n in due:
            del self.timers[n]
        return [n for _, n in due]

    def _terminate(self) -> None:
        self.state = "terminated"
        self.timers.clear()


class ServerInviteTransaction(_Transaction):
    """States: proceeding -> (accepted | completed -> confirmed) -> terminated."""

    def __init__(self, flow: Flow, timers: TimerConfig) -> None:
        super().__init__(flow, timers)
        self.state = "proceeding"
        self.last_response: bytes | None = None
        self.final_status: int | None = None
        self.timed_out = False  # timer H fired: no ACK for our non-2xx final response
        self._g = timers.t1

    def respond(self, data: bytes, status: int, now: float) -> None:
        if self.state != "proceeding":
            return  # a final response was already sent; the transaction ignores more
        self.last_response = data
        self.out.append(data)
        if status < 200:
            return
        self.final_status = status
        t1 = self.cfg.t1
        if status < 300:
            # RFC 6026: stay around to absorb INVITE retransmissions; the core retransmits the 2xx.
            self.state = "accepted"
            self.timers = {"L": now + 64 * t1}
        else:
            self.state = "completed"
            self.timers = {"H": now + 64 * t1}
            if not self.reliable:
                self.timers["G"] = now + self._g

    def on_retransmit(self, now: float) -> None:
        """A retransmitted INVITE: replay the latest response (the 2xx is the core's job)."""
        if self.state in ("proceeding", "completed") and self.last_response is not None:
            self.out.append(self.last_response)

    def on_ack(self, now: float) -> None:
        if self.state == "completed":
            self.state = "confirmed"
            self.timers = {"I": now + (0.0 if self.reliable else self.cfg.t4)}

    def on_timer(self, now: float) -> None:
        for name in self._due(now):
            if name == "G" and self.state == "completed" and self.last_response is not None:
                self.out.append(self.last_response)
                self._g = min(2 * self._g, self.cfg.t2)
                self.timers["G"] = now + self._g
            elif name == "H":
                self.timed_out = True
                self._terminate()
            elif name in ("I", "L"):
                self._terminate()


class ServerNonInviteTransaction(_Transaction):
    """States: trying -> proceeding -> completed -> terminated."""

    def __init__(self, flow: Flow, timers: TimerConfig) -> None:
        super().__init__(flow, timers)
        self.state = "trying"
        self.last_response: bytes | None = None
        self.final_status: int | None = None

    def respond(self, data: bytes, status: int, now: float) -> None:
        if self.state not in ("trying", "proceeding"):
            return
        self.last_response = data
        self.out.append(data)
        if status < 200:
            self.state = "proceeding"
            return
        self.final_status = status
        self.state = "completed"
        self.timers = {"J": now + (0.0 if self.reliable else 64 * self.cfg.t1)}

    def on_retransmit(self, now: float) -> None:
        if self.state in ("proceeding", "completed") and self.last_response is not None:
            self.out.append(self.last_response)

    def on_timer(self, now: float) -> None:
        if "J" in self._due(now):
            self._terminate()


class ClientNonInviteTransaction(_Transaction):
    """States: trying -> proceeding -> completed -> terminated. `final_status` is 408 on timer F."""

    def __init__(self, request: bytes, flow: Flow, timers: TimerConfig, now: float) -> None:
        super().__init__(flow, timers)
        self.state = "trying"
        self.request = request
        self.final_status: int | None = None
        self.timed_out = False
        self._e = timers.t1
        self.out.append(request)
        self.timers = {"F": now + 64 * timers.t1}
        if not self.reliable:
            self.timers["E"] = now + self._e

    def on_response(self, status: int, now: float) -> bool:
        """Returns True when the response is news for the TU (not a retransmission)."""
        if self.state in ("trying", "proceeding"):
            if status < 200:
                self.state = "proceeding"
                return True
            self.final_status = status
            self.state = "completed"
            self.timers = {"K": now + (0.0 if self.reliable else self.cfg.t4)}
            return True
        return False

    def on_timer(self, now: float) -> None:
        for name in self._due(now):
            if name == "E" and self.state in ("trying", "proceeding"):
                self.out.append(self.request)
                # In Proceeding the interval is T2 (RFC 3261 §17.1.2.2).
                self._e = self.cfg.t2 if self.state == "proceeding" else min(2 * self._e, self.cfg.t2)
                self.timers["E"] = now + self._e
            elif name == "F" and self.state in ("trying", "proceeding"):
                self.timed_out = True
                self.final_status = 408
                self._terminate()
            elif name == "K":
                self._terminate()


class ClientInviteTransaction(_Transaction):
    """States: calling -> proceeding -> (accepted | completed) -> terminated.

    For 300-699 the transaction itself sends the ACK (§17.1.1.3); 2xx ACKs belong to the core."""

    def __init__(self, request: SipRequest, flow: Flow, timers: TimerConfig, now: float) -> None:
        super().__init__(flow, timers)
        self.state = "calling"
        self.request = request
        self.request_bytes = request.to_bytes()
        self.final_status: int | None = None
        self.timed_out = False
        self._a = timers.t1
        self._ack: bytes | None = None
        self.out.append(self.request_bytes)
        self.timers = {"B": now + 64 * timers.t1}
        if not self.reliable:
            self.timers["A"] = now + self._a

    def on_response(self, response: SipResponse, now: float) -> bool:
        status = response.status
        if self.state in ("calling", "proceeding"):
            if status < 200:
                self.state = "proceeding"
                self.timers.pop("A", None)
                return True
            self.final_status = status
            if status < 300:
                self.state = "accepted"
                self.timers = {"M": now + 64 * self.cfg.t1}
                return True
            self._ack = self._build_ack(response).to_bytes()
            self.out.append(self._ack)
            self.state = "completed"
            self.timers = {"D": now + (0.0 if self.reliable else max(32.0, 64 * self.cfg.t1))}
            return True
        if self.state == "completed" and status >= 300 and self._ack is not None:
            self.out.append(self._ack)  # our ACK was lost: resend, don't bother the TU
            return False
        # RFC 6026: 2xx retransmissions (possibly forked) in Accepted go to the TU for its ACK.
        return self.state == "accepted" and 200 <= status < 300

    def _build_ack(self, response: SipResponse) -> SipRequest:
        return sibling_request(self.request, "ACK", response.headers.get("To") or "")

    def on_timer(self, now: float) -> None:
        for name in self._due(now):
            if name == "A" and self.state == "calling":
                self.out.append(self.request_bytes)
                self._a *= 2  # timer A doubles without a T2 cap (§17.1.1.2)
                self.timers["A"] = now + self._a
            elif name == "B" and self.state == "calling" or name == "B" and self.state == "proceeding":
                self.timed_out = True
                self.final_status = 408
                self._terminate()
            elif name in ("D", "M"):
                self._terminate()


def sibling_request(invite: SipRequest, method: str, to: str) -> SipRequest:
    """The ACK of a non-2xx (§17.1.1.3) or the CANCEL (§9.1) of ``invite``: its top Via (same
    branch), Route set, From, Call-ID and CSeq number, with ``method`` and the given To."""
    h = Headers()
    h.add("Via", invite.headers.get_all("Via")[0])
    for route in invite.headers.get_all("Route"):
        h.add("Route", route)
    h.add("Max-Forwards", "70")
    h.add("From", invite.headers.get("From") or "")
    h.add("To", to)
    h.add("Call-ID", invite.call_id)
    h.add("CSeq", f"{invite.cseq.seq} {method}")
    return SipRequest(headers=h, method=method, uri=invite.uri)
