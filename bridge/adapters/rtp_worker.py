"""The RTP IO worker process: every leg's per-datagram socket calls, on the second core.

At 500 callers ``sendto`` and ``recvfrom_into`` are half of the bridge's time: one syscall
per leg per tick on the leg's own socket, which no batching call can merge. This process
holds a duplicate of every leg's RTP socket (passed over a unix socketpair, named by a slot
number) and does those calls; the mixing stays in the bridge (bridge/adapters/rtp_worker_client.py
is the other end).

Receive: datagrams are read as they arrive into a shared-memory ring (records of slot, IPv4
source, port, length, bytes), one writer (here) and one reader (the bridge, before each tick),
each publishing its byte position; the bridge never waits for this process. A full ring drops.
At most ``FLOOD_BOUND`` datagrams per socket are read per tick; then the socket leaves the
epoll set until the next tick, so a flood costs the kernel's buffer, not CPU.

Send: after each tick the bridge writes its datagrams as records (slot, IPv4 destination, port,
length, bytes) into one of ``TX_BUFFERS`` send buffers and names it in one message (which also marks the
tick); the worker sends each from the slot's socket and acknowledges the buffer.

Stdlib only, run as ``python -I rtp_worker.py CTL_FD MEM_FD RX_SIZE TX_SIZE PARENT_PID``: it
imports nothing of the bridge, so it starts in tens of milliseconds. It exits on EOF on its
socketpair or when the parent dies (PR_SET_PDEATHSIG), so no orphan keeps the ports bound.
The ring's positions are plain 8-byte stores, ordered after the record they publish on x86-64
(total store order), the platform this runs on.
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
import time

# A datagram record in either direction: slot, IPv4 address, port, length; the bytes follow.
RECORD = struct.Struct("<I4sHH")
HEADER = RECORD.size
MAX_DATAGRAM = 2048              # as rtp_transport.RTP_MAX_DATAGRAM: longer ones are truncated
FLOOD_BOUND = 8                  # datagrams per socket per tick (BatchReceiver.MAX_ROUNDS)

# Control messages, one per SEQPACKET message. Bridge -> worker:
ADD = b"A"          # + slot (u32), the socket as SCM_RIGHTS
REMOVE = b"D"       # + slot: close the duplicate; answered by a REMOVED record in the ring
SEND = b"S"         # + buffer index (u8) + length (u32): a tick ended; send these records
# Worker -> bridge:
HELLO = b"H"
SENT = b"s"         # + buffer index: that send buffer is free again
SLOT = struct.Struct("<cI")
FDS_SPACE = socket.CMSG_SPACE(4 * array.array("i").itemsize)
SEND_MSG = struct.Struct("<cBI")
SENT_MSG = struct.Struct("<cB")

# Shared memory: [positions | receive ring | send buffers]. Several send buffers, so that the
# bridge only waits for the worker when it is that many ticks behind.
TX_BUFFERS = 4
POSITION = struct.Struct("<Q")
WRITTEN, READ = 0, 8            # ring byte positions (ever increasing): ours, the bridge's
COUNTERS = ("received", "flood_skipped", "ring_dropped", "sent", "send_errors")
COUNTERS_AT = 16                # the counters (u64 each), for the bridge's statistics
RING_AT = 64
WRAP = 0xFFFFFFFF               # record slot: the ring continues at its start
REMOVED = 0xFFFFFFFE            # record slot: the slot in the address field is closed here


def memory_size(rx_size: int, tx_size: int) -> int:
    return RING_AT + rx_size + TX_BUFFERS * tx_size


def tx_offset(index: int, rx_size: int, tx_size: int) -> int:
    return RING_AT + rx_size + index * tx_size


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
    # After a small batch of reads, wait this long before the next one: datagrams wait for the
    # bridge's tick anyway, and one wake-up per millisecond costs less than one per datagram
    # (measured at N = 500: 0 ms put the bridge process at 76 % of a core, 1 ms and 3 ms at ~50 %;
    # TUTTI_RTP_WORKER_COALESCE_MS for benchmarks).
    COALESCE_S = float(os.environ.get("TUTTI_RTP_WORKER_COALESCE_MS", "1")) / 1000

    def __init__(self, ctl: socket.socket, mem: mmap.mmap, rx_size: int, tx_size: int) -> None:
        self.ctl = ctl
        self.view = memoryview(mem)
        self.rx_size, self.tx_size = rx_size, tx_size
        self.epoll = select.epoll()
        self.epoll.register(ctl.fileno(), select.EPOLLIN)
        self.socks: dict[int, socket.socket] = {}       # slot -> socket
        self.slot_of: dict[int, int] = {}               # fd -> slot
        self.counts: dict[int, int] = {}                # fd -> datagrams read in this tick
        self.muted: list[int] = []                      # fds out of the epoll set until the next tick
        self.written = 0                                # ring position (bytes ever written)
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.ips: dict[str, bytes] = {}
        self.names: dict[bytes, str] = {}
        self.scratch = bytearray(MAX_DATAGRAM)

    def run(self) -> None:
        ctl_fd = self.ctl.fileno()
        poll = self.epoll.poll
        read = self._read
        sleep = time.sleep
        while True:
            events = poll(-1, 4096)
            for fd, _ in events:
                if fd == ctl_fd:
                    if not self._control():
                        return
                else:
                    read(fd)
            self._publish()
            if len(events) < 64 and self.COALESCE_S:
                sleep(self.COALESCE_S)

    def _publish(self) -> None:
        view = self.view
        c = self.counters
        for i, key in enumerate(COUNTERS):
            POSITION.pack_into(view, COUNTERS_AT + 8 * i, c[key])
        POSITION.pack_into(view, WRITTEN, self.written)   # last: the records before it are complete

    def _reserve(self, need: int) -> int | None:
        """Where a record of up to ``need`` bytes goes in the ring (after a wrap if it does not
        fit before the end), or None when the bridge has not read enough yet."""
        size = self.rx_size
        free = size - (self.written - POSITION.unpack_from(self.view, READ)[0])
        at = self.written % size
        if at + need > size:                # never split a record: mark the rest and wrap
            if free < size - at + need:
                return None
            if size - at >= HEADER:
                RECORD.pack_into(self.view, RING_AT + at, WRAP, b"\0\0\0\0", 0, 0)
            self.written += size - at
            return 0
        return at if free >= need else None

    def _read(self, fd: int) -> None:
        slot = self.slot_of.get(fd)
        if slot is None:
            return
        sock = self.socks[slot]
        try:
            at = self._reserve(HEADER + MAX_DATAGRAM)
            if at is not None:
                start = RING_AT + at
                n, addr = sock.recvfrom_into(self.view[start + HEADER:start + HEADER + MAX_DATAGRAM])
                ip = self.ips.get(addr[0])
                if ip is None:
                    ip = self.ips[addr[0]] = socket.inet_aton(addr[0])
                RECORD.pack_into(self.view, start, slot, ip, addr[1], n)
                self.written += HEADER + n
                self.counters["received"] += 1
            else:
                sock.recvfrom_into(self.scratch)    # the bridge is behind: drop, never block
                self.counters["ring_dropped"] += 1
        except OSError:         # EAGAIN (spurious), or an ICMP error queued on the socket
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
            if kind == SEND:
                _, index, length = SEND_MSG.unpack(msg)
                self._tick()
                if length:
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
                self._removed(slot)

    def _removed(self, slot: int) -> None:
        """Tell the bridge in the ring (in order with the datagrams): the port is free now."""
        while True:
            at = self._reserve(HEADER)
            if at is not None:
                break
            time.sleep(self.COALESCE_S)         # rare: a full ring; this record must not be lost
            if os.getppid() == 1:
                sys.exit(0)
        RECORD.pack_into(self.view, RING_AT + at, REMOVED, slot.to_bytes(4, "little"), 0, 0)
        self.written += HEADER

    def _tick(self) -> None:
        """The bridge's tick ended: every socket may be read again (the flood bound is per tick)."""
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
    # Ctrl-C, or systemd's SIGTERM to the whole service: the bridge shuts down and closes us
    # (or dies, and so do we); going first would only turn its last ticks into a fallback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctl = socket.socket(fileno=ctl_fd)
    mem = mmap.mmap(mem_fd, memory_size(rx_size, tx_size))
    os.close(mem_fd)
    ctl.send(HELLO)     # blocking: replies wait for room; reads use MSG_DONTWAIT
    Worker(ctl, mem, rx_size, tx_size).run()


if __name__ == "__main__":
    main(sys.argv)
