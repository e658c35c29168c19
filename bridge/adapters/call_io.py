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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from datetime import datetime, timezone
from pathlib import Path
from time import perf_counter

from bridge.adapters.rtp_transport import BatchReceiver, LegSockets, PortAllocator, PortRangeExhausted
from bridge.audio_assets import AudioAssets
from bridge.call.callcontrol import CallInfo
from bridge.call.core import CallCore
from bridge.call.dialout import DialOutError
from bridge.call.ports import Datagram, Directory, NoMediaPorts
from bridge.config import Config
from bridge.control.errors import ControlError
from bridge.control.events import EndReason, EventBus
from bridge.control.model import Action, Conference, ParticipantView
from bridge.sip.endpoint import SipEndpoint

log = logging.getLogger("bridge.calls")


class SocketMedia:
    """The core's ``MediaFactory``: an RTP/RTCP socket pair per leg from the port range."""

    def __init__(self, allocator: PortAllocator, receiver: BatchReceiver, loop: asyncio.AbstractEventLoop) -> None:
        self.allocator = allocator
        self.receiver = receiver
        self.loop = loop

    def open(self, leg_id: str, on_rtp: Datagram, on_rtcp: Datagram) -> LegSockets:
        sockets = LegSockets(self.allocator, self.receiver)
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
    ) -> None:
        self.loop = loop
        self.endpoint = endpoint
        self.bus = bus
        self.pump_sip = pump_sip
        self.rtp_receiver = BatchReceiver()   # every leg's RTP, read once per media tick
        self.tick_stats = TickStats()
        self.core = CallCore(
            config, endpoint, directory,
            SocketMedia(allocator, self.rtp_receiver, loop),
            AudioAssets(Path(config.data_dir) / "media-cache", loop),
            bus, wall_clock=lambda: datetime.now(timezone.utc),
        )
        self._drain_scheduled = False

    # ------------------------------------------------------------------ driving the core

    def on_sip_events(self) -> None:
        """The SIP transport's callback: it transmits what the core queued right after."""
        self.core.handle_sip_events(self.loop.time())
        self._schedule_drain()

    def tick(self, now: float) -> None:
        """One media tick. Which legs have RTP queued is asked once; each room reads a leg's
        datagram as it pops that leg's jitter buffer and sends each packet as it builds it;
        what no room read (legs in no room, a second queued datagram) is read last."""
        t0 = perf_counter()
        receiver = self.rtp_receiver
        receiver.mark_ready()
        t1 = perf_counter()
        self.core.tick(now)
        t2 = perf_counter()
        receiver.drain()
        self.tick_stats.add(receive_s=(t1 - t0) + (perf_counter() - t2), rooms_s=t2 - t1)
        self.core.after_tick(now)
        self._after_core()

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

    def dial_out(self, conf: Conference, number: str, name: str, role: str, muted: bool) -> ParticipantView:
        try:
            person = self.core.dial_out(conf, number, name, role, muted, self.loop.time())
        except DialOutError as err:
            raise ControlError(409 if err.code == "dial_out_not_configured" else 503, err.code, str(err)) from None
        self._after_core()
        return person


@dataclass
class TickStats:
    """Where the media ticks' time went (logged every few seconds; read by the benchmarks)."""
    ticks: int = 0
    receive_s: float = 0.0    # asking which sockets have RTP, reading what rooms did not pull
    rooms_s: float = 0.0      # room ticks: pull + jitter pop, decode, mix, encode, packetise, send

    def add(self, receive_s: float, rooms_s: float) -> None:
        self.ticks += 1
        self.receive_s += receive_s
        self.rooms_s += rooms_s

    def summary(self) -> str:
        per_tick = 1e6 / max(1, self.ticks)
        return (f"media ticks: {self.ticks} ticks, per tick receive {self.receive_s * per_tick:.0f} us, "
                f"rooms {self.rooms_s * per_tick:.0f} us")
