"""Steady lanes: the RTP state of many legs in numpy arrays while nothing unusual happens.

At 1,000 callers the per-leg Python of the media path is the cost: parsing each header,
advancing sequence and jitter state, the jitter buffer's put and pop, building each outgoing
header. In a conference almost every leg is in the same steady state almost all the time:
G.711 or Opus at 20 ms arriving in order, one packet per tick, and hearing the room's common
stream.
A *lane* owns that state for a fixed list of sessions as arrays and advances all of them
with a few numpy operations per tick; the only per-leg Python left is the socket call.

Ownership. While a session is in a lane (``session._rx_lane`` / ``_tx_lane`` set) the
lane's arrays are the truth for the fields it tracks; every ``RtpSession`` method that
reads or changes them first *releases* the session, which writes the arrays back, so the
objects are exact whenever anyone looks (``rtcp_report`` once a second does, so each leg
re-enters a lane at most once a second). A leg leaves the receive lane on anything a lane
does not model (a late, lost, reordered or foreign packet, another payload type, DTMF, a
marker bit, a sequence wrap): that packet then goes through the general path
(``RtpSession.receive``) and the jitter buffer, and the leg re-enters once its buffer is
empty again after a pop (the lane plays each packet in the tick it is read, exactly what
the jitter buffer does in that state; the kernel socket queue is what holds it until then).

What a lane models is its ``LaneShape``: G.711 (8 kHz clock, 160-byte payloads, PT 0/8) or Opus
(48 kHz clock, timestamps 960 apart, the negotiated dynamic PT, payloads of any length up to
``OPUS_WIDTH``: each row keeps its length; the jitter buffer keeps an Opus packet whole, one slot
each, which is exactly one frame a tick here).

The receive lane's effect is the object path's, field for field (tests/unit/test_lanes.py and
tests/unit/test_opus_lanes.py run both side by side): same counters, same RFC 3550 jitter in the
same float operations.
Sockets are not touched here: the adapter reads ahead into its readers before the tick and
sends the queued ``SendGroup``s after it (bridge/adapters/rtp_transport.py).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from .jitter import _SHRINK_WINDOW, Frame, SteadyJitter
from .sequence import SteadySource

if TYPE_CHECKING:
    from .session import RtpSession

U8 = npt.NDArray[np.uint8]
Sender = Callable[[Any, tuple[str, int]], Any]
NOWHERE = ("0.0.0.0", "::")       # c=0.0.0.0 hold (RFC 2543 style): nowhere to send
_SEQ_TS_SSRC = struct.Struct("!HII").unpack_from

ROW_BYTES = 2048                # a whole datagram fits (same bound as the socket reader's)
OPUS_WIDTH = 512                # longest Opus payload a lane keeps (200 kbit/s at 20 ms); longer: per leg


@dataclass(frozen=True, slots=True)
class LaneShape:
    """The packets a receive lane models: RTP ``clock``, ``frame`` ticks a packet (20 ms), the
    payload types, and payloads of exactly ``width`` bytes (``fixed``) or of 1..``width``."""
    clock: int
    frame: int
    pts: tuple[int, ...]
    width: int
    fixed: bool


G711_LANE = LaneShape(8000, 160, (0, 8), 160, True)                 # PCMU, PCMA: one byte a sample
OPUS_LANE = LaneShape(48000, 960, tuple(range(96, 128)), OPUS_WIDTH, False)   # dynamic PT (RFC 7587)


class LaneReader(Protocol):
    """One leg's socket as the adapter offers it to a receive lane."""
    ready: bool
    held: bool          # set while a lane reads the socket itself: the receiver's drain skips it
    recvfrom_into: Callable[[Any], tuple[int, Any]]
    on_datagram: Callable[[bytes, tuple[Any, ...]], None]


# -- receive ------------------------------------------------------------------------------------
RING = 16                       # frames a lane can hold per leg (the jitter buffer's depth: < RING)
_NO_MIN = 1 << 62               # window_min of a shrink window with no pop yet


@dataclass(slots=True)
class SteadyRx:
    """A session's receive state as a receive lane takes it over (``RtpSession.steady_rx``)."""
    pt: int
    addr: tuple[str, int]
    source: SteadySource
    jitter: SteadyJitter


@dataclass(slots=True)
class SteadyTx:
    """A session's send state as a send lane takes it over (``RtpSession.steady_tx``)."""
    pt: int
    ssrc: int
    seq: int
    ts: int
    sent: int
    octets: int


class RxLane:
    """Receive and playout for a fixed list of legs of one ``LaneShape`` (a room's G.711 bulk
    group, or its Opus callers).

    ``pop_all(now)`` once per tick reads each member's datagram into its row of one buffer,
    checks every header at once and returns the frames to play (``out``; ``out_len`` their
    lengths) plus a mask of the legs whose frame came from the lane; the other legs'
    ``PlayoutItem`` comes from their own jitter buffer, as ``RtpPort.pop_frame`` would give it.
    A member's jitter buffer depth (frames queued after a pop) is kept: its frames sit in a ring
    indexed by media time. The lane never grows or shrinks a buffer: a late packet leaves the
    lane, and so does a leg whose buffer's one-second shrink window is about to close, so the
    jitter buffer decides both.
    """

    def __init__(self, sessions: Sequence[RtpSession], readers: Sequence[LaneReader],
                 pops: Sequence[Callable[[], Any]], recheck: Callable[[], Any] | None = None,
                 shape: LaneShape = G711_LANE) -> None:
        self.shape = shape
        width = shape.width
        n = self.n = len(sessions)
        self.sessions = list(sessions)
        self.readers = list(readers)
        self.pops = list(pops)
        # Flags the readers that still have a datagram queued (one epoll call for all sockets):
        # a second packet queued in the same tick is then read and checked with the first ones.
        self.recheck = recheck
        self._buf = bytearray(n * ROW_BYTES)
        view = memoryview(self._buf)
        self._rows = [view[j * ROW_BYTES:(j + 1) * ROW_BYTES] for j in range(n)]
        self.packets = np.frombuffer(self._buf, np.uint8).reshape(n, ROW_BYTES)
        self._payloads: U8 = self.packets[:, 12:12 + width]
        self._seq_be = self.packets[:, 2:4].view(">u2")[:, 0]
        self._ts_be = self.packets[:, 4:8].view(">u4")[:, 0]
        self._ssrc_be = self.packets[:, 8:12].view(">u4")[:, 0]
        self.ring = np.zeros((RING, n, width), np.uint8)
        self.out = np.zeros((n, width), np.uint8)
        # Payload lengths (variable shapes only; a fixed shape's are all ``width``).
        self.ring_len = np.full((RING, n), width, np.int64)
        self.out_len = np.full(n, width, np.int64)
        self.octets = np.zeros(n, np.int64)      # payload bytes received in the lane
        self.member = np.zeros(n, np.bool_)
        self._members: list[int] = []          # member indices, rebuilt when membership changes
        self._changed = False
        self.pt = np.zeros(n, np.uint8)
        self.ssrc = np.zeros(n, np.int64)
        self.addr: list[Any] = [None] * n
        self.next_seq = np.zeros(n, np.int64)   # 16-bit sequence number expected next
        self.first_seq = np.zeros(n, np.int64)  # next_seq when the leg entered
        self.next_ts = np.zeros(n, np.int64)    # extended timestamp expected next
        self.depth = np.zeros(n, np.int64)      # frames queued after a pop
        self.window_pops = np.zeros(n, np.int64)
        self.window_min = np.zeros(n, np.int64)  # _NO_MIN: none yet in this window
        self.src_jitter = np.zeros(n, np.float64)
        self.src_transit = np.zeros(n, np.float64)
        self.jb_jitter = np.zeros(n, np.float64)
        self.jb_transit = np.zeros(n, np.float64)
        self.resync = np.zeros(n, np.float64)
        self.last_rx = np.zeros(n, np.float64)
        self._got = np.zeros(n, np.int64)
        self._cols = np.arange(n)

    # membership
    def steady(self, s: RtpSession) -> SteadyRx | None:
        """The session's receive state if it is the one this lane models: playing, whole
        20 ms frames queued back to back from the playout point up to the newest packet received,
        no stall, no key down, nothing held on probation (see ``RtpSession.steady_rx``)."""
        shape = self.shape
        state = s.steady_rx(shape.clock, shape.frame, shape.pts, RING)
        if state is not None and not all(0 < len(f) <= shape.width for f in state.jitter.frames):
            return None
        return state

    def acquire(self, j: int, state: SteadyRx) -> None:
        """Take over session j, whose receive state is ``state`` (see ``steady``)."""
        s = self.sessions[j]
        src, jb = state.source, state.jitter
        frame = self.shape.frame
        self.pt[j] = state.pt
        self.ssrc[j] = src.ssrc
        self.addr[j] = state.addr
        self.next_seq[j] = self.first_seq[j] = src.max_seq + 1
        self.next_ts[j] = jb.end
        self.depth[j] = len(jb.frames)
        self.octets[j] = 0
        for i, data in enumerate(jb.frames):
            at = (jb.play // frame + i) % RING
            self.ring[at, j, :len(data)] = np.frombuffer(data, np.uint8)
            self.ring_len[at, j] = len(data)
        s.jitter.hand_over()
        self.window_pops[j] = jb.window_pops
        self.window_min[j] = _NO_MIN if jb.window_min is None else jb.window_min
        self.src_jitter[j], self.src_transit[j] = src.jitter, src.transit
        self.jb_jitter[j], self.jb_transit[j] = jb.jitter, jb.last_transit
        self.resync[j] = jb.resync_ticks
        self.member[j] = True
        self._changed = True
        self.readers[j].held = True
        s.enter_rx_lane(self, j)

    def release(self, s: RtpSession) -> None:
        """Write the lane's state of ``s`` back into its objects; the session leaves."""
        j = s.leave_rx_lane()
        if not self.member[j] or self.sessions[j] is not s:
            return
        self.member[j] = False
        self._changed = True
        self.readers[j].held = False
        frame = self.shape.frame
        end = int(self.next_ts[j])
        depth = int(self.depth[j])
        play = end - depth * frame
        at = [(play // frame + i) % RING for i in range(depth)]
        frames = [self.ring[k, j, :self.ring_len[k, j]].tobytes() for k in at]
        wmin = int(self.window_min[j])
        received = int(self.next_seq[j] - self.first_seq[j])
        octets = received * self.shape.width if self.shape.fixed else int(self.octets[j])
        s.restore_steady_rx(frame, play, end, frames, float(self.src_jitter[j]), float(self.src_transit[j]),
                            float(self.jb_jitter[j]), float(self.jb_transit[j]),
                            int(self.window_pops[j]),       # the lane leaves before a window closes
                            None if wmin == _NO_MIN else wmin, received, octets,
                            int(self.next_seq[j]) - 1, float(self.last_rx[j]))

    def close(self) -> None:
        for j in np.flatnonzero(self.member).tolist():
            self.release(self.sessions[j])

    # the tick
    def _put(self, k: npt.NDArray[np.intp] | slice, now: float) -> None:
        """Legs k (a slice: all) received their next packet (in the read buffer): what the
        session's fast path and the jitter buffer's put do for it."""
        shape = self.shape
        cols = self._cols if isinstance(k, slice) else k
        ts = self.next_ts[k]
        arrival = now * float(shape.clock)
        transit = arrival - ts.astype(np.float64)
        sj = self.src_jitter[k]
        self.src_jitter[k] = sj + (np.abs(transit - self.src_transit[k]) - sj) / 16.0
        self.src_transit[k] = transit
        jj = self.jb_jitter[k]
        d = np.abs(transit - self.jb_transit[k])
        self.jb_jitter[k] = np.where(d < self.resync[k], jj + (d - jj) / 16.0, jj)
        self.jb_transit[k] = transit
        at = (ts // shape.frame) % RING
        if shape.fixed:
            self.ring[at, cols] = self._payloads[k]
        else:
            size = self._got[k] - 12
            top = int(size.max())           # only the bytes some row uses are copied
            self.ring[at, cols, :top] = self.packets[k, 12:12 + top]
            self.ring_len[at, cols] = size
            self.octets[k] += size
        self.next_seq[k] += 1
        self.next_ts[k] += shape.frame
        self.depth[k] += 1
        self.last_rx[k] = now

    def put(self, s: RtpSession, data: bytes, addr: tuple[Any, ...], now: float) -> bool:
        """A datagram for member ``s`` that reached ``RtpSession.receive`` outside ``pop_all``
        (the socket adapter's drain skips held sockets, so only a reader that does not honour
        ``held`` delivers one): queued in the lane if it is the next packet, as the jitter
        buffer would; else False and the caller releases the session and takes the general path."""
        j = self.sessions.index(s)      # rare: only a reader that does not honour ``held``
        if not self._fits(len(data)) or data[0] != 0x80 or data[1] != self.pt[j] \
                or addr != self.addr[j] or self.depth[j] >= RING:
            return False
        seq, ts, ssrc = _SEQ_TS_SSRC(data, 2)
        if seq != self.next_seq[j] or ts != self.next_ts[j] & 0xFFFFFFFF or ssrc != self.ssrc[j]:
            return False
        self._rows[j][:len(data)] = data
        self._got[j] = len(data)
        self._put(np.array([j]), now)
        return True

    def _fits(self, size: int) -> bool:
        """A datagram of ``size`` bytes (12-byte header and payload) has a payload this lane keeps."""
        width = self.shape.width
        return size == 12 + width if self.shape.fixed else 12 < size <= 12 + width

    def _read(self, members: list[int], got: list[int], feed: dict[int, tuple[bytes, Any]]) -> npt.NDArray[np.bool_]:
        """Read one datagram per flagged member into its row; the mask of rows holding the
        member's next packet. The other datagrams read are left in ``feed``."""
        readers, rows, addrs = self.readers, self._rows, self.addr
        foreign: list[int] = []
        for j in members:
            reader = readers[j]
            if reader.ready:
                reader.ready = False
                try:
                    got[j], addr = reader.recvfrom_into(rows[j])
                except OSError:
                    continue
                if addr != addrs[j]:
                    foreign.append(j)
                    feed[j] = (bytes(rows[j][:got[j]]), addr)
        nbytes = self._got
        nbytes[:] = got
        width = self.shape.width
        if self.shape.fixed:
            ok = (nbytes == 12 + width) & self.member
        else:
            ok = (nbytes > 12) & (nbytes <= 12 + width) & self.member
        ok &= self.packets[:, 0] == 0x80
        ok &= self.packets[:, 1] == self.pt
        ok &= self._seq_be == self.next_seq
        ok &= self._ts_be == (self.next_ts & 0xFFFFFFFF)
        ok &= self._ssrc_be == self.ssrc
        ok &= self.depth < RING        # the ring holds RING frames: a put must not overwrite one
        if foreign:
            ok[foreign] = False
        for j in np.flatnonzero((nbytes > 0) & ~ok).tolist():
            if j not in feed:
                feed[j] = (bytes(rows[j][:got[j]]), addrs[j])
        return ok

    def pop_all(self, now: float) -> tuple[U8, npt.NDArray[np.bool_], list[Any]]:
        """One tick: (frames to play, mask of rows played from the lane, items for the rest)."""
        if self._changed:
            self._members = np.flatnonzero(self.member).tolist()
            self._changed = False
        readers, sessions = self.readers, self.sessions
        got = [0] * self.n
        feed: dict[int, tuple[bytes, Any]] = {}     # datagrams the general path must take
        taken = self._read(self._members, got, feed)
        # Every leg got its next packet (the usual tick): whole-array views, no index lists.
        every = np.count_nonzero(taken) == self.n       # ndarray.all() goes through a Python wrapper
        idx = np.flatnonzero(taken) if not every else self._cols
        if idx.size:
            self._put(slice(None) if every else idx, now)
        nbytes = self._got                          # as _read left it: this round's sizes
        # Play: legs that got their next packet, or got none but have a frame queued (the
        # jitter buffer plays it too). A leg with nothing to play stalls: the buffer decides.
        # So does a leg whose one-second shrink window is about to close.
        ok = taken if every else taken | ((nbytes == 0) & (self.depth > 0) & self.member)
        ok = ok & (self.window_pops < _SHRINK_WINDOW - 1)
        every = np.count_nonzero(ok) == self.n
        cols = self._cols if every else np.flatnonzero(ok)
        k: npt.NDArray[np.intp] | slice = slice(None) if every else cols
        played = cols.size
        if played:
            frame = self.shape.frame
            depth = self.depth[k]
            at = (self.next_ts[k] // frame - depth) % RING
            if self.shape.fixed:
                self.out[k] = self.ring[at, cols]
            else:
                size = self.ring_len[at, cols]
                top = int(size.max())
                self.out[k, :top] = self.ring[at, cols, :top]
                self.out_len[k] = size
            self.window_min[k] = np.minimum(self.window_min[k], depth * frame)
            self.depth[k] = depth - 1
            self.window_pops[k] += 1
        if self.recheck is not None and played:
            # A second datagram already queued (bursty senders): after the pop, as the
            # jitter buffer gets it from the drain that follows the rooms.
            self.recheck()
            again = [j for j in np.flatnonzero(ok & taken).tolist() if readers[j].ready]
            if again:
                late: dict[int, tuple[bytes, Any]] = {}
                ok2 = self._read(again, [0] * self.n, late)
                k2 = np.flatnonzero(ok2)
                if k2.size:
                    self._put(k2, now)
                for j, datagram in late.items():
                    self.release(sessions[j])          # played this tick; now the general path
                    readers[j].on_datagram(*datagram)
        results: list[Any] = [None] * self.n
        if played == self.n:
            return self.out, ok, results
        for j in np.flatnonzero(~ok).tolist():
            s = sessions[j]
            if self.member[j]:
                # Something the lane does not model: the general path takes this packet.
                self.release(s)
                if j in feed:
                    readers[j].on_datagram(*feed[j])
                item = s.jitter.pop()
            else:
                item = self.pops[j]()
            results[j] = item
            if item.__class__ is Frame:
                state = self.steady(s)
                if state is not None:
                    self.acquire(j, state)
        return self.out, ok, results


# -- send ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class SendGroup:
    """One payload for many legs: the datagrams a send lane built (``rows[j]``, header and
    payload) and where each goes (``targets``: row, address); ``deliver`` sends them."""
    rows: list[memoryview]
    senders: list[Sender | None]
    targets: list[tuple[int, tuple[str, int]]]


def deliver(group: SendGroup) -> int:
    """Send every datagram of ``group`` through its leg's send function; the number sent."""
    rows, senders = group.rows, group.senders
    sent = 0
    for j, addr in group.targets:
        try:
            senders[j](rows[j], addr)       # type: ignore[misc]  # targets have a sender
            sent += 1
        except OSError:     # kernel buffer full, the peer's ICMP error, or closed: RTP drops
            pass
    return sent


class TxLane:
    """Outgoing RTP of a fixed list of sessions that send the same payload each tick (a room's
    common stream): every header built at once. With an ``outbox`` (the socket adapter's) each
    tick's ``SendGroup`` is queued there and sent by the adapter after the tick; without one,
    ``send`` delivers it at once through the given send functions."""

    def __init__(self, sessions: Sequence[RtpSession], senders: Sequence[Sender | None],
                 outbox: list[SendGroup] | None = None) -> None:
        n = self.n = len(sessions)
        self.sessions = list(sessions)
        self.senders = list(senders)
        self.outbox = outbox
        self.member = np.zeros(n, np.bool_)
        self.seq = np.zeros(n, np.uint16)
        self.ts = np.zeros(n, np.uint32)
        self.sent = np.zeros(n, np.int64)
        self.octets = np.zeros(n, np.int64)
        self.header = np.zeros((n, 12), np.uint8)
        self.header[:, 0] = 0x80
        self._length = -1
        self._buf = bytearray()
        self._rows: list[memoryview] = []
        self.packets: U8 = np.zeros((n, 12), np.uint8)
        self._seq_be = self._ts_be = self.packets[:, 0]

    def acquire(self, j: int) -> None:
        s = self.sessions[j]
        state = s.steady_tx()
        self.seq[j], self.ts[j] = state.seq, state.ts
        self.sent[j], self.octets[j] = state.sent, state.octets
        self.header[j, 1] = state.pt
        self.header[j, 8:12] = np.frombuffer(state.ssrc.to_bytes(4, "big"), np.uint8)
        self.packets[j, :12] = self.header[j]
        self.member[j] = True
        s.enter_tx_lane(self, j)

    def release(self, s: RtpSession) -> None:
        j = s.leave_tx_lane()
        if not self.member[j] or self.sessions[j] is not s:
            return
        self.member[j] = False
        s.restore_steady_tx(int(self.seq[j]), int(self.ts[j]), int(self.sent[j]), int(self.octets[j]))

    def close(self) -> None:
        for j in np.flatnonzero(self.member).tolist():
            self.release(self.sessions[j])

    def _layout(self, length: int) -> None:
        size = 12 + length
        n = self.n
        self._buf = bytearray(n * size)
        view = memoryview(self._buf)
        self._rows = [view[j * size:(j + 1) * size] for j in range(n)]
        self.packets = np.frombuffer(self._buf, np.uint8).reshape(n, size)
        self.packets[:, :12] = self.header
        self._seq_be = self.packets[:, 2:4].view(">u2")[:, 0]
        self._ts_be = self.packets[:, 4:8].view(">u4")[:, 0]
        self._length = length

    def send(self, payload: bytes, ticks: int, skip: set[int] | None = None) -> None:
        """Send ``payload`` to every leg but the positions in ``skip``; timestamps advance by
        ``ticks``. Legs new to the lane are taken over from their sessions first."""
        if skip:
            active = np.ones(self.n, np.bool_)
            active[list(skip)] = False
            idx: Any = np.flatnonzero(active)
            if not self.member[idx].all():
                for j in idx[~self.member[idx]].tolist():
                    self.acquire(j)
        else:
            idx = slice(None)
            if not self.member.all():
                for j in np.flatnonzero(~self.member).tolist():
                    self.acquire(j)
        if len(payload) != self._length:
            self._layout(len(payload))
        # Every row is written (a skipped row is simply not sent); only the sent ones advance.
        self._seq_be[:] = self.seq
        self._ts_be[:] = self.ts
        self.packets[:, 12:] = np.frombuffer(payload, np.uint8)
        self.seq[idx] += np.uint16(1)
        self.ts[idx] += np.uint32(ticks & 0xFFFFFFFF)
        self.sent[idx] += 1
        self.octets[idx] += len(payload)
        sessions, senders = self.sessions, self.senders
        targets = []
        for j in (range(self.n) if not skip else idx.tolist()):
            addr = sessions[j].remote_addr
            if addr is None or senders[j] is None or addr[0] in NOWHERE:
                continue
            targets.append((j, addr))
        # A new buffer per layout only: the queued group is sent before the next tick builds.
        group = SendGroup(self._rows, senders, targets)
        if self.outbox is not None:
            self.outbox.append(group)
        else:
            deliver(group)
