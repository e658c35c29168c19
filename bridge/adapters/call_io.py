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
import time
from time import perf_counter

import aiohttp

from bridge.adapters.rtp_transport import (BatchReceiver, LegSockets, PortAllocator, PortRangeExhausted,
                                           RtpReceiver)
from bridge.adapters import rtp_transport
from bridge.adapters.rtp_worker_client import WorkerReceiver, use_worker, worker_stats
from bridge.adapters.media_fetch import MediaFetcher, MediaFetchError
from bridge.audio_assets import AudioAssets
from bridge.call.callcontrol import CallInfo
from bridge.call.conference_playback import ConferencePlayback
from bridge.call.core import CallCore
from bridge.call.dialed_calls import DialedCall, DialedCalls
from bridge.call.dialout import DialOutError
from bridge.call.ports import Datagram, Directory, NoMediaPorts
from bridge.config import Config, TrunkConfig
from bridge.media.playback import DECODE_MAX_SECONDS, decode_file
from bridge.control.errors import ControlError
from bridge.control.events import EndReason, EventBus
from bridge.control.model import Action, Conference, ParticipantView
from bridge.recording.control import RecordingSetup
from bridge.rtp.srtp import SrtpKeys
from bridge.sip.endpoint import SipEndpoint
from bridge.webhooks.routing import telnyx_destination

log = logging.getLogger("bridge.calls")


class _CountedSockets(LegSockets):
    """Remembers the leg's RTP session so that its final counters outlive the leg: the
    metrics' packet totals must never go down when a call ends."""

    def __init__(self, allocator: PortAllocator, receiver: RtpReceiver, on_close: Callable[[Any], None]) -> None:
        super().__init__(allocator, receiver)
        self._on_close = on_close
        self._session: Any = None

    def room_port(self, session: Any, steady_rx: bool, srtp: SrtpKeys | None = None) -> Any:
        self._session = session
        return super().room_port(session, steady_rx, srtp)

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

    def __init__(self, allocator: PortAllocator, receiver: RtpReceiver, loop: asyncio.AbstractEventLoop,
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


def _check_audio(path: Path, max_seconds: float = DECODE_MAX_SECONDS) -> None:
    """Raises unless ``path`` decodes as audio (PyAV) within ``max_seconds``, as the rooms will decode it."""
    if decode_file(str(path), 8000, max_seconds).pcm.size == 0:
        raise ValueError("no audio samples")


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
        # Every leg's RTP, read once per media tick: in the RTP IO worker (rtp.io_worker) or here.
        # (The TUTTI_RTP_RECV benchmark modes read in the event loop, without either.)
        worker = use_worker(config.rtp.io_worker) and rtp_transport.RECV_MODE == "tick"
        self.rtp_receiver: RtpReceiver = WorkerReceiver() if worker else BatchReceiver()
        self.tick_stats = TickStats()
        self.on_tick_seconds = on_tick_seconds
        cap = config.media.decode_max_seconds
        self.fetcher = MediaFetcher(config.media_fetch, Path(config.data_dir) / "media-cache",
                                    lambda path: _check_audio(path, cap))
        self.core = CallCore(
            config, endpoint, directory,
            SocketMedia(allocator, self.rtp_receiver, loop, on_leg_closed),
            AudioAssets(Path(config.data_dir) / "media-cache", loop, self.fetcher, decode_max_seconds=cap),
            bus, wall_clock=lambda: datetime.now(timezone.utc), recording=recording,
        )
        self._drain_scheduled = False
        self.dialed = DialedCalls(bus.publish, time.time)
        self.playback = ConferencePlayback(bus.publish)   # call.* webhooks of POST /v2/calls legs

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

    def close(self) -> None:
        """After the last leg: stop the RTP IO worker (it also exits by itself when we die)."""
        self.rtp_receiver.close()

    def rtp_worker_stats(self) -> dict[str, int] | None:
        return worker_stats(self.rtp_receiver)

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

    def whisper(self, conf_id: str, participant_id: str, targets: list[str] | None) -> bool:
        """Telnyx supervisor ``whisper``: only ``targets`` hear the participant (None: everyone)."""
        live = self.core.rooms.get(conf_id)
        done = live is not None and live.set_whisper(participant_id, targets)
        self._after_core()
        return done

    def whispers(self, conf_id: str) -> dict[str, list[str]]:
        """Who whispers to whom in a live conference (present participants only)."""
        live = self.core.rooms.get(conf_id)
        if live is None:
            return {}
        return {sup: [t for t in heard if t in live.members]
                for sup, heard in live.whispers.items() if sup in live.members}

    def end_conference(self, conf_id: str, reason: EndReason = "ended_via_api") -> None:
        self.core.end_conference(conf_id, reason, self.loop.time())
        self._after_core()

    def conference_changed(self, conf: Conference) -> None:
        self.core.conference_changed(conf)
        self.prefetch_hold_music(conf)
        self._after_core()

    def dial_out(self, conf: Conference, number: str, name: str, role: str, muted: bool,
                 sms_text: str | None = None) -> ParticipantView:
        try:
            person = self.core.dial_out(conf, number, name, role, muted, self.loop.time())
        except DialOutError as err:
            raise ControlError(409 if err.code == "dial_out_not_configured" else 503, err.code, str(err)) from None
        self._watch_dialled(conf, person.participant_id, number)
        self._after_core()
        if sms_text is not None:
            self.loop.create_task(self._send_sms(number, sms_text))
        return person

    def _watch_dialled(self, conf: Conference, pid: str, number: str) -> None:
        """An Audian-API dial-out reports its progress as Telnyx ``call.*`` webhooks to the
        conference's Telnyx-form destination, when it has one (with the conference's client_state)."""
        config = self.core.config
        trunk = config.trunk_for(conf.account_id)
        dest = telnyx_destination(conf, {a.account: a for a in config.webhooks.accounts})
        if dest is None or trunk is None or not config.webhooks.enabled:
            return
        self.dialed.watch(pid, DialedCall(conf.account_id or "", trunk.name, dest.url, dest.failover_url,
                                          conf.client_state, trunk.from_user, number, time.time()))

    def dial_call(self, conf: Conference, number: str, role: str, muted: bool, trunk: TrunkConfig,
                  timeout_s: float, watch: DialedCall | None = None) -> ParticipantView:
        """Telnyx ``POST /v2/calls``: ``number`` dialled into ``conf`` through ``trunk``; ``watch``:
        where its ``call.*`` webhooks go."""
        try:
            person = self.core.dial_out(conf, number, "", role, muted, self.loop.time(), timeout_s, trunk)
        except DialOutError as err:
            raise ControlError(503, err.code, str(err)) from None
        if watch is not None:
            self.dialed.watch(person.participant_id, watch)
        self._after_core()
        return person

    async def play(self, conf_id: str, location: str, media: str, loops: int | None) -> bool:
        """Telnyx ``play``: a URL (fetched under the media-fetch rules) or a file into the whole
        conference, decoded off the media clock; False when nobody is in it."""
        path = await self.fetcher.fetch(location) if location.startswith(("http://", "https://")) else Path(location)
        live = self.core.rooms.get(conf_id)
        if live is None:
            return False
        audio = await self.loop.run_in_executor(None, decode_file, str(path), live.conf.rate)
        live = self.core.rooms.get(conf_id)     # it may have ended while we decoded
        if live is None:
            return False
        self.playback.play(conf_id, live.room, audio, media, loops)
        self._after_core()
        return True

    def stop_playback(self, conf_id: str) -> bool:
        live = self.core.rooms.get(conf_id)
        done = live is not None and self.playback.stop(conf_id, live.room)
        self._after_core()
        return done

    def prefetch_hold_music(self, conf: Conference | None) -> None:
        """Start fetching a new conference's ``hold_audio_url`` now, so its first caller hears it
        rather than the built-in tune (failures are logged; the built-in tune plays instead)."""
        url = conf.hold_music_url if conf is not None else None
        if url and url.startswith(("http://", "https://")) and self.fetcher.cached(url) is None:
            async def fetch() -> None:
                try:
                    await self.fetcher.fetch(url)
                except MediaFetchError as err:
                    log.warning("%s: hold_audio_url not fetched: %s", conf.id if conf else "", err)
            self.loop.create_task(fetch())

    async def fetch_audio(self, url: str) -> None:
        """Download ``url`` into the media cache under the media-fetch rules (MediaFetchError)."""
        await self.fetcher.fetch(url)

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
