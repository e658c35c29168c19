"""The bridge's end of the RTP IO worker (bridge/adapters/rtp_worker.py): ``WorkerReceiver``.

It stands where ``BatchReceiver`` stands (same ``receive`` / ``transmit`` / ``drain`` around
the rooms' tick, same ``SocketReader``s, same ``Outbox``), but the per-datagram syscalls run in
the worker process on the other core:

- ``add`` passes a duplicate of the leg's RTP socket to the worker (``socket.send_fds``), named
  by a slot number that is never reused; the bridge keeps its own socket (RTCP and the fallback).
- ``receive`` before the tick reads the shared ring up to the worker's published position (no
  syscall, no waiting for the worker) and delivers each record as ``BatchReceiver.receive``
  does: queued for a leg in a receive lane, else to the session's callback. Everything that
  arrived since the last tick comes at once, so ``drain`` has nothing left to do.
- the legs' send functions (``sender``) append a record to a shared send buffer instead of
  calling ``sendto``, so SRTP protection and the send lanes need no change; ``transmit`` flushes
  the tick's ``Outbox`` into it and hands it over with one message (which also tells the worker
  the tick is over: flooded sockets are read again).
- ``remove`` closes the worker's duplicate; the leg's port is released when the worker's
  "removed" record comes through the ring, once it has closed it.

If the worker cannot start, dies (its socketpair fails or reports EOF), or keeps a send buffer
longer than ``reply_timeout`` seconds, the error is logged and every socket moves into an
in-process ``BatchReceiver`` (the bridge still has them): calls continue, IO is back on this core.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.adapters import rtp_worker as w
from bridge.adapters.rtp_transport import BatchReceiver, Callback, Outbox, Sendto, SocketReader, settle_ahead

log = logging.getLogger("bridge.rtp")

LOG_EVERY = 500     # ticks between log lines with the worker's counters (10 s)
HELD_QUEUE = 8      # datagrams kept for a leg in a receive lane (it takes up to two a tick)


class WorkerGone(Exception):
    pass


def worker_stats(receiver: object) -> dict[str, int] | None:
    """For /metrics: the IO worker's datagram counters and ``up`` (0 once IO fell back into
    the bridge process); None when the receiver is the in-process one from the start."""
    if not isinstance(receiver, WorkerReceiver):
        return None
    return {"up": int(not receiver.down), **receiver.counters}


def use_worker(setting: bool | str) -> bool:
    """``rtp.io_worker``: auto = on when this process may run on two CPUs or more."""
    if setting == "auto":
        return len(os.sched_getaffinity(0)) >= 2
    return bool(setting)


class WorkerReceiver:
    def __init__(self, rx_size: int = 8 << 20, tx_size: int = 4 << 20, *,
                 start_timeout: float = 10.0, reply_timeout: float = 2.0) -> None:
        self.outbox = Outbox()
        self.fallback = BatchReceiver()
        self.fallback.outbox = self.outbox      # the legs' ports captured this outbox
        self.rx_size, self.tx_size = rx_size, tx_size
        self.reply_timeout = reply_timeout
        self.down = True                        # until the worker said hello
        self._failed = False
        self._slots: dict[int, tuple[socket.socket, SocketReader]] = {}
        self._slot_of: dict[int, int] = {}      # our socket's fd -> slot
        self._next_slot = 0
        self._ahead: list[SocketReader] = []
        self._removed: dict[int, Callable[[], None]] = {}    # slot -> port release, once the worker closed it
        self._read = 0                          # ring position read (the worker's, once delivered)
        self._tx_index = 0
        self._tx_busy = [False] * w.TX_BUFFERS
        self._tx_fill = 0
        self._tx_base = w.tx_offset(0, rx_size, tx_size)
        self._in_tick = False
        self._ticks = 0
        self.waited_s = 0.0                     # time the bridge spent waiting for a send buffer
        self._ips: dict[str, bytes] = {}
        self._names: dict[bytes, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctl: socket.socket | None = None
        self._mem: mmap.mmap | None = None
        self._view: memoryview | None = None
        try:
            self._start(start_timeout)
        except (OSError, WorkerGone, subprocess.SubprocessError) as exc:
            self._fail(f"could not start: {exc}")

    # ------------------------------------------------------------------ life cycle

    def _start(self, timeout: float) -> None:
        size = w.memory_size(self.rx_size, self.tx_size)
        mem_fd = os.memfd_create("tutti-rtp-io", os.MFD_CLOEXEC)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            os.ftruncate(mem_fd, size)
            self._mem = mmap.mmap(mem_fd, size)
            self._view = memoryview(self._mem)
            self._ctl = ours
            # -I: the worker imports the stdlib only, whatever the bridge's environment.
            self._proc = subprocess.Popen(
                [sys.executable, "-I", str(Path(w.__file__)), str(theirs.fileno()), str(mem_fd),
                 str(self.rx_size), str(self.tx_size), str(os.getpid())],
                pass_fds=(theirs.fileno(), mem_fd), stdin=subprocess.DEVNULL)
        finally:
            os.close(mem_fd)
            theirs.close()
        ours.settimeout(timeout)
        if self._await(w.HELLO) != w.HELLO:
            raise WorkerGone("no hello")
        ours.settimeout(self.reply_timeout)
        self.down = False
        log.info("RTP IO worker started (pid %d)", self._proc.pid)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and not self.down else None

    def _control(self) -> socket.socket:
        if self._ctl is None:
            raise WorkerGone("closed")
        return self._ctl

    def _take(self, ctl: socket.socket) -> bytes:
        """The worker's next message (within the reply timeout); a send acknowledgement frees
        its buffer on the way."""
        try:
            msg = ctl.recv(256)
        except TimeoutError:
            raise WorkerGone(f"no answer in {ctl.gettimeout()} s") from None
        except OSError as exc:
            raise WorkerGone(str(exc)) from None
        if not msg:
            raise WorkerGone("it exited")
        if msg[:1] == w.SENT:
            self._tx_busy[msg[1]] = False
        return msg

    def _await(self, kind: bytes) -> bytes:
        """Read the worker's messages until one of ``kind`` (send acknowledgements on the way)."""
        ctl = self._control()
        while True:
            msg = self._take(ctl)
            if msg[:1] == kind:
                return msg

    def _acks(self) -> None:
        """The send acknowledgements that have arrived, without waiting."""
        ctl = self._control()
        # (MSG_DONTWAIT would not do: a socket with a timeout waits that long on EAGAIN.)
        while select.select([ctl], [], [], 0)[0]:
            self._take(ctl)

    def _fail(self, why: str) -> None:
        """The worker is unusable: log, stop it, and read and send every socket in process."""
        self.down = True
        if not self._failed:
            self._failed = True
            log.error("RTP IO worker %s: socket IO continues in the bridge process", why)
        self._stop_process()
        for sock, reader in self._slots.values():
            self.fallback.adopt(sock, reader)
        self._slots.clear()
        self._slot_of.clear()
        self.fallback._ahead.extend(self._ahead)
        self._ahead = []
        removed, self._removed = self._removed, {}
        for release in removed.values():    # the worker's duplicates died with it
            release()

    def _stop_process(self) -> None:
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        if self._proc is not None:
            try:
                self._proc.wait(1.0)    # EOF on its socketpair ends it
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def close(self) -> None:
        if not self.down:
            self.down = True
            self._stop_process()
        self.fallback.close()
        if self._view is not None:
            self._view.release()
            self._view = None
        if self._mem is not None:
            self._mem.close()
            self._mem = None

    # ------------------------------------------------------------------ legs

    def __len__(self) -> int:
        return len(self._slots) + len(self.fallback)

    def add(self, sock: socket.socket, on_datagram: Callback) -> SocketReader:
        reader = SocketReader(sock, on_datagram)
        if self.down or self._ctl is None:
            return self.fallback.adopt(sock, reader)
        slot = self._next_slot
        self._next_slot += 1
        try:
            socket.send_fds(self._ctl, [w.SLOT.pack(w.ADD, slot)], [sock.fileno()])
        except OSError as exc:
            self._fail(f"lost ({exc})")
            return self.fallback.adopt(sock, reader)
        self._slots[slot] = (sock, reader)
        self._slot_of[sock.fileno()] = slot
        return reader

    def remove(self, sock: socket.socket, on_removed: Callable[[], None] | None = None) -> None:
        slot = self._slot_of.pop(sock.fileno(), None)
        if slot is None:
            self.fallback.remove(sock, on_removed)
            return
        _, reader = self._slots.pop(slot)
        reader.ready = False
        if self._ctl is None:           # closed: the worker and its duplicates are gone
            if on_removed is not None:
                on_removed()
            return
        if on_removed is not None:
            self._removed[slot] = on_removed
        try:
            self._ctl.send(w.SLOT.pack(w.REMOVE, slot))
        except OSError as exc:
            self._fail(f"lost ({exc})")

    def sender(self, sock: socket.socket) -> Sendto:
        """The leg's RTP send function: a record in the send buffer (the socket's own ``sendto``
        once the worker is gone). Raises OSError like ``sendto`` when it cannot queue."""
        direct = sock.sendto
        slot = self._slot_of.get(sock.fileno())
        if slot is None:
            return direct
        pack = w.RECORD.pack_into

        def send(data: Any, addr: tuple[str, int]) -> Any:
            if self.down:
                return direct(data, addr)
            view = self._view
            assert view is not None
            n = len(data)
            fill = self._tx_fill
            if fill + w.HEADER + n > self.tx_size:
                raise OSError(errno.ENOBUFS, "RTP IO worker send buffer full")
            ip = self._ips.get(addr[0])
            if ip is None:
                ip = self._ips[addr[0]] = socket.inet_aton(addr[0])
            at = self._tx_base + fill
            pack(view, at, slot, ip, addr[1], n)
            view[at + w.HEADER:at + w.HEADER + n] = data
            self._tx_fill = fill + w.HEADER + n
            if not self._in_tick:
                self.flush()        # a send outside the media tick goes at once
            return n
        return send

    # ------------------------------------------------------------------ the tick

    def receive(self) -> int:
        """Before the rooms' tick: everything the worker has read since the last tick."""
        if self.down:
            return self.fallback.receive()
        self._in_tick = True
        view = self._view
        assert view is not None
        written = w.POSITION.unpack_from(view, w.WRITTEN)[0]
        total = self._deliver(view, self._read, written)
        self._read = written
        w.POSITION.pack_into(view, w.READ, written)     # the worker may reuse that space now
        return total

    @property
    def counters(self) -> dict[str, int]:
        """The worker's datagram counters (received, flood_skipped, ring_dropped, sent, send_errors)."""
        view = self._view
        if view is None:
            return dict.fromkeys(w.COUNTERS, 0)
        return {key: w.POSITION.unpack_from(view, w.COUNTERS_AT + 8 * i)[0] for i, key in enumerate(w.COUNTERS)}

    def _deliver(self, view: memoryview, pos: int, written: int) -> int:
        slots, names, ahead = self._slots, self._names, self._ahead
        unpack, header, size, ring = w.RECORD.unpack_from, w.HEADER, self.rx_size, w.RING_AT
        total = 0
        while pos < written:
            at = pos % size
            if size - at < header:          # too short for a record: the worker wrapped
                pos += size - at
                continue
            slot, ip, port, n = unpack(view, ring + at)
            if slot == w.WRAP:
                pos += size - at
                continue
            start = ring + at + header
            pos += header + n
            if slot == w.REMOVED:           # the worker closed that duplicate: the port is free
                release = self._removed.pop(int.from_bytes(ip, "little"), None)
                if release is not None:
                    release()
                continue
            entry = slots.get(slot)
            if entry is None:               # closed since the worker read it
                continue
            host = names.get(ip)
            if host is None:
                host = names[ip] = socket.inet_ntoa(ip)
            reader = entry[1]
            total += 1
            if reader.held:                 # a receive lane takes it in the tick (up to two)
                queue = reader.queue
                if not queue:
                    ahead.append(reader)
                if len(queue) < HELD_QUEUE:
                    queue.append((view[start:start + n].tobytes(), (host, port)))
                reader.ready = True
            else:
                reader.on_datagram(view[start:start + n].tobytes(), (host, port))
        return total

    def transmit(self) -> int:
        """After the rooms' tick: the outbox into the send buffer, one wake-up for the worker."""
        sent = self.outbox.flush()
        if self._ahead:
            self._ahead = settle_ahead(self._ahead)
        self._in_tick = False
        if self.down:
            return sent
        self.flush(tick=True)
        self._ticks += 1
        if self._ticks % LOG_EVERY == 0:
            log.info("RTP IO worker: %s; the bridge waited %.3f s for send buffers",
                     ", ".join(f"{k} {v}" for k, v in self.counters.items()), self.waited_s)
        return sent

    def flush(self, tick: bool = False) -> None:
        """Hand the send buffer to the worker and switch to the next one; ``tick``: also when
        empty (the message tells the worker the tick is over)."""
        if self.down or not (self._tx_fill or tick):
            return
        index, fill = self._tx_index, self._tx_fill
        try:
            assert self._ctl is not None
            self._ctl.send(w.SEND_MSG.pack(w.SEND, index, fill))
            if not fill:
                return
            self._tx_busy[index] = True
            self._tx_index = (index + 1) % w.TX_BUFFERS
            self._tx_base = w.tx_offset(self._tx_index, self.rx_size, self.tx_size)
            self._tx_fill = 0
            self._acks()
            if self._tx_busy[self._tx_index]:
                self._await_sent(self._tx_index)
        except (OSError, WorkerGone) as exc:
            socks = {slot: sock for slot, (sock, _) in self._slots.items()}
            self._fail(f"lost ({exc})")
            if not self._tx_busy[index]:        # never handed over: send it from here
                self._send_here(socks, w.tx_offset(index, self.rx_size, self.tx_size), fill)

    def _await_sent(self, index: int) -> None:
        t0 = time.perf_counter()
        while self._tx_busy[index]:
            self._await(w.SENT)
        self.waited_s += time.perf_counter() - t0

    def _send_here(self, by_slot: dict[int, socket.socket], pos: int, length: int) -> None:
        view = self._view
        assert view is not None
        end = pos + length
        while pos < end:
            slot, ip, port, n = w.RECORD.unpack_from(view, pos)
            pos += w.HEADER
            sock = by_slot.get(slot)
            if sock is not None:
                try:
                    sock.sendto(view[pos:pos + n], (socket.inet_ntoa(ip), port))
                except OSError:
                    pass
            pos += n

    def drain(self) -> int:
        """Nothing with the worker: ``receive`` delivered all that had arrived."""
        return 0 if not self.down else self.fallback.drain()
