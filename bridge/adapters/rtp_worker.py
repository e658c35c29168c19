"""The RTP IO worker process: every leg's per-datagram socket calls, on the second core.

At 500 callers ``sendto`` and ``recvfrom_into`` are half of the bridge's time: one syscall
per leg per tick on the leg's own socket, which no batching call can merge. This process
holds a duplicate of every leg's RTP socket (passed over a unix socketpair, named by a slot
number) and does those calls; the mixing stays in the bridge (bridge/adapters/rtp_worker_client.py
is the other end).

Receive: datagrams are read as they arrive into one of two shared-memory buffers (records of
slot, IPv4 source, port, length, bytes). At tick time the bridge asks for an exchange: the
worker answers with the filled buffer and continues in the other. At most ``FLOOD_BOUND``
datagrams per socket are read between two exchanges; then the socket leaves the epoll set
until the next exchange, so a flood costs the kernel's buffer, not CPU. A full buffer drops.

Send: the bridge writes a tick's datagrams as records (slot, IPv4 destination, port, length,
bytes) into one of two send buffers and names it in a message; the worker sends each from
the slot's socket and acknowledges the buffer.

Stdlib only, run as ``python -I rtp_worker.py CTL_FD MEM_FD RX_SIZE TX_SIZE PARENT_PID``: it
imports nothing of the bridge, so it starts in tens of milliseconds. It exits on EOF on its
socketpair or when the parent dies (PR_SET_PDEATHSIG), so no orphan keeps the ports bound.
"""

from __future__ import annotations

import array
import mmap
import os
import select
import signal
import socket
import struct
import sys

# A datagram record in either direction: slot, IPv4 address, port, length; the bytes follow.
RECORD = struct.Struct("<I4sHH")
HEADER = RECORD.size
MAX_DATAGRAM = 2048              # as rtp_transport.RTP_MAX_DATAGRAM: longer ones are truncated
FLOOD_BOUND = 8                  # datagrams per socket per tick (BatchReceiver.MAX_ROUNDS)

# Control messages, one per SEQPACKET message. Bridge -> worker:
ADD = b"A"          # + slot (u32), the socket as SCM_RIGHTS
REMOVE = b"D"       # + slot: close the duplicate (the bridge releases the port after the exchange)
EXCHANGE = b"X"     # hand over the receive buffer
SEND = b"S"         # + buffer index (u8) + length (u32): send these records
# Worker -> bridge:
HELLO = b"H"
EXCHANGED = b"x"    # + buffer index, length, counters (see COUNTERS)
SENT = b"s"         # + buffer index: that send buffer is free again
SLOT = struct.Struct("<cI")
FDS_SPACE = socket.CMSG_SPACE(4 * array.array("i").itemsize)
SEND_MSG = struct.Struct("<cBI")
COUNTERS = ("received", "flood_skipped", "ring_dropped", "sent", "send_errors")
EXCHANGED_MSG = struct.Struct("<cBI" + "Q" * len(COUNTERS))
SENT_MSG = struct.Struct("<cB")


def rx_offset(index: int, rx_size: int) -> int:
    return index * rx_size


def tx_offset(index: int, rx_size: int, tx_size: int) -> int:
    return 2 * rx_size + index * tx_size


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)      # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass                                         # EOF on the socketpair still ends us
    if os.getppid() != parent:                       # it died before prctl
        sys.exit(0)


class Worker:
    def __init__(self, ctl: socket.socket, mem: mmap.mmap, rx_size: int, tx_size: int) -> None:
        self.ctl = ctl
        self.view = memoryview(mem)
        self.rx_size, self.tx_size = rx_size, tx_size
        self.epoll = select.epoll()
        self.epoll.register(ctl.fileno(), select.EPOLLIN)
        self.socks: dict[int, socket.socket] = {}       # slot -> socket
        self.slot_of: dict[int, int] = {}               # fd -> slot
        self.counts: dict[int, int] = {}                # fd -> datagrams read since the exchange
        self.muted: list[int] = []                      # fds out of the epoll set until the exchange
        self.index = 0                                  # receive buffer being filled
        self.fill = 0
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.ips: dict[str, bytes] = {}
        self.names: dict[bytes, str] = {}
        self.scratch = bytearray(MAX_DATAGRAM)

    def run(self) -> None:
        ctl_fd = self.ctl.fileno()
        poll = self.epoll.poll
        read = self._read
        while True:
            for fd, _ in poll(-1, 4096):
                if fd == ctl_fd:
                    if not self._control():
                        return
                else:
                    read(fd)

    def _read(self, fd: int) -> None:
        slot = self.slot_of.get(fd)
        if slot is None:
            return
        sock = self.socks[slot]
        start = rx_offset(self.index, self.rx_size) + self.fill
        try:
            if self.fill + HEADER + MAX_DATAGRAM <= self.rx_size:
                n, addr = sock.recvfrom_into(self.view[start + HEADER:start + HEADER + MAX_DATAGRAM])
                ip = self.ips.get(addr[0])
                if ip is None:
                    ip = self.ips[addr[0]] = socket.inet_aton(addr[0])
                RECORD.pack_into(self.view, start, slot, ip, addr[1], n)
                self.fill += HEADER + n
                self.counters["received"] += 1
            else:
                sock.recvfrom_into(self.scratch)    # the bridge has not exchanged in time: drop
                self.counters["ring_dropped"] += 1
        except OSError:         # EAGAIN (another reader won), or an ICMP error queued on it
            return
        count = self.counts.get(fd, 0) + 1
        self.counts[fd] = count
        if count >= FLOOD_BOUND:
            self.epoll.modify(fd, 0)
            self.muted.append(fd)
            self.counters["flood_skipped"] += 1

    def _control(self) -> bool:
        """Every pending control message; False on EOF (the bridge closed or died)."""
        while True:
            try:
                # socket.recv_fds drops its flags argument (CPython 3.11): recvmsg itself.
                msg, ancillary, _flags, _addr = self.ctl.recvmsg(64, FDS_SPACE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not msg:
                return False
            fds = [fd for level, ctype, data in ancillary
                   if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS
                   for fd in array.array("i", data[:len(data) - len(data) % 4])]
            kind = msg[:1]
            if kind == EXCHANGE:
                self._exchange()
            elif kind == SEND:
                _, index, length = SEND_MSG.unpack(msg)
                self._send(index, length)
            elif kind == ADD:
                _, slot = SLOT.unpack(msg)
                sock = socket.socket(fileno=fds[0])
                self.socks[slot] = sock
                self.slot_of[fds[0]] = slot
                self.counts.pop(fds[0], None)
                self.epoll.register(fds[0], select.EPOLLIN)
            elif kind == REMOVE:
                _, slot = SLOT.unpack(msg)
                gone = self.socks.pop(slot, None)
                if gone is not None:
                    fd = gone.fileno()
                    self.slot_of.pop(fd, None)
                    self.epoll.unregister(fd)
                    gone.close()

    def _exchange(self) -> None:
        c = self.counters
        self.ctl.send(EXCHANGED_MSG.pack(EXCHANGED, self.index, self.fill, *(c[k] for k in COUNTERS)))
        self.index ^= 1
        self.fill = 0
        self.counts.clear()
        modify = self.epoll.modify
        for fd in self.muted:
            if fd in self.slot_of:
                modify(fd, select.EPOLLIN)
        self.muted.clear()

    def _send(self, index: int, length: int) -> None:
        view, socks, names, unpack = self.view, self.socks, self.names, RECORD.unpack_from
        pos = tx_offset(index, self.rx_size, self.tx_size)
        end = pos + length
        sent = errors = 0
        while pos < end:
            slot, ip, port, n = unpack(view, pos)
            pos += HEADER
            sock = socks.get(slot)
            if sock is not None:        # None: the leg closed after the tick queued it
                host = names.get(ip)
                if host is None:
                    host = names[ip] = socket.inet_ntoa(ip)
                try:
                    sock.sendto(view[pos:pos + n], (host, port))
                    sent += 1
                except OSError:         # kernel buffer full or the peer's ICMP error: RTP drops
                    errors += 1
            pos += n
        self.counters["sent"] += sent
        self.counters["send_errors"] += errors
        self.ctl.send(SENT_MSG.pack(SENT, index))


def main(argv: list[str]) -> None:
    ctl_fd, mem_fd, rx_size, tx_size, parent = (int(a) for a in argv[1:6])
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C reaches the bridge, which closes us
    ctl = socket.socket(fileno=ctl_fd)
    mem = mmap.mmap(mem_fd, 2 * (rx_size + tx_size))
    os.close(mem_fd)
    ctl.send(HELLO)     # blocking: replies wait for room; reads use MSG_DONTWAIT
    Worker(ctl, mem, rx_size, tx_size).run()


if __name__ == "__main__":
    main(sys.argv)
