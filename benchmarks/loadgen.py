"""Load generator for bench_media_path.py: N G.711 callers over real loopback sockets.

Places N calls with hand-written SIP over UDP (INVITE with a PCMU offer -> 200 -> ACK),
then sends RTP from one socket per leg at 50 packets/s (PCMU, 160-byte payloads, paced
by absolute deadlines, legs spread over four 5 ms phases like independent phones) and
counts the bridge's RTP and RTCP on those sockets. A few legs send a tone (talkers), the
rest low-level noise that stays under the talk threshold.

Stdout protocol (one line each, for the driver): ``READY`` when every call is up and RTP
has flowed for the warm-up, ``START <monotonic>`` and ``END <monotonic>`` around the
measurement window, then one ``RESULT <json>`` line. Run by bench_media_path.py, or by
hand: python benchmarks/loadgen.py --sip 127.0.0.1:5060 --room bench --n 10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from bridge_codecs import make_decoder, make_encoder

PHASES = 4                 # send phases per 20 ms frame
FRAME = 0.020
INVITE_RETRY_S = 1.0
_RTP = struct.Struct("!BBHII")


def payload_cycle(tone_hz: float | None, seed: int) -> list[bytes]:
    """One second of 20 ms PCMU payloads: a tone (talker) or -70 dBov-ish noise (listener)."""
    t = np.arange(8000) / 8000
    if tone_hz is not None:
        pcm = 8000 * np.sin(2 * math.pi * tone_hz * t)
    else:
        pcm = np.random.default_rng(seed).normal(0, 8, 8000)
    enc = make_encoder("PCMU")
    return [enc.encode(pcm[i * 160:(i + 1) * 160].astype(np.int16)) for i in range(50)]


@dataclass
class Leg:
    idx: int
    rtp: socket.socket
    rtcp: socket.socket
    port: int
    call_id: str
    from_tag: str
    branch: str
    payloads: list[bytes]
    ssrc: int
    phase: int
    to_tag: str | None = None
    remote: tuple[str, int] | None = None
    invited_at: float = 0.0
    seq: int = 0
    ts: int = 0
    # bridge -> client, inside the window
    counting: bool = False
    received: int = 0
    first_seq: int | None = None
    last_ext: int = 0
    last_payload: bytes = b""
    # bridge RTCP receiver reports about our stream: (cumulative lost, extended max seq)
    rr_start: tuple[int, int] | None = None
    rr_last: tuple[int, int] | None = None
    rtcp_count: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def bind_pair(host: str, base: int, tries: int = 4000) -> tuple[socket.socket, socket.socket, int]:
    port = base - base % 2
    for _ in range(tries):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            a.bind((host, port))
            b.bind((host, port + 1))
        except OSError:
            a.close()
            b.close()
            port += 2
            continue
        a.setblocking(False)
        b.setblocking(False)
        return a, b, port
    raise RuntimeError("no free client port pair")


def invite(leg: Leg, host: str, sip_port: int, local_sip: int, room: str, dtmf: bool) -> bytes:
    sdp = (
        "v=0\r\n"
        f"o=load {leg.idx + 1} 1 IN IP4 {host}\r\n"
        "s=load\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {leg.port} RTP/AVP 0{' 101' if dtmf else ''}\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        + ("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n" if dtmf else "") +
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    ).encode()
    head = (
        f"INVITE sip:{room}@{host}:{sip_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{local_sip};branch={leg.branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: \"load{leg.idx}\" <sip:load{leg.idx}@{host}>;tag={leg.from_tag}\r\n"
        f"To: <sip:{room}@{host}>\r\n"
        f"Call-ID: {leg.call_id}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:load{leg.idx}@{host}:{local_sip}>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n"
    ).encode()
    return head + sdp


def ack(leg: Leg, host: str, sip_port: int, local_sip: int, room: str) -> bytes:
    return (
        f"ACK sip:{room}@{host}:{sip_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{local_sip};branch=z9hG4bKack{leg.idx}x{random.getrandbits(32):x}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: \"load{leg.idx}\" <sip:load{leg.idx}@{host}>;tag={leg.from_tag}\r\n"
        f"To: <sip:{room}@{host}>;tag={leg.to_tag}\r\n"
        f"Call-ID: {leg.call_id}\r\n"
        "CSeq: 1 ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_CALLID = re.compile(rb"^(?:Call-ID|i)\s*:\s*(\S+)", re.M | re.I)
_TOTAG = re.compile(rb"^(?:To|t)\s*:.*;\s*tag=([^;\s>]+)", re.M | re.I)
_MLINE = re.compile(rb"^m=audio (\d+) ", re.M)
_CLINE = re.compile(rb"^c=IN IP4 (\S+)", re.M)


def setup_calls(args: argparse.Namespace, legs: list[Leg], sip: socket.socket, local_sip: int) -> None:
    by_call = {leg.call_id.encode(): leg for leg in legs}
    pending = list(legs)
    waiting: dict[str, Leg] = {}
    interval = args.setup_s / max(1, len(legs))
    start = time.monotonic()
    deadline = start + args.setup_s + 30
    sent = 0
    while (pending or waiting) and time.monotonic() < deadline:
        now = time.monotonic()
        while pending and now >= start + sent * interval:
            leg = pending.pop(0)
            leg.invited_at = now
            sip.sendto(invite(leg, args.host, args.sip_port, local_sip, args.room, args.dtmf), (args.host, args.sip_port))
            waiting[leg.call_id] = leg
            sent += 1
        for leg in list(waiting.values()):
            if now - leg.invited_at > INVITE_RETRY_S:
                leg.invited_at = now
                sip.sendto(invite(leg, args.host, args.sip_port, local_sip, args.room, args.dtmf), (args.host, args.sip_port))
        next_send = start + sent * interval if pending else now + 0.05
        select.select([sip], [], [], max(0.0, min(next_send - time.monotonic(), 0.05)))
        while True:
            try:
                msg = sip.recv(65536)
            except BlockingIOError:
                break
            status = _STATUS.match(msg)
            cid = _CALLID.search(msg)
            if not status or not cid or cid.group(1) not in by_call:
                continue
            leg = by_call[cid.group(1)]
            code = int(status.group(1))
            if code < 200:
                continue
            if code >= 300:
                raise RuntimeError(f"call {leg.idx} rejected: {msg.splitlines()[0].decode()}")
            tag, mline, cline = _TOTAG.search(msg), _MLINE.search(msg), _CLINE.search(msg)
            if not (tag and mline and cline):
                raise RuntimeError(f"unusable 200 for call {leg.idx}:\n{msg.decode(errors='replace')}")
            leg.to_tag = tag.group(1).decode()
            leg.remote = (cline.group(1).decode(), int(mline.group(1)))
            sip.sendto(ack(leg, args.host, args.sip_port, local_sip, args.room), (args.host, args.sip_port))
            waiting.pop(leg.call_id, None)
    if pending or waiting:
        raise RuntimeError(f"{len(pending) + len(waiting)} calls not set up")


def parse_rr(data: bytes, our_ssrc: int) -> tuple[int, int] | None:
    """(cumulative lost, extended highest seq) from the SR/RR block about our SSRC."""
    if len(data) < 8:
        return None
    pt, count = data[1], data[0] & 0x1F
    off = 28 if pt == 200 else 8 if pt == 201 else -1
    if off < 0:
        return None
    for i in range(count):
        block = data[off + 24 * i: off + 24 * (i + 1)]
        if len(block) < 24:
            return None
        ssrc, lost_word, ext_max = struct.unpack_from("!III", block)
        if ssrc == our_ssrc:
            lost = lost_word & 0xFFFFFF
            if lost & 0x800000:
                lost -= 1 << 24
            return lost, ext_max
    return None


def run_media(args: argparse.Namespace, legs: list[Leg]) -> dict[str, object]:
    ep = select.epoll()
    by_fd: dict[int, tuple[Leg, bool]] = {}
    for leg in legs:
        ep.register(leg.rtp.fileno(), select.EPOLLIN)
        ep.register(leg.rtcp.fileno(), select.EPOLLIN)
        by_fd[leg.rtp.fileno()] = (leg, True)
        by_fd[leg.rtcp.fileno()] = (leg, False)
    groups = [[leg for leg in legs if leg.phase == p] for p in range(PHASES)]
    buf = bytearray(2048)
    capacity = len(by_fd) + 1
    t0 = time.monotonic() + 0.05
    warm_end = t0 + args.warmup_s
    win_end = warm_end + args.window_s
    sub = FRAME / PHASES
    k = 0
    late_sends = 0
    started = False
    win_start = window = 0.0
    ready_said = False
    send_cpu = 0.0
    while True:
        deadline = t0 + k * sub
        if deadline >= win_end + 0.2:
            break
        # Sleep to the next send deadline, then read whatever arrived meanwhile: one datagram
        # per ready socket per epoll round (like the bridge's own tick-driven receive), so
        # neither side pays for waking this process on every datagram.
        now = time.monotonic()
        if deadline > now:
            time.sleep(deadline - now)
        for _round in range(8):
            ready = ep.poll(0, capacity)
            if not ready:
                break
            for fd, _ in ready:
                leg, is_rtp = by_fd[fd]
                sock = leg.rtp if is_rtp else leg.rtcp
                try:
                    n = sock.recv_into(buf)
                except BlockingIOError:
                    continue
                if is_rtp:
                    if leg.counting and n >= 12:
                        seq = (buf[2] << 8) | buf[3]
                        if leg.first_seq is None:
                            leg.first_seq = leg.last_ext = seq
                        else:
                            step = (seq - leg.last_ext) % 65536
                            if step < 32768:  # newer (else reordered/duplicate)
                                leg.last_ext += step
                        leg.received += 1
                        if leg.idx == len(legs) - 1:
                            leg.last_payload = bytes(buf[12:n])
                else:
                    rr = parse_rr(bytes(buf[:n]), leg.ssrc)
                    if rr is not None:
                        leg.rtcp_count += 1
                        leg.rr_last = rr
                        if not started:
                            leg.rr_start = rr
        now = time.monotonic()
        if now - deadline > sub:
            late_sends += 1
        if not started and now >= warm_end:
            started = True
            if not ready_said:
                print("READY", flush=True)
                ready_said = True
            print(f"START {now:.6f}", flush=True)
            win_start = now
            for leg in legs:
                leg.counting = True
        if started and now >= win_end:
            window = now - win_start
            print(f"END {now:.6f}", flush=True)
            for leg in legs:
                leg.counting = False
            break
        c0 = time.process_time()
        for leg in groups[k % PHASES]:
            payload = leg.payloads[leg.seq % 50]
            packet = _RTP.pack(0x80, 0, leg.seq & 0xFFFF, leg.ts & 0xFFFFFFFF, leg.ssrc) + payload
            leg.seq += 1
            leg.ts += 160
            try:
                leg.rtp.sendto(packet, leg.remote)  # type: ignore[arg-type]
            except BlockingIOError:
                pass
        send_cpu += time.process_time() - c0
        k += 1
    expected = len(legs) * window / FRAME
    received = sum(leg.received for leg in legs)
    seq_span = sum((leg.last_ext - leg.first_seq + 1) for leg in legs if leg.first_seq is not None)
    lost_c2b = sum(leg.rr_last[0] - leg.rr_start[0] for leg in legs if leg.rr_last and leg.rr_start)
    sent_c2b = sum(leg.rr_last[1] - leg.rr_start[1] for leg in legs if leg.rr_last and leg.rr_start)
    last = legs[-1].last_payload
    mix = make_decoder("PCMU").decode(last) if last else np.zeros(1, np.int16)
    return {
        "n": len(legs),
        "window_s": window,
        "expected_b2c": expected,
        "received_b2c": received,
        "loss_b2c": 1 - received / expected if expected else 0.0,
        "seq_loss_b2c": 1 - received / seq_span if seq_span else 1.0,
        "legs_silent_b2c": sum(1 for leg in legs if leg.received == 0),
        "loss_c2b": lost_c2b / sent_c2b if sent_c2b else None,
        "rr_legs": sum(1 for leg in legs if leg.rr_last and leg.rr_start),
        "late_send_slots": late_sends,
        "loadgen_send_cpu_s": send_cpu,
        "listener_mix_rms": float(np.sqrt(np.mean(mix.astype(np.float64) ** 2))),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sip", required=True, help="bridge SIP host:port")
    ap.add_argument("--room", default="bench")
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--talkers", type=int, default=3)
    ap.add_argument("--setup-s", type=float, default=2.0)
    ap.add_argument("--warmup-s", type=float, default=3.0)
    ap.add_argument("--window-s", type=float, default=10.0)
    ap.add_argument("--no-telephone-event", dest="dtmf", action="store_false",
                    help="offer no RFC 4733 telephone-event (the bridge then runs in-band DTMF detection)")
    ap.add_argument("--client-base-port", type=int, default=40000)
    args = ap.parse_args()
    args.host, port = args.sip.rsplit(":", 1)
    args.sip_port = int(port)
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sip.bind((args.host, 0))
    sip.setblocking(False)
    local_sip = sip.getsockname()[1]
    legs: list[Leg] = []
    port = args.client_base_port
    tag = f"{os.getpid():x}"
    for i in range(args.n):
        rtp, rtcp, p = bind_pair(args.host, port)
        port = p + 2
        tone = 300.0 + 150 * i if i < args.talkers else None
        legs.append(Leg(
            idx=i, rtp=rtp, rtcp=rtcp, port=p, call_id=f"load-{tag}-{i}@{args.host}",
            from_tag=f"f{tag}{i}", branch=f"z9hG4bK{tag}i{i}", payloads=payload_cycle(tone, i),
            ssrc=random.getrandbits(32), phase=i % PHASES,
        ))
    setup_calls(args, legs, sip, local_sip)
    result = run_media(args, legs)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
