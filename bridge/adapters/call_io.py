"""asyncio adapter around the call core: sockets, the clock, SIP transmission, event delivery.

``CallAdapter`` is what the app wires up. It gives the core its media transports (RTP
socket pairs read in one batch per tick), feeds it SIP events, media ticks and REST
calls with the loop's time, transmits the SIP messages the core queued, and drains the
domain events to their subscribers after each tick, off the media path. It is also the
``LiveRooms`` the conference service talks to.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from datetime import datetime, timezone
from pathlib import Path
from time import perf_counter

import aiohttp

from bridge.adapters.rtp_transport import BatchReceiver, LegSockets, PortAllocator, PortRangeExhausted
from bridge.audio_assets import AudioAssets
from bridge.call.callcontrol import CallInfo
from bridge.call.core import CallCore
from bridge.call.dialout import DialOutError
from bridge.call.ports import Datagram, Directory, NoMediaPorts
from bridge.config import Config, TrunkConfig
from bridge.control.errors import ControlError
from bridge.control.events import EndReason, EventBus
from bridge.control.model import Action, Conference, ParticipantView
from bridge.recording.control import RecordingSetup
from bridge.sip.endpoint import SipEndpoint

log = logging.getLogger("bridge.calls")


class _CountedSockets(LegSockets):
    """Remembers the leg's RTP session so that its final counters outlive the leg: the
    metrics' packet totals must never go down when a call ends."""

    def __init__(self, allocator: PortAllocator, receiver: BatchReceiver, on_close: Callable[[Any], None]) -> None:
        super().__init__(allocator, receiver)
        self._on_close = on_close
        self._session: Any = None

    def room_port(self, session: Any, steady_rx: bool) -> Any:
        self._session = session
        return super().room_port(session, steady_rx)

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                self._on_close(session)
            except Exception:   # counting must never keep a socket open
                log.exception("closing leg: counting its RTP totals failed")
        super().close()


class SocketMedia:
    """The core's ``MediaFactory``: an RTP/RTCP socket pair per leg from the port range."""

    def __init__(self, allocator: PortAllocator, receiver: BatchReceiver, loop: asyncio.AbstractEventLoop,
                 on_close: Callable[[Any], None] | None = None) -> None:
        self.allocator = allocator
        self.receiver = receiver
        self.loop = loop
        self.on_close = on_close

    def open(self, leg_id: str, on_rtp: Datagram, on_rtcp: Datagram) -> LegSockets:
        sockets = (LegSockets(self.allocator, self.receiver) if self.on_close is None
                   else _CountedSockets(self.allocator, self.receiver, self.on_close))
        try:
            sockets.bind(self.loop, on_rtp, on_rtcp)
        except PortRangeExhausted as exc:
            raise NoMediaPorts(str(exc)) from exc
        return sockets


class CallAdapter:
    def __init__(
        self,
        config: Config,
        endpoint: SipEndpoint,
        directory: Directory,
        allocator: PortAllocator,
        bus: EventBus,
        loop: asyncio.AbstractEventLoop,
        pump_sip: Callable[[], None],
        *,
        on_leg_closed: Callable[[Any], None] | None = None,
        on_tick_seconds: Callable[[float], None] | None = None,
        recording: RecordingSetup | None = None,
    ) -> None:
        """``on_leg_closed(session)``: a leg's RTP session as its sockets close (metrics totals);
        ``on_tick_seconds(s)``: each media tick's duration (the metrics' histogram)."""
        self.loop = loop
        self.endpoint = endpoint
        self.bus = bus
        self.pump_sip = pump_sip
        self.rtp_receiver = BatchReceiver()   # every leg's RTP, read once per media tick
        self.tick_stats = TickStats()
        self.on_tick_seconds = on_tick_seconds
        self.core = CallCore(
            config, endpoint, directory,
            SocketMedia(allocator, self.rtp_receiver, loop, on_leg_closed),
            AudioAssets(Path(config.data_dir) / "media-cache", loop),
            bus, wall_clock=lambda: datetime.now(timezone.utc), recording=recording,
        )
        self._drain_scheduled = False

    # ------------------------------------------------------------------ driving the core

    def on_sip_events(self) -> None:
        """The SIP transport's callback: it transmits what the core queued right after."""
        self.core.handle_sip_events(self.loop.time())
        self._schedule_drain()

    def tick(self, now: float) -> None:
        """One media tick. What arrived is read first (one ``epoll_wait``; legs in a receive
        lane get theirs queued for the lane), the rooms tick without touching a socket, what
        they queued is sent, and what arrived meanwhile is read last."""
        t0 = perf_counter()
        receiver = self.rtp_receiver
        receiver.receive()
        t1 = perf_counter()
        self.core.tick(now)
        t2 = perf_counter()
        receiver.transmit()
        receiver.drain()
        self.tick_stats.add(receive_s=(t1 - t0) + (perf_counter() - t2), rooms_s=t2 - t1)
        self.core.after_tick(now)
        self._after_core()
        if self.on_tick_seconds is not None:
            self.on_tick_seconds(perf_counter() - t0)

    def housekeeping(self, now: float) -> None:
        self.core.housekeeping(now)
        self._after_core()

    def hangup_all(self) -> None:
        self.core.hangup_all(self.loop.time())
        self._after_core()

    def _after_core(self) -> None:
        if self.endpoint.has_output():
            self.pump_sip()
        self._schedule_drain()

    def after_control(self) -> None:
        """A control path (browser signalling) changed the core: send SIP, deliver events."""
        self._after_core()

    def _schedule_drain(self) -> None:
        # Subscribers run in their own loop callback, never inside the media tick.
        if self.bus.pending and not self._drain_scheduled:
            self._drain_scheduled = True
            self.loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        self.bus.drain()

    @property
    def calls(self) -> int:
        return len(self.core.legs_by_call)

    # ------------------------------------------------------------------ Telnyx call control (REST)

    def call_command(self, command: str, ccid: str, account: str, **args: Any) -> None:
        """``answer``, ``hangup`` or ``join`` a call under call control (CallControlError if not)."""
        self.core.now = self.loop.time()
        try:
            parked = self.core.parked
            if command == "answer":
                parked.answer(ccid, account, **args)
            elif command == "hangup":
                parked.hangup(ccid, account, **args)
            elif command == "join":
                parked.join(ccid, account, **args)
            else:
                raise ValueError(f"unknown call command {command!r}")
        finally:
            self._after_core()

    def call_info(self, ccid: str, account: str) -> CallInfo:
        return self.core.parked.info(ccid, account)

    # ------------------------------------------------------------------ LiveRooms (REST)

    def participants(self, conf_id: str) -> list[ParticipantView]:
        return self.core.participants(conf_id)

    def act(self, conf_id: str, participant_id: str, action: Action) -> bool:
        done = self.core.act(conf_id, participant_id, action, self.loop.time())
        self._after_core()
        return done

    def hold(self, conf_id: str, participant_id: str, on_hold: bool, music: str | None = None) -> bool:
        done = self.core.act(conf_id, participant_id, "hold" if on_hold else "unhold", self.loop.time(), music)
        self._after_core()
        return done

    def end_conference(self, conf_id: str, reason: EndReason = "ended_via_api") -> None:
        self.core.end_conference(conf_id, reason, self.loop.time())
        self._after_core()

    def conference_changed(self, conf: Conference) -> None:
        self.core.conference_changed(conf)
        self._after_core()

    def dial_out(self, conf: Conference, number: str, name: str, role: str, muted: bool,
                 sms_text: str | None = None) -> ParticipantView:
        try:
            person = self.core.dial_out(conf, number, name, role, muted, self.loop.time())
        except DialOutError as err:
            raise ControlError(409 if err.code == "dial_out_not_configured" else 503, err.code, str(err)) from None
        self._after_core()
        if sms_text is not None:
            self.loop.create_task(self._send_sms(number, sms_text))
        return person

    def dial_call(self, conf: Conference, number: str, role: str, muted: bool, trunk: TrunkConfig,
                  timeout_s: float) -> ParticipantView:
        """Telnyx ``POST /v2/calls``: ``number`` dialled into ``conf`` through ``trunk``."""
        try:
            person = self.core.dial_out(conf, number, "", role, muted, self.loop.time(), timeout_s, trunk)
        except DialOutError as err:
            raise ControlError(503, err.code, str(err)) from None
        self._after_core()
        return person

    async def _send_sms(self, number: str, text: str) -> None:
        """POST the PIN text to the configured SMS gateway (never logged: it holds a PIN)."""
        cfg = self.core.config.dial_out
        assert cfg.sms_gateway_url is not None
        token = os.environ.get(cfg.sms_gateway_token_env, "") if cfg.sms_gateway_token_env else ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                async with session.post(cfg.sms_gateway_url, json={"to": number, "text": text},
                                        headers=headers, allow_redirects=False) as resp:
                    status = resp.status
            level = logging.INFO if status < 300 else logging.WARNING
            log.log(level, "PIN SMS to %s: the gateway answered %d", number, status)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
            log.warning("PIN SMS to %s failed: %s", number, type(err).__name__)


@dataclass
class TickStats:
    """Where the media ticks' time went (logged every few seconds; read by the benchmarks)."""
    ticks: int = 0
    receive_s: float = 0.0    # socket IO: reading before the rooms, sending and reading after them
    rooms_s: float = 0.0      # room ticks (no IO): jitter pop, decode, mix, encode, packetise

    def add(self, receive_s: float, rooms_s: float) -> None:
        self.ticks += 1
        self.receive_s += receive_s
        self.rooms_s += rooms_s

    def summary(self) -> str:
        per_tick = 1e6 / max(1, self.ticks)
        return (f"media ticks: {self.ticks} ticks, per tick socket IO {self.receive_s * per_tick:.0f} us, "
                f"rooms {self.rooms_s * per_tick:.0f} us")
