"""A bridge without sockets: the real call core, SIP endpoint, rooms and RTP sessions,
driven by a fake clock, with scripted phones speaking SIP text and RTP packets to it.

Only the outside world is faked: media transports (datagrams handed straight to the
core's RTP handler), prompts (short tagged silence, so the IVR's prompt-finished
events come quickly), the conference directory and the wall clock.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bridge.call.core import CallCore
from bridge.call.ports import Datagram, NoMediaPorts
from bridge.config import parse_config
from bridge.control.events import DomainEvent, EventBus
from bridge.control.model import Conference
from bridge.media.ports import AudioSource, PcmSource
from bridge.rtp.packet import RtpPacket
from bridge.sip import Flow, SipEndpoint, SipResponse, parse_message
from bridge_codecs import make_decoder, make_encoder

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
TICK = 0.02
BRIDGE_HOST = "192.0.2.1"


class TaggedSilence(PcmSource):
    def __init__(self, tag: str, rate: int, seconds: float) -> None:
        super().__init__(np.zeros(int(rate * seconds), dtype=np.int16), rate, loop=seconds == 0)
        self.tag = tag


class FakePrompts:
    """Each prompt lasts 60 ms; music never ends. ``played`` lists prompt names in order."""

    def __init__(self) -> None:
        self.played: list[str] = []

    def prompt(self, names: Sequence[str], rate: int) -> AudioSource:
        self.played.extend(names)
        return TaggedSilence("+".join(names), rate, 0.06)

    def music(self, location: str | None, rate: int) -> AudioSource:
        return PcmSource(np.zeros(rate, dtype=np.int16), rate, loop=True)

    def then(self, first: AudioSource, second: AudioSource) -> AudioSource:
        from bridge.media.playback import PromptSequence
        return PromptSequence([first, second])   # type: ignore[list-item]


class FakePort:
    """What LegPort does, minus the socket: datagrams a phone sent are read as the room pops."""

    def __init__(self, transport: FakeTransport, session: Any) -> None:
        self.transport = transport
        self.session = session
        self.steady_rx = False

    def pop_frame(self) -> Any:
        self.transport.deliver()
        return self.session.jitter.pop()

    def packetize(self, payload: bytes, ticks: int, marker: bool = False) -> bytes:
        datagram: bytes = self.session.packetize(payload, ticks, marker)
        if self.session.remote_addr is not None:
            self.transport.received.append(datagram)
        return datagram


class FakeTransport:
    def __init__(self, port: int, on_rtp: Datagram, on_rtcp: Datagram) -> None:
        self.port = port
        self.on_rtp = on_rtp
        self.on_rtcp = on_rtcp
        self.inbox: list[tuple[bytes, tuple[str, int]]] = []
        self.received: list[bytes] = []
        self.closed = False

    def deliver(self) -> None:
        inbox, self.inbox = self.inbox, []
        for data, addr in inbox:
            self.on_rtp(data, addr)

    def send_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        pass

    def set_srtp(self, keys: Any) -> None:
        self.srtp_keys = keys       # the SRTP itself is tested against real sockets

    def room_port(self, session: Any, steady_rx: bool, srtp: Any = None) -> FakePort:
        self.srtp_keys = srtp
        return FakePort(self, session)

    def close(self) -> None:
        self.closed = True


class FakeMedia:
    def __init__(self, pairs: int = 100) -> None:
        self.free = list(range(40000, 40000 + 2 * pairs, 2))
        self.by_port: dict[int, FakeTransport] = {}

    def open(self, leg_id: str, on_rtp: Datagram, on_rtcp: Datagram) -> FakeTransport:
        if not self.free:
            raise NoMediaPorts("none left")
        port = self.free.pop(0)
        t = self.by_port[port] = FakeTransport(port, on_rtp, on_rtcp)
        return t


class FakeDirectory:
    def __init__(self, part_nodes: tuple[str, ...] = ()) -> None:
        self.confs: dict[str, Conference] = {}
        self.nodes = part_nodes     # cascade.part_nodes, or what a cluster registry would list

    def add(self, conf_id: str, **settings: Any) -> Conference:
        conf = Conference(id=conf_id, account_id="acct", name=conf_id, dial_in_code=settings.pop("code", "1234"),
                          created_at=T0, rate=8000, comfort_noise=False, **settings)
        self.confs[conf_id] = conf
        return conf

    def resolve_dial(self, user: str) -> Conference | None:
        for conf in self.confs.values():
            if user in (conf.id, conf.dial_in_code):
                return conf
        return None

    def redirect(self, conf_id: str, user: str) -> str | None:
        return None

    def part_nodes(self) -> tuple[str, ...]:
        return self.nodes


class Phone:
    """One caller: SIP over a fake UDP flow, PCMU RTP with RFC 4733 key presses."""

    def __init__(self, bridge: Bridge, n: int) -> None:
        self.bridge = bridge
        self.n = n
        self.addr = (f"10.0.0.{n}", 5060)
        self.rtp_addr = (f"10.0.0.{n}", 30000 + 2 * n)
        self.call_id = f"call-{n}"
        self.tag = f"ft{n}"
        self.to_tag: str | None = None
        self.cseq = 1
        self.responses: list[SipResponse] = []
        self.requests: list[Any] = []         # requests from the bridge (BYE)
        self.transport: FakeTransport | None = None
        self.seq = random.Random(n).randrange(1000)
        self.ts = 0
        self.ssrc = 0x1000 + n
        self.encoder = make_encoder("PCMU")
        self.room = ""

    def hears(self, freq: float) -> bool:
        """The tone is in what the bridge sent this phone (its last 200 ms), well above the rest."""
        assert self.transport is not None
        decoder = make_decoder("PCMU")
        frames = [RtpPacket.parse(d) for d in self.transport.received[-10:]]
        pcm = np.concatenate([decoder.decode(f.payload) for f in frames if f.payload_type == 0])
        spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
        bin_ = int(round(freq * len(pcm) / 8000))
        return bool(spectrum[bin_ - 2:bin_ + 3].max() > 10 * (np.median(spectrum) + 1))

    def sdp(self, direction: str = "sendrecv") -> bytes:
        host, port = self.rtp_addr
        return (f"v=0\r\no=- {self.n} 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
                f"a=fmtp:101 0-15\r\na={direction}\r\n").encode()

    def _request(self, method: str, body: bytes = b"", ctype: str = "application/sdp",
                 cseq_method: str | None = None) -> bytes:
        to = f"<sip:{self.room}@{BRIDGE_HOST}>" + (f";tag={self.to_tag}" if self.to_tag else "")
        head = (f"{method} sip:{self.room}@{BRIDGE_HOST} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.addr[0]}:{self.addr[1]};branch=z9hG4bK{self.n}x{self.cseq}{method}\r\n"
                "Max-Forwards: 70\r\n"
                f"From: \"Caller {self.n}\" <sip:+1555000{self.n:04d}@{self.addr[0]}>;tag={self.tag}\r\n"
                f"To: {to}\r\nCall-ID: {self.call_id}\r\nCSeq: {self.cseq} {cseq_method or method}\r\n"
                f"Contact: <sip:caller@{self.addr[0]}:{self.addr[1]}>\r\n"
                + (f"Content-Type: {ctype}\r\n" if body else "")
                + f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode() + body

    def send(self, data: bytes) -> None:
        self.bridge.endpoint.receive(data, Flow("udp", self.addr), self.bridge.now)
        self.bridge.core.handle_sip_events(self.bridge.now)
        self.bridge.route_sip()

    def dial(self, room: str) -> None:
        self.room = room
        self.send(self._request("INVITE", self.sdp()))

    def last_status(self) -> int:
        finals = [r.status for r in self.responses if r.status >= 200]
        return finals[-1] if finals else 0

    def ack(self) -> None:
        ok = next(r for r in self.responses if r.status == 200)
        self.to_tag = ok.headers.get("to").split("tag=")[1].split(";")[0]   # type: ignore[union-attr]
        self.send(self._request("ACK", cseq_method="ACK"))
        self.transport = self.bridge.media.by_port[self._answer_port(ok)]

    @staticmethod
    def _answer_port(ok: SipResponse) -> int:
        return Phone._answer_port_of(ok)

    @staticmethod
    def _answer_port_of(message: Any) -> int:
        """The RTP port in a message's SDP (our answer, or our offer when we call out)."""
        line = next(x for x in message.body.decode().splitlines() if x.startswith("m=audio"))
        return int(line.split()[1])

    def call(self, room: str) -> None:
        """Dial, get answered, ACK."""
        self.dial(room)
        assert self.last_status() == 200, self.responses
        self.ack()

    def bye(self) -> None:
        self.cseq += 1
        self.send(self._request("BYE", cseq_method="BYE"))

    def reinvite(self, direction: str) -> None:
        self.cseq += 1
        self.send(self._request("INVITE", self.sdp(direction)))
        self.send(self._request("ACK", cseq_method="ACK"))

    def _rtp(self, pt: int, payload: bytes, marker: bool = False, ts: int | None = None) -> None:
        assert self.transport is not None
        self.seq = (self.seq + 1) & 0xFFFF
        pkt = RtpPacket(payload_type=pt, sequence=self.seq, timestamp=self.ts if ts is None else ts,
                        ssrc=self.ssrc, payload=payload, marker=marker)
        self.transport.inbox.append((pkt.serialize(), self.rtp_addr))

    def speak(self, freq: float | None) -> None:
        """Queue one 20 ms PCMU frame: a loud tone, or silence."""
        t = (np.arange(160) + self.ts) / 8000
        pcm = (np.sin(2 * np.pi * freq * t) * 12000).astype(np.int16) if freq else np.zeros(160, np.int16)
        self._rtp(0, self.encoder.encode(pcm))
        self.ts += 160

    def press(self, digit: str) -> None:
        """An RFC 4733 key press: three packets, the last two with the end bit."""
        code = "0123456789*#".index(digit)
        start = self.ts
        for i, end in enumerate((False, True, True)):
            payload = bytes([code, 0x80 | 10 if end else 10]) + (160 * (i + 1)).to_bytes(2, "big")
            self._rtp(101, payload, marker=i == 0, ts=start)
        self.ts += 480


class Bridge:
    def __init__(self, tmp: Path, **config: Any) -> None:
        cfg = {"data_dir": str(tmp), "sip": {"advertise_host": BRIDGE_HOST}, **config}
        self.config = parse_config(cfg)
        self.endpoint = SipEndpoint(contact_host=BRIDGE_HOST, contact_port=5060, rng=random.Random(7))
        self.directory = FakeDirectory(self.config.cascade.part_nodes)
        self.media = FakeMedia()
        self.prompts = FakePrompts()
        self.now = 0.0
        self.bus = EventBus(self.wall)
        self.events: list[DomainEvent] = []
        self.bus.subscribe("test", self.events.append)
        self.core = CallCore(self.config, self.endpoint, self.directory, self.media, self.prompts, self.bus,
                             self.wall)
        self.phones: dict[tuple[str, int], Phone] = {}

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.now)

    def phone(self) -> Phone:
        p = Phone(self, len(self.phones) + 1)
        self.phones[p.addr] = p
        return p

    def route_sip(self) -> None:
        for out in self.endpoint.messages_to_send():
            phone = self.phones[out.flow.remote]
            msg = parse_message(out.data)
            if isinstance(msg, SipResponse):
                phone.responses.append(msg)
            elif hasattr(phone, "on_request"):
                phone.on_request(msg)       # a scripted trunk answers for itself
            else:
                phone.requests.append(msg)
                if msg.method == "BYE":     # the phone answers the bridge's BYE
                    resp = (f"SIP/2.0 200 OK\r\nVia: {msg.headers.get('via')}\r\n"
                            f"From: {msg.headers.get('from')}\r\nTo: {msg.headers.get('to')}\r\n"
                            f"Call-ID: {msg.headers.get('call-id')}\r\nCSeq: {msg.headers.get('cseq')}\r\n"
                            "Content-Length: 0\r\n\r\n").encode()
                    self.endpoint.receive(resp, out.flow, self.now)
                    self.core.handle_sip_events(self.now)

    def run(self, seconds: float, speak: dict[Phone, float | None] | None = None) -> None:
        """Advance the clock tick by tick; each phone in ``speak`` sends a frame per tick."""
        for _ in range(round(seconds / TICK)):
            self.now = round(self.now + TICK, 6)
            for phone, freq in (speak or {}).items():
                phone.speak(freq)
            self.core.tick(self.now)
            for t in self.media.by_port.values():
                t.deliver()
            self.core.after_tick(self.now)
            if round(self.now * 50) % 50 == 0:
                self.core.housekeeping(self.now)
            while (due := self.endpoint.get_timer()) is not None and due <= self.now:
                self.endpoint.handle_timer(due)
            self.core.handle_sip_events(self.now)
            self.route_sip()
            self.bus.drain()

    def names(self, conf_id: str | None = None) -> list[str]:
        return [e.name for e in self.events if conf_id is None or e.conference_id == conf_id]

    def settings(self, conf_id: str, **changes: Any) -> None:
        conf = dataclasses.replace(self.directory.confs[conf_id], **changes)
        self.directory.confs[conf_id] = conf
        self.core.conference_changed(conf)
