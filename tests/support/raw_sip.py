"""A bare SIP client over one UDP socket, for the tests that only need a final response."""

from __future__ import annotations

import re
import socket
import time


def raw_invite(port: int, local_port: int, user: str) -> tuple[int, str]:
    """One INVITE from a plain UDP socket: the final status and its Contact (then the ACK)."""
    call_id = f"cascade-{time.monotonic_ns()}"
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {local_port + 2} RTP/AVP 0\r\n")
    head = (f"sip:{user}@127.0.0.1:{port}", f"SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{call_id};rport",
            f"<sip:raw@127.0.0.1:{local_port}>;tag=r1")
    invite = (f"INVITE {head[0]} SIP/2.0\r\nVia: {head[1]}\r\nMax-Forwards: 70\r\nFrom: {head[2]}\r\n"
              f"To: <{head[0]}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
              f"Contact: <sip:raw@127.0.0.1:{local_port}>\r\nContent-Type: application/sdp\r\n"
              f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", local_port))
        sock.settimeout(5.0)
        sock.sendto(invite.encode(), ("127.0.0.1", port))
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            text = sock.recv(65535).decode(errors="replace")
            status = int(text.split(" ", 2)[1])
            if status >= 200:
                to = re.search(r"^To: *(.*)$", text, re.M | re.I)
                ack = (f"ACK {head[0]} SIP/2.0\r\nVia: {head[1]}\r\nMax-Forwards: 70\r\nFrom: {head[2]}\r\n"
                       f"To: {to.group(1).strip() if to else ''}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n"
                       "Content-Length: 0\r\n\r\n")
                sock.sendto(ack.encode(), ("127.0.0.1", port))
                contact = re.search(r"^(?:Contact|m): *(.*)$", text, re.M | re.I)
                return status, contact.group(1).strip() if contact else ""
    raise AssertionError("no final response")
