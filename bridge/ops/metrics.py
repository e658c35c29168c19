"""Prometheus metrics (README "Metrics"): what the bridge is doing, read at scrape time.

Almost everything is read from live state when Prometheus scrapes (``LiveCollector``), so the
media tick does no extra work for it; only the tick duration and lateness histograms are
observed per tick (two cheap ``observe`` calls) and SIP messages are counted as they pass the
transport. Label sets are bounded: SIP methods are a fixed list plus ``other``, response codes
a fixed list or their class (``4xx``), and nothing carries a conference or participant id.
Per-participant quality (loss, jitter, concealment, level) is therefore exposed as gauge
histograms across the participants on the bridge now plus the worst value, never one series
per participant (the REST participant listing has the per-person view).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from ..control.events import DomainEvent, ParticipantJoined, ParticipantLeft
from ..control.model import Conference

log = logging.getLogger("bridge.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SIP_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "PRACK", "REGISTER", "SUBSCRIBE",
    "NOTIFY", "REFER", "MESSAGE", "PUBLISH",
})
# Codes worth their own series (what this bridge sends or a caller commonly answers); others by class.
SIP_CODES = frozenset({
    100, 180, 183, 200, 400, 401, 403, 404, 405, 407, 408, 415, 420, 480, 481, 483, 486, 487, 488, 491,
    500, 501, 503, 505,
})
TICK_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
LATENESS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5)
LOSS_BUCKETS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
JITTER_MS_BUCKETS = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
CONCEALED_BUCKETS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
LEVEL_BUCKETS = (-70.0, -60.0, -50.0, -40.0, -30.0, -20.0, -10.0)
DROP_REASONS = ("malformed", "unknown_pt", "foreign", "late", "duplicate", "overflow", "rtcp_malformed",
                "rtcp_foreign")
_CSEQ = re.compile(rb"^cseq[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)", re.IGNORECASE | re.MULTILINE)


def sip_labels(data: bytes) -> tuple[str, str, str | None] | None:
    """("request"|"response", method, code label or None) from a SIP message's start line;
    None for keep-alives and anything that is not SIP at all."""
    end = data.find(b"\n", 0, 512)
    first = data[: end if end >= 0 else 512].strip()
    if not first:
        return None
    if first.startswith(b"SIP/2.0 "):
        code_text = first[8:11]
        if not code_text.isdigit():
            return None
        code = int(code_text)
        label = str(code) if code in SIP_CODES else (f"{code // 100}xx" if 100 <= code < 700 else "other")
        match = _CSEQ.search(data)
        method = match.group(1).decode("ascii").upper() if match else "other"
        return "response", method if method in SIP_METHODS else "other", label
    head = first.split(b" ", 1)[0].decode("ascii", "replace").upper()
    return "request", head if head in SIP_METHODS else "other", None


class SipCounter:
    """Counts SIP messages as the transport moves them (the transport's ``observer``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("tutti_sip_requests", "SIP requests by direction and method",
                                ["direction", "method"], registry=registry)
        self.responses = Counter("tutti_sip_responses", "SIP responses by direction, CSeq method and code",
                                 ["direction", "method", "code"], registry=registry)
        self._children: dict[tuple[str, str, str, str | None], Any] = {}

    def received(self, data: bytes) -> None:
        self._count("in", data)

    def sent(self, data: bytes) -> None:
        self._count("out", data)

    def _count(self, direction: str, data: bytes) -> None:
        labels = sip_labels(data)
        if labels is None:
            return
        kind, method, code = labels
        key = (direction, kind, method, code)
        child = self._children.get(key)
        if child is None:
            child = (self.requests.labels(direction, method) if code is None
                     else self.responses.labels(direction, method, code))
            self._children[key] = child
        child.inc()


@dataclass
class RtpTotals:
    """RTP counters of legs that have ended, so that the totals never go down."""

    values: dict[str, float] = field(default_factory=dict)

    def add(self, stats: Mapping[str, Any]) -> None:
        for key, value in rtp_counts(stats).items():
            self.values[key] = self.values.get(key, 0.0) + value


def rtp_counts(stats: Mapping[str, Any]) -> dict[str, float]:
    """The counters of one ``RtpSession.stats()`` the totals add up."""
    jb = stats.get("jitter_buffer") or {}
    return {
        "received": stats["packets_received"], "sent": stats["packets_sent"],
        # RFC 3550 cumulative loss goes negative when duplicates outnumber losses.
        "lost": max(0, stats["cumulative_lost"]), "concealed": jb.get("concealed", 0),
        "malformed": stats["malformed"], "unknown_pt": stats["unknown_pt"], "foreign": stats["foreign"],
        "late": jb.get("late", 0), "duplicate": jb.get("duplicates", 0), "overflow": jb.get("dropped", 0),
        "rtcp_malformed": stats["rtcp_malformed"], "rtcp_foreign": stats["rtcp_foreign"],
    }


@dataclass
class Sources:
    """Where the collector reads live state; every callable is cheap and runs on the loop."""

    legs: Callable[[], Iterable[Any]]                  # live call legs (bridge.call.leg.Leg)
    rooms: Callable[[], Mapping[str, Any]]             # live rooms (bridge.call.live.LiveConference)
    conferences: Callable[[], Iterable[Conference]]    # every known conference, statuses current
    clock: Any = None                                  # bridge.adapters.media_clock.MediaClock
    now: Callable[[], float] = lambda: 0.0             # the loop's time
    webhooks: Callable[[], Mapping[str, int]] = dict
    sip_internal_errors: Callable[[], int] = lambda: 0
    leg_faults: Callable[[], int] = lambda: 0
    security: Callable[[], Mapping[str, Any]] = dict    # see security_families
    # The RTP IO worker's datagram counters and ``up`` (1, or 0 once IO fell back in process);
    # None when rtp.io_worker has IO in process from the start.
    rtp_worker: Callable[[], Mapping[str, int] | None] = lambda: None


def _call_state(leg: Any) -> str:
    if leg.answer_due is not None:
        return "ringing"
    if leg.in_room:
        return "in_room"
    if leg.in_lobby:
        return "lobby"
    return "setup"


def _participant_state(leg: Any) -> str | None:
    p = leg.participant
    if leg.in_lobby:
        return "lobby"
    if not leg.in_room:
        return None
    if p.on_hold:
        return "held"
    return "waiting" if p.waiting else "connected"


def _histogram(name: str, doc: str, values: list[float], bounds: tuple[float, ...]) -> GaugeHistogramMetricFamily:
    buckets = [(repr(b), float(sum(1 for v in values if v <= b))) for b in bounds]
    buckets.append(("+Inf", float(len(values))))
    return GaugeHistogramMetricFamily(name, doc, buckets=buckets, gsum_value=float(sum(values)))


class LiveCollector(Collector):
    def __init__(self, sources: Sources, retired: RtpTotals, events: "EventCounts") -> None:
        self.sources = sources
        self.retired = retired
        self.events = events

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception:   # a scrape must never take the loop down; the next one may work
            log.exception("metrics collection failed")

    def _collect(self) -> Iterator[Metric]:
        src = self.sources
        legs = list(src.legs())
        calls = {s: 0 for s in ("ringing", "setup", "lobby", "in_room")}
        people = {s: 0 for s in ("lobby", "waiting", "connected", "held")}
        muted = 0
        totals = dict(self.retired.values)
        loss: list[float] = []
        jitter: list[float] = []
        concealed: list[float] = []
        for leg in legs:
            calls[_call_state(leg)] += 1
            state = _participant_state(leg)
            if state is not None:
                people[state] += 1
                muted += bool(leg.in_room and leg.participant.muted)
            if leg.session is None:
                continue
            stats = leg.session.stats()
            counts = rtp_counts(stats)
            for key, value in counts.items():
                totals[key] = totals.get(key, 0.0) + value
            if stats["packets_received"]:
                loss.append(float(stats["fraction_lost"]))
                jitter.append(float(stats["jitter_ms"]))
                played = counts["concealed"] + (stats.get("jitter_buffer") or {}).get("received", 0)
                concealed.append(counts["concealed"] / played if played else 0.0)
        levels = [float(s.level_dbov) for live in src.rooms().values() for s in live.room.participants_snapshot()]

        yield _gauge("tutti_calls", "SIP call legs by state", "state", calls)
        yield _gauge("tutti_participants", "Participants by state (lobby: in the PIN/code IVR)", "state", people)
        yield GaugeMetricFamily("tutti_participants_muted", "Participants in a room who are muted", value=muted)
        yield GaugeMetricFamily("tutti_rooms_live", "Conferences with someone in them", value=len(src.rooms()))
        confs = GaugeMetricFamily("tutti_conferences", "Known conferences by source and status",
                                  labels=["source", "status"])
        by: dict[tuple[str, str], int] = {}
        for conf in src.conferences():
            pair = (str(conf.source), str(conf.status))
            by[pair] = by.get(pair, 0) + 1
        for (source, status), n in sorted(by.items()):
            confs.add_metric([source, status], n)
        yield confs
        yield from self.events.families()

        yield CounterMetricFamily("tutti_rtp_packets_received", "RTP packets received and accepted",
                                  value=totals.get("received", 0))
        yield CounterMetricFamily("tutti_rtp_packets_sent", "RTP packets sent", value=totals.get("sent", 0))
        yield CounterMetricFamily("tutti_rtp_packets_lost", "RTP packets lost on the way in (RFC 3550)",
                                  value=totals.get("lost", 0))
        yield CounterMetricFamily("tutti_rtp_concealed_frames", "Frames concealed for missing input",
                                  value=totals.get("concealed", 0))
        dropped = CounterMetricFamily("tutti_rtp_dropped_packets", "RTP/RTCP packets dropped, by reason",
                                      labels=["reason"])
        for reason in DROP_REASONS:
            dropped.add_metric([reason], totals.get(reason, 0))
        yield dropped

        yield _histogram("tutti_participant_receive_loss_ratio",
                         "Participants by fraction of packets lost in the last RTCP interval", loss, LOSS_BUCKETS)
        yield _histogram("tutti_participant_jitter_ms", "Participants by interarrival jitter (ms)",
                         jitter, JITTER_MS_BUCKETS)
        yield _histogram("tutti_participant_concealed_ratio", "Participants by share of frames concealed",
                         concealed, CONCEALED_BUCKETS)
        yield _histogram("tutti_participant_level_dbov", "Participants in rooms by input level (dBov)",
                         levels, LEVEL_BUCKETS)
        worst = GaugeMetricFamily("tutti_participant_worst", "The worst participant's value now",
                                  labels=["quantity"])
        worst.add_metric(["receive_loss_ratio"], max(loss, default=0.0))
        worst.add_metric(["jitter_ms"], max(jitter, default=0.0))
        worst.add_metric(["concealed_ratio"], max(concealed, default=0.0))
        yield worst

        clock = src.clock
        if clock is not None:
            yield CounterMetricFamily("tutti_media_ticks", "Media clock ticks", value=clock.ticks)
            yield CounterMetricFamily("tutti_media_ticks_late", "Ticks that started over half a period late",
                                      value=clock.late_ticks)
            yield CounterMetricFamily("tutti_media_ticks_skipped", "Ticks skipped after a stall",
                                      value=clock.skipped_ticks)
            age = src.now() - clock.last_tick if clock.last_tick is not None else 0.0
            yield GaugeMetricFamily("tutti_media_clock_last_tick_age_seconds",
                                    "Seconds since the media clock last ticked", value=max(0.0, age))

        worker = src.rtp_worker()
        if worker is not None:
            yield GaugeMetricFamily("tutti_rtp_worker_up", "1 while the RTP IO worker does the socket calls, "
                                    "0 once they fell back into the bridge process", value=worker.get("up", 0))
            datagrams = CounterMetricFamily("tutti_rtp_worker_datagrams", "RTP datagrams through the IO worker, "
                                            "by what happened", labels=["kind"])
            for kind in ("received", "flood_skipped", "ring_dropped", "sent", "send_errors"):
                datagrams.add_metric([kind], worker.get(kind, 0))
            yield datagrams

        hooks = src.webhooks()
        delivered = CounterMetricFamily("tutti_webhook_deliveries", "Webhook delivery attempts by outcome",
                                        labels=["outcome"])
        for outcome in ("delivered", "retried", "dead"):
            delivered.add_metric([outcome], hooks.get(outcome, 0))
        yield delivered
        queue = GaugeMetricFamily("tutti_webhook_queue", "Webhook deliveries waiting, by state", labels=["state"])
        for state in ("pending", "retrying", "in_flight", "unwritten"):
            queue.add_metric([state], hooks.get(state, 0))
        yield queue
        yield CounterMetricFamily("tutti_webhook_route_errors", "Events that could not be turned into webhooks",
                                  value=hooks.get("route_errors", 0))
        yield CounterMetricFamily("tutti_sip_internal_errors", "SIP messages dropped by an internal error",
                                  value=src.sip_internal_errors())
        yield CounterMetricFamily("tutti_leg_faults", "Calls ended because their input broke something",
                                  value=src.leg_faults())
        yield from security_families(src.security())


def security_families(stats: Mapping[str, Any]) -> Iterator[Metric]:
    """Admission control and abuse limits (README "Security"): ``stats`` holds ``admission``
    (outcome -> count; outcomes are a fixed set of reasons) and plain numbers."""
    outcomes = CounterMetricFamily("tutti_sip_admission", "SIP requests by admission outcome",
                                   labels=["outcome"])
    for outcome, n in sorted(stats.get("admission", {}).items()):
        outcomes.add_metric([outcome], n)
    yield outcomes
    yield CounterMetricFamily("tutti_sip_bans", "Source addresses put on the ban list", value=stats.get("bans", 0))
    yield GaugeMetricFamily("tutti_sip_banned_sources", "Source addresses banned now",
                            value=stats.get("banned", 0))
    yield GaugeMetricFamily("tutti_sip_unconfirmed_dialogs", "Dialogs waiting for their ACK",
                            value=stats.get("unconfirmed", 0))
    yield GaugeMetricFamily("tutti_call_capacity", "Calls in progress before new ones get 503",
                            value=stats.get("max_calls", 0))
    pins = CounterMetricFamily("tutti_pin_failures", "Wrong PINs and what they led to", labels=["outcome"])
    for outcome, n in sorted(stats.get("pin", {}).items()):
        pins.add_metric([outcome], n)
    yield pins
    yield GaugeMetricFamily("tutti_pin_locked_sources", "Caller addresses locked out of a conference now",
                            value=stats.get("pin_locked", 0))
    yield GaugeMetricFamily("tutti_open_files_limit", "The process's open-file limit after raising it",
                            value=stats.get("fd_limit", 0))
    http = stats.get("http", {})
    yield GaugeMetricFamily("tutti_http_connections", "HTTP API connections open now", value=http.get("open", 0))
    yield CounterMetricFamily("tutti_http_connections_accepted", "HTTP API connections accepted",
                              value=http.get("accepted", 0))
    refused = CounterMetricFamily("tutti_http_connections_refused", "HTTP API connections refused (503) by cap",
                                  labels=["cap"])
    refused.add_metric(["total"], http.get("refused_total", 0))
    refused.add_metric(["per_source"], http.get("refused_source", 0))
    yield refused
    timeouts = CounterMetricFamily("tutti_http_timeouts", "HTTP API connections closed for a slow request",
                                   labels=["phase"])
    timeouts.add_metric(["header"], http.get("header_timeout", 0))
    timeouts.add_metric(["body"], http.get("body_timeout", 0))
    yield timeouts


def _gauge(name: str, doc: str, label: str, values: Mapping[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


class EventCounts:
    """A bus subscriber: participants who joined and left (by reason) since the start."""

    def __init__(self) -> None:
        self.joined = 0
        self.left: dict[str, int] = {}

    def on_event(self, event: DomainEvent) -> None:
        if isinstance(event, ParticipantJoined):
            self.joined += 1
        elif isinstance(event, ParticipantLeft):
            self.left[event.reason] = self.left.get(event.reason, 0) + 1

    def families(self) -> Iterator[Metric]:
        yield CounterMetricFamily("tutti_participants_joined", "Participants who joined a room", value=self.joined)
        left = CounterMetricFamily("tutti_participants_left", "Participants who left a room, by reason",
                                   labels=["reason"])
        for reason, n in sorted(self.left.items()):
            left.add_metric([reason], n)
        yield left


class BridgeMetrics:
    """The registry ``/metrics`` renders, the per-tick histograms and the counting hooks."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.tick_seconds = Histogram("tutti_media_tick_seconds", "Duration of one media tick (all rooms)",
                                      buckets=TICK_BUCKETS, registry=self.registry)
        self.tick_lateness = Histogram("tutti_media_tick_lateness_seconds",
                                       "How late each media tick started after its deadline",
                                       buckets=LATENESS_BUCKETS, registry=self.registry)
        # Stays 0 until something records; recorders call ``add_recording_bytes(n)``.
        self.recording_bytes = Counter("tutti_recording_bytes", "Bytes of recordings written",
                                       registry=self.registry)
        self.config_reloads = Counter("tutti_config_reloads", "Configuration reloads by result", ["result"],
                                      registry=self.registry)
        for result in ("applied", "refused"):
            self.config_reloads.labels(result)
        self.sip = SipCounter(self.registry)
        self.retired = RtpTotals()
        self.events = EventCounts()

    def attach(self, sources: Sources) -> None:
        """Start reading live state at scrape time (once the app's parts exist)."""
        self.registry.register(LiveCollector(sources, self.retired, self.events))

    def retire_session(self, session: Any) -> None:
        """A leg's RTP session as its sockets close: keep its counters in the totals."""
        self.retired.add(session.stats())

    def render(self) -> bytes:
        return generate_latest(self.registry)


_current: BridgeMetrics | None = None


def use(metrics: BridgeMetrics) -> None:
    """Make ``metrics`` the one ``add_recording_bytes`` counts into (the app calls this at start)."""
    global _current
    _current = metrics


def add_recording_bytes(n: int) -> None:
    """For the recorder: count ``n`` bytes written to recordings (no-op before the app starts)."""
    if _current is not None and n > 0:
        _current.recording_bytes.inc(n)
