"""Admission control in front of the SIP endpoint (README "Security"): who may send us what, how fast.

Pure: every decision takes ``now`` and the source address, so the unit tests drive it with a fake
clock. The adapter asks ``SipGate.screen`` about every message before the endpoint sees it, so a
refused INVITE never reaches the call core and never costs an RTP port pair.

- Token buckets per source address and request class (INVITE, REGISTER, OPTIONS, everything else),
  the shape of Kamailio's ``pike`` but exact per address instead of a tree.
- Dialogs not yet confirmed by ACK are counted per source and in total: an INVITE that is never
  ACKed counts until the ACK (or CANCEL/BYE) arrives or ``unconfirmed_hold_s`` passes, which is
  how long the endpoint keeps retransmitting its 2xx before it gives up and hangs up.
- Over a limit the answer is 503 with Retry-After; a source refused ``ban_after`` times within
  ``ban_window_s`` is banned for ``ban_s``, and a banned source or a known scanner User-Agent gets
  silence (an answer only tells a scanner that something is listening).
- Trusted proxies (a Kamailio in front) are exempt: they carry many callers' traffic from one address.
- Call capacity: new INVITEs beyond ``max_calls`` calls in progress get 503 (sized from the fd limit).
- ACKs are never rate-limited (they are what confirms a call) but a banned source's are dropped too.
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from .flow import Flow, Outgoing, response_flow, stamp_via
from .message import SipParseError, SipRequest, SipResponse, parse_message
from .responses import build_response

# Lower-case User-Agent fragments of SIP scanners and toll-fraud tools (the stock kamailio.cfg list).
SCANNER_AGENTS = ("friendly-scanner", "friendly-request", "sipcli", "sipvicious", "sip-scan", "sipsak-scan",
                  "iwar", "sivus", "vaxsipuseragent", "vaxipuseragent", "pplsip", "sundayddr", "smap",
                  "siparmyknife", "sipv")
RequestClass = Literal["invite", "register", "options", "other"]
# Sources whose buckets are full are forgotten once the table holds this many (bounded memory).
_PRUNE_AT = 4096


@dataclass(frozen=True)
class AdmissionLimits:
    invite_rate: float = 5.0
    invite_burst: float = 10.0
    register_rate: float = 5.0
    register_burst: float = 10.0
    options_rate: float = 5.0
    options_burst: float = 10.0
    other_rate: float = 50.0
    other_burst: float = 100.0
    max_unconfirmed_per_source: int = 5
    max_unconfirmed: int = 100
    unconfirmed_hold_s: float = 8.0
    ban_after: int = 50
    ban_window_s: float = 10.0
    ban_s: float = 300.0
    retry_after_s: int = 5
    drop_scanners: bool = True
    trusted_proxies: tuple[str, ...] = ()
    max_calls: int = 0              # 0: no cap


@dataclass
class _Bucket:
    tokens: float
    stamp: float

    def take(self, rate: float, burst: float, now: float) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate if rate > 0 else math.inf


@dataclass
class _Source:
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    unconfirmed: int = 0
    refusals: deque[float] = field(default_factory=deque)


@dataclass(frozen=True)
class Admit:
    pass


@dataclass(frozen=True)
class Refuse:
    reason: str
    retry_after: int


@dataclass(frozen=True)
class Drop:
    reason: str


Verdict = Admit | Refuse | Drop
ADMIT = Admit()


def request_class(method: str) -> RequestClass:
    m = method.upper()
    return "invite" if m == "INVITE" else "register" if m == "REGISTER" else "options" if m == "OPTIONS" else "other"


def is_scanner(user_agent: str | None) -> bool:
    ua = (user_agent or "").lower()
    return any(s in ua for s in SCANNER_AGENTS)


class Admission:
    """The limits and their state. Counters (``counts``) only go up; gauges are properties."""

    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self._trusted = [ipaddress.ip_network(n, strict=False) for n in limits.trusted_proxies]
        self._sources: dict[str, _Source] = {}
        self._bans: dict[str, float] = {}
        self._pending: dict[str, tuple[str, float]] = {}      # Call-ID -> (source, expiry)
        self._expiry: deque[tuple[float, str]] = deque()      # (expiry, Call-ID), in expiry order
        self.counts: dict[str, int] = {}

    # ------------------------------------------------------------------ gauges
    @property
    def unconfirmed(self) -> int:
        return len(self._pending)

    def banned(self, now: float) -> int:
        return sum(1 for until in self._bans.values() if until > now)

    def trusted(self, source: str) -> bool:
        try:
            addr = ipaddress.ip_address(source)
        except ValueError:
            return False
        return any(addr in net for net in self._trusted)

    # ------------------------------------------------------------------ decisions
    def check(self, method: str, source: str, *, call_id: str, initial: bool, user_agent: str | None,
              now: float, calls_in_progress: int = 0) -> Verdict:
        """May a request from ``source`` go on? ``initial``: out of dialog (no To tag)."""
        self._expire(now)
        if self.trusted(source):
            return self._count(ADMIT, "trusted")
        until = self._bans.get(source)
        if until is not None:
            if until > now:
                return self._count(Drop("banned"))
            del self._bans[source]
        if self.limits.drop_scanners and is_scanner(user_agent):
            self._ban(source, now)
            return self._count(Drop("scanner"))
        if method == "ACK":
            self.confirmed(call_id)
            return ADMIT
        src = self._source(source)
        cls = request_class(method)
        rate, burst = self._rate(cls)
        bucket = src.buckets.get(cls)
        if bucket is None:
            bucket = src.buckets[cls] = _Bucket(burst, now)
        wait = bucket.take(rate, burst, now)
        if wait > 0:
            return self._refuse(src, source, "rate_" + cls, wait, now)
        if method in ("CANCEL", "BYE"):
            self.confirmed(call_id)
        if method != "INVITE" or not initial:
            return self._count(ADMIT, "admitted")
        if call_id in self._pending:
            return self._count(ADMIT, "admitted")     # a retransmission, already counted
        lim = self.limits
        if lim.max_calls and calls_in_progress >= lim.max_calls:
            return self._refuse(src, source, "capacity", lim.retry_after_s, now)
        if src.unconfirmed >= lim.max_unconfirmed_per_source:
            return self._refuse(src, source, "unconfirmed_source", lim.retry_after_s, now)
        if len(self._pending) >= lim.max_unconfirmed:
            return self._refuse(src, source, "unconfirmed_total", lim.retry_after_s, now)
        expiry = now + lim.unconfirmed_hold_s
        self._pending[call_id] = (source, expiry)
        self._expiry.append((expiry, call_id))
        src.unconfirmed += 1
        return self._count(ADMIT, "admitted")

    def confirmed(self, call_id: str) -> None:
        """The dialog ``call_id`` no longer waits for an ACK (ACK, CANCEL, BYE or the call ended)."""
        entry = self._pending.pop(call_id, None)
        if entry is not None:
            src = self._sources.get(entry[0])
            if src is not None:
                src.unconfirmed -= 1

    # ------------------------------------------------------------------ internals
    def _rate(self, cls: RequestClass) -> tuple[float, float]:
        lim = self.limits
        return {"invite": (lim.invite_rate, lim.invite_burst), "register": (lim.register_rate, lim.register_burst),
                "options": (lim.options_rate, lim.options_burst)}.get(cls, (lim.other_rate, lim.other_burst))

    def _source(self, source: str) -> _Source:
        src = self._sources.get(source)
        if src is None:
            if len(self._sources) >= _PRUNE_AT:
                self._prune()
            src = self._sources[source] = _Source()
        return src

    def _prune(self) -> None:
        """Forget sources with nothing pending and no recent refusals (their buckets refill anyway)."""
        for key in [k for k, s in self._sources.items() if s.unconfirmed == 0 and not s.refusals]:
            del self._sources[key]

    def _refuse(self, src: _Source, source: str, reason: str, wait: float, now: float) -> Verdict:
        lim = self.limits
        src.refusals.append(now)
        while src.refusals and src.refusals[0] <= now - lim.ban_window_s:
            src.refusals.popleft()
        if len(src.refusals) >= lim.ban_after:
            self._ban(source, now)
            return self._count(Drop("banned"), "refused_" + reason)
        retry = max(1, min(3600, math.ceil(wait))) if math.isfinite(wait) else lim.retry_after_s
        return self._count(Refuse(reason, retry))

    def _ban(self, source: str, now: float) -> None:
        if self._bans.get(source, 0.0) <= now:
            self.counts["bans"] = self.counts.get("bans", 0) + 1
        self._bans[source] = now + self.limits.ban_s
        src = self._sources.get(source)
        if src is not None:
            src.refusals.clear()

    def _expire(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            expiry, call_id = self._expiry.popleft()
            entry = self._pending.get(call_id)
            if entry is not None and entry[1] == expiry:
                self.counts["unconfirmed_expired"] = self.counts.get("unconfirmed_expired", 0) + 1
                self.confirmed(call_id)
        if len(self._bans) > _PRUNE_AT:
            for key in [k for k, until in self._bans.items() if until <= now]:
                del self._bans[key]

    def _count(self, verdict: Verdict, key: str | None = None) -> Verdict:
        if key is None:
            key = ("refused_" + verdict.reason if isinstance(verdict, Refuse)
                   else "dropped_" + verdict.reason if isinstance(verdict, Drop) else "admitted")
        self.counts[key] = self.counts.get(key, 0) + 1
        return verdict


class SipGate:
    """Admission at the SIP boundary: bytes and their source in, what to do with them out."""

    def __init__(self, admission: Admission, *, user_agent: str, contact_uri: str) -> None:
        self.admission = admission
        self.user_agent = user_agent
        self.contact_uri = contact_uri

    def screen(self, data: bytes, flow: Flow, now: float, calls_in_progress: int = 0) -> Verdict | Outgoing:
        """ADMIT: hand the message to the endpoint; Drop: ignore it; an Outgoing: send that
        (a stateless 503 with Retry-After) instead. Responses and keep-alives always pass, and so
        does what does not parse: the endpoint answers that with its 400."""
        if not data.strip(b"\r\n\t ") or data.startswith(b"SIP/2.0 "):
            return ADMIT
        try:
            msg = parse_message(data)
        except SipParseError:
            return ADMIT
        if isinstance(msg, SipResponse):
            return ADMIT
        return self._decide(msg, flow, now, calls_in_progress)

    def _decide(self, req: SipRequest, flow: Flow, now: float, calls_in_progress: int) -> Verdict | Outgoing:
        verdict = self.admission.check(
            req.method, flow.remote[0], call_id=req.call_id, initial=req.to.tag is None,
            user_agent=req.headers.get("User-Agent"), now=now, calls_in_progress=calls_in_progress)
        if not isinstance(verdict, Refuse):
            return verdict
        if req.method == "ACK":
            return Drop(verdict.reason)
        via = req.top_via
        stamp_via(req.headers, via, flow)
        data = build_response(req, 503, "Service Unavailable", to_tag="adm" + req.call_id[:8] if req.to.tag is None
                              else None, contact_uri=self.contact_uri, supported=frozenset(),
                              user_agent=self.user_agent, headers=[("Retry-After", str(verdict.retry_after))])
        return Outgoing(data, response_flow(via, flow))
