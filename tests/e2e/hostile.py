"""A hostile peer for the end-to-end tests: raw SIP and RTP from plain UDP sockets.

This is the attacker, not a client under test: it sends exactly the bytes the tests want
(offers no real client would make, RTP sprayed over a port range) and records what comes back.
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from dataclasses import dataclass, field

import numpy as np
from bridge_codecs import make_encoder

from tests.e2e.peers.rtp_pcap import RtpPacket


def invite(bridge_port: int, local_port: int, sdp: str, room: str = "room1") -> tuple[bytes, str]:
    """An INVITE with ``sdp`` (bytes, Call-ID)."""
    call_id = secrets.token_hex(8)
    body = sdp.replace("\n", "\r\n").encode()
    head = (
        f"INVITE sip:{room}@127.0.0.1:{bridge_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
        f"From: <sip:mallory@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{room}@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:mallory@127.0.0.1:{local_port}>\r\n"
        f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body, call_id


def offer(port: int, pt: str = "0", rtpmap: str = "a=rtpmap:0 PCMU/8000", host: str = "127.0.0.1") -> str:
    return (f"v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 {host}\nt=0 0\n"
            f"m=audio {port} RTP/AVP {pt}\n{rtpmap}\na=sendrecv\n")


def raw_call(bridge_port: int, rtp: socket.socket, room: str, pt: str, rtpmap: str) -> str:
    """Dial ``room`` with an offer of this one codec for the RTP socket ``rtp``; the 200 OK."""
    sip = SipAttacker(bridge_port)
    try:
        data, _ = invite(bridge_port, sip.port, offer(rtp.getsockname()[1], pt, rtpmap), room)
        reply = sip.final_response(data)
        assert reply.startswith("SIP/2.0 200"), reply.splitlines()[0]
        return reply
    finally:
        sip.close()


def answered_rtp(reply: str) -> tuple[str, int]:
    """The bridge's RTP address from its answer (loopback)."""
    return "127.0.0.1", int(reply.split("m=audio ", 1)[1].split(" ", 1)[0])


@dataclass
class SipAttacker:
    bridge_port: int
    sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))

    def __post_init__(self) -> None:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def final_response(self, data: bytes, timeout: float = 5.0) -> str:
        """Send a request; return its final response (the first non-1xx), answering it with
        an ACK as a real UAC would (for a 2xx: with the To tag)."""
        self.sock.sendto(data, ("127.0.0.1", self.bridge_port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = self.sock.recv(65535).decode("utf-8", "replace")
            except socket.timeout:
                continue
            status = int(reply.split(" ", 2)[1])
            if status >= 200:
                if data.startswith(b"INVITE"):
                    self.sock.sendto(self._ack(data.decode(), reply), ("127.0.0.1", self.bridge_port))
                return reply
        raise AssertionError("no final response from the bridge")

    def _ack(self, request: str, reply: str) -> bytes:
        def header(text: str, name: str) -> str:
            match = re.search(rf"^{name}:\s*(.*?)\r$", text, re.M | re.I)
            assert match, name
            return match.group(1)
        uri = request.split(" ")[1]
        return (f"ACK {uri} SIP/2.0\r\nVia: {header(request, 'Via')}\r\nFrom: {header(request, 'From')}\r\n"
                f"To: {header(reply, 'To')}\r\nCall-ID: {header(request, 'Call-ID')}\r\nCSeq: 1 ACK\r\n"
                f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()

    def options(self) -> str:
        data = (f"OPTIONS sip:127.0.0.1:{self.bridge_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
                f"From: <sip:mallory@127.0.0.1>;tag={secrets.token_hex(4)}\r\nTo: <sip:127.0.0.1>\r\n"
                f"Call-ID: {secrets.token_hex(8)}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                f"Content-Length: 0\r\n\r\n").encode()
        return self.final_response(data)

    def close(self) -> None:
        self.sock.close()


def spray_rtp(ports: range, seconds: float, freq: float = 2000.0) -> int:
    """Send a sequential PCMU stream (a ``freq`` tone, one SSRC) to every port in ``ports`` from
    one socket, 50 packets a second each, for ``seconds``; return the bytes received back."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    enc = make_encoder("PCMU")
    t = np.arange(160) / 8000
    received = 0
    start = time.monotonic()
    i = 0
    try:
        while time.monotonic() - start < seconds:
            pcm = (8000 * np.sin(2 * np.pi * freq * (t + i * 0.02))).astype(np.int16)
            packet = RtpPacket(0.0, 0, False, 7000 + i, 160 * i, 0xBADC0DE, enc.encode(pcm)).encode()
            for port in ports:
                sock.sendto(packet, ("127.0.0.1", port))
            while True:
                try:
                    received += len(sock.recv(65535))
                except (BlockingIOError, ConnectionRefusedError):
                    break
            i += 1
            time.sleep(max(0.0, start + i * 0.02 - time.monotonic()))
    finally:
        sock.close()
    return received


def longest_gap_s(samples: np.ndarray, rate: int, threshold_dbfs: float = -50.0) -> float:
    """Longest run of 20 ms windows quieter than ``threshold_dbfs``."""
    from tests.e2e.peers import audio
    quiet = audio.window_rms_dbfs(samples, rate, 0.02) < threshold_dbfs
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    return longest * 0.02


def malformed_datagrams() -> dict[str, bytes]:
    """One datagram per structural defect class of RTP and RTCP (RFC 3550 A.1/A.2)."""
    hdr = bytes([0x80, 0x00]) + (1).to_bytes(2, "big") + (160).to_bytes(4, "big") + (0xBAD).to_bytes(4, "big")
    return {
        "short header": hdr[:7],
        "wrong version": bytes([0x40]) + hdr[1:] + bytes(160),
        "CSRC list past the end": bytes([0x8F]) + hdr[1:] + bytes(8),
        "extension past the end": bytes([0x90]) + hdr[1:] + bytes([0xBE, 0xDE, 0x00, 0xFF]),
        "padding past the end": bytes([0xA0]) + hdr[1:] + bytes(10) + bytes([200]),
        "unknown payload type": bytes([0x80, 0x63]) + hdr[2:] + bytes(160),
        "RTCP length that lies": bytes([0x80, 0xC9, 0x00, 0x40]) + (0xBAD).to_bytes(4, "big"),
        "RTCP compound ending early": bytes([0x80, 0xC8, 0x00, 0x06]) + bytes(24) + bytes([0x81, 0xCA, 0x00, 0x05]),
        "RTCP padding in the middle": bytes([0xA0, 0xC9, 0x00, 0x01]) + (0xBAD).to_bytes(4, "big")
                                      + bytes([0x80, 0xCA, 0x00, 0x01]) + bytes(4),
        "empty": b"",
    }


def spray_malformed(ports: range, rounds: int = 20) -> None:
    """Every malformed datagram to every port (RTP and RTCP), ``rounds`` times, 20 ms apart."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(rounds):
            for data in malformed_datagrams().values():
                for port in ports:
                    sock.sendto(data, ("127.0.0.1", port))
            time.sleep(0.02)
    finally:
        sock.close()


@dataclass
class FloodResult:
    sent: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)   # final status -> INVITEs answered so
    retry_after: set[str] = field(default_factory=set)

    @property
    def answered_200(self) -> int:
        return self.statuses.get(200, 0)


def invite_flood(bridge_port: int, count: int, seconds: float, room: str = "room1",
                 source: str = "127.0.0.2", user_agent: str = "flood") -> FloodResult:
    """``count`` INVITEs (each a new call) from ``source`` spread over ``seconds``, never ACKed;
    count the final answers per status, by Call-ID (2xx retransmissions count once)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    result = FloodResult()
    finals: dict[str, int] = {}
    start = time.monotonic()

    def drain() -> None:
        while True:
            try:
                reply = sock.recv(65535).decode("utf-8", "replace")
            except (BlockingIOError, ConnectionRefusedError):
                return
            head = reply.split(" ", 2)
            cid = re.search(r"^Call-ID:\s*(\S+)", reply, re.M | re.I)
            if len(head) > 1 and head[1].isdigit() and int(head[1]) >= 200 and cid:
                finals.setdefault(cid.group(1), int(head[1]))
                ra = re.search(r"^Retry-After:\s*(\S+)", reply, re.M | re.I)
                if ra:
                    result.retry_after.add(ra.group(1))

    try:
        for i in range(count):
            data, _ = invite(bridge_port, port, offer(9), room)
            data = data.replace(b"127.0.0.1:" + str(port).encode(), f"{source}:{port}".encode())
            data = data.replace(b"Max-Forwards: 70\r\n", f"Max-Forwards: 70\r\nUser-Agent: {user_agent}\r\n".encode())
            sock.sendto(data, ("127.0.0.1", bridge_port))
            result.sent += 1
            drain()
            time.sleep(max(0.0, start + (i + 1) * seconds / count - time.monotonic()))
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            drain()
            time.sleep(0.02)
    finally:
        sock.close()
    result.seconds = time.monotonic() - start
    for status in finals.values():
        result.statuses[status] = result.statuses.get(status, 0) + 1
    return result
