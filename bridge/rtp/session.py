"""Sans-IO RTP/RTCP session for one call leg.

Strict source (the defence against RTP bleed / hijack, CVE-2017-14099 class). We send
to ``remote_addr`` (from SDP at first) and re-target it from received *audio* packets
(codec PT or comfort noise):
- the first audio packet latches unconditionally (the SDP address is often a private
  one behind NAT) and opens the *learning window* if signalling has not opened it
  (``open_learning``: the call layer does at answer and after an offer that moved the
  address);
- packets from the latched address are accepted and reset any challenger;
- from another address, a packet re-targets the leg at once when it continues the
  source we follow (same SSRC, sequence number 1..``REBIND_WINDOW`` ahead): NAT
  rebinding mid-call keeps working;
- only inside the learning window, a packet from the SDP address latches at once, and
  any other new source latches after ``_LATCH_PACKETS`` sequential packets with no
  packet from the latched address in between;
- everything else is dropped and counted (``foreign``), whether the real source is
  sending or silent (DTX, mute, a listener), so two packets from a stranger can never
  steal a leg's media.
telephone-event packets never latch; they are accepted from the latched (or, before
that, the SDP) IP address on any port, since some clients send DTMF from another port
or with their own SSRC. RTCP is accepted from those IP addresses only (``rtcp_foreign``
counts the rest): otherwise anybody could keep a leg alive or confirm a victim's address.

Reflection bound. ``hold_sending`` keeps a new leg silent until the call is confirmed
(ACK); ``allow_sending(now, window)`` then sends to the SDP address for ``window``
seconds, and ``check_unconfirmed`` stops sending when nothing was ever received from
the peer (``confirmed``) by then. The first accepted RTP or RTCP packet resumes it.

The audio SSRC defines the source: an audio packet with a new SSRC (from the
latched address) resets sequence state and the jitter buffer. Packets of any PT
with the source SSRC share its sequence space (RFC 4733 DTMF usually does),
so they count for loss statistics; only audio feeds the jitter buffer and the
interarrival jitter. A new source is on probation (RFC 3550 A.1) until two
sequential packets arrived; the probation packet is held, then counted (played only for G.722).

``last_received`` is updated by every accepted RTP or RTCP packet (never by a stranger's).
"""

from __future__ import annotations

import random
import struct
from typing import Any

from .dtmf4733 import DtmfEvent, DtmfReceiver
from .jitter import JitterBuffer, PlayoutItem
from .lanes import RxLane, SteadyRx, SteadyTx, TxLane
from .packet import RTP_HEADER_SIZE, RtpError, RtpPacket, is_rtcp, unpack_seq_ts_ssrc
from .rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SenderReport,
    SourceDescription,
    build_compound,
    ntp_middle,
    ntp_timestamp,
    parse_rtcp,
)
from .sequence import SourceState

COMFORT_NOISE_PT = 13
# Payload types whose codecs use exactly one byte per RTP tick (G.711, G.722):
# the jitter buffer can split/merge such packets to any ptime.
_BYTE_CODECS = (0, 8, 9)
G722_PT = 9              # its decoder must see a stream from its first packet (ADPCM state)
_LATCH_PACKETS = 2
REBIND_WINDOW = 100       # a moved source may be this many sequence numbers ahead (lost packets)
LEARNING_S = 3.0          # default learning window (rtpengine uses 3 s, Asterisk 5 s)
_pack_header = struct.Struct("!BBHII").pack


class RtpSession:
    # Hot per-packet state: fixed slots keep it compact (fewer cache lines per leg per tick).
    __slots__ = (
        "_candidate", "_candidate_count", "_candidate_seq", "_codec_pt", "_dtmf_pt", "_fast_pt", "_general",
        "_learn_until", "_learning_s", "_send_until", "confirmed", "rtcp_foreign", "send_pauses",
        "_jitter_max_ms", "_jitter_min_ms", "_loss_depth", "_last_fraction", "_last_send", "_latched", "_our_sr",
        "_pending", "_remote_sr", "_rx_at", "_rx_lane", "_sdp_addr", "_sent_since_report", "_seq", "_source", "_ts", "_tx_at", "_tx_lane",
        "cname", "codec_clock", "comfort_noise", "dropped_invalid", "dtmf", "foreign",
        "frame_ticks", "jitter", "last_received", "latches", "local_ssrc", "malformed",
        "octets_received", "octets_sent", "packets_received", "packets_sent", "remote_addr",
        "remote_bye", "remote_cumulative_lost", "remote_fraction_lost", "remote_jitter_ms",
        "rtcp_malformed", "rtcp_received", "rtt_ms", "ssrc_changes", "unknown_pt",
    )
    def __init__(self, local_ssrc: int, codec_pt: int, codec_clock: int, frame_ticks: int,
                 dtmf_pt: int | None, dtmf_clock: int | None, remote_addr: tuple[str, int] | None,
                 jitter_min_ms: int = 20, jitter_max_ms: int = 200, *, cname: str | None = None,
                 initial_seq: int | None = None, initial_ts: int | None = None,
                 learning_s: float = LEARNING_S, loss_depth: bool = False) -> None:
        self.local_ssrc = local_ssrc & 0xFFFFFFFF
        self.cname = cname or f"tutti-{self.local_ssrc:08x}@bridge"
        self.remote_addr = remote_addr
        self._sdp_addr = remote_addr
        self._jitter_min_ms = jitter_min_ms
        self._jitter_max_ms = jitter_max_ms
        self._loss_depth = loss_depth   # jitter buffer: one more frame while losses are seen (Opus FEC)
        self._fast_pt = -1          # second header byte taking the receive fast path
        self._general = False       # True: fast paths off (differential tests)
        self._codec_pt = codec_pt
        self._dtmf_pt = dtmf_pt
        self._update_fast_pt()
        self.codec_clock = codec_clock
        self.frame_ticks = frame_ticks
        self.jitter = self._new_jitter()
        self.dtmf = DtmfReceiver(dtmf_clock or codec_clock)
        self._latched = False
        self._candidate: tuple[str, int] | None = None
        self._candidate_count = 0
        self._candidate_seq = 0
        self._learning_s = learning_s
        self._learn_until: float | None = None     # None: opens at the first latch
        self._send_until: float | None = None      # unconfirmed peer: stop sending after this
        self.confirmed = False                     # an accepted packet came from the peer
        self.send_pauses = 0
        self.rtcp_foreign = 0
        self._source: SourceState | None = None
        self._pending: list[tuple[RtpPacket, float]] = []
        self.last_received: float | None = None
        # A steady lane (bridge/rtp/lanes.py) holding this session's receive or send state.
        self._rx_lane: RxLane | None = None
        self._rx_at = 0
        self._tx_lane: TxLane | None = None
        self._tx_at = 0
        # Outgoing stream.
        rng = random.Random()
        self._seq = (rng.randrange(1 << 16) if initial_seq is None else initial_seq) & 0xFFFF
        self._ts = (rng.randrange(1 << 32) if initial_ts is None else initial_ts) & 0xFFFFFFFF
        self._last_send: float | None = None
        self.packets_sent = 0
        self.octets_sent = 0
        self._sent_since_report = False
        # Incoming counters.
        self.packets_received = 0
        self.octets_received = 0
        self.malformed = 0
        self.unknown_pt = 0
        self.comfort_noise = 0
        self.foreign = 0
        self.ssrc_changes = 0
        self.latches = 0
        self.dropped_invalid = 0
        # RTCP state.
        self._remote_sr: tuple[int, float] | None = None   # (LSR, arrival)
        self._our_sr: dict[int, float] = {}                # LSR we sent -> time
        self.remote_fraction_lost: float | None = None
        self.remote_cumulative_lost: int | None = None
        self.remote_jitter_ms: float | None = None
        self.rtt_ms: float | None = None
        self.remote_bye = False
        self.rtcp_received = 0
        self.rtcp_malformed = 0
        self._last_fraction = 0

    @property
    def codec_pt(self) -> int:
        return self._codec_pt

    @codec_pt.setter
    def codec_pt(self, pt: int) -> None:
        self._codec_pt = pt
        self._update_fast_pt()

    @property
    def dtmf_pt(self) -> int | None:
        return self._dtmf_pt

    @dtmf_pt.setter
    def dtmf_pt(self, pt: int | None) -> None:
        self._dtmf_pt = pt
        self._update_fast_pt()

    def _update_fast_pt(self) -> None:
        # Audio of the codec, marker clear (so never RTCP-like); not when the PT is
        # ambiguous (also the DTMF or comfort-noise PT): those take the general path.
        pt = self._codec_pt
        fast = not self._general and 0 <= pt < 128 and pt not in (self._dtmf_pt, COMFORT_NOISE_PT)
        self._fast_pt = pt if fast else -1

    def _use_general_path(self) -> None:
        """Turn every fast path off: the reference behaviour for differential tests."""
        self._general = True
        self._update_fast_pt()
        self.jitter._use_general_path()

    def _new_jitter(self) -> JitterBuffer:
        jb = JitterBuffer(self.codec_clock, self.frame_ticks, self._jitter_min_ms, self._jitter_max_ms,
                          bytes_per_tick=1 if self.codec_pt in _BYTE_CODECS else None,
                          loss_depth=self._loss_depth)
        if self._general:
            jb._use_general_path()
        return jb

    def leave_lanes(self) -> None:
        """Take the state a steady lane holds back into the objects (see lanes.py)."""
        if self._rx_lane is not None:
            self._rx_lane.release(self)
        if self._tx_lane is not None:
            self._tx_lane.release(self)

    # -- steady lanes (lanes.py): explicit snapshots out, results back in ------------------
    def enter_rx_lane(self, lane: RxLane, row: int) -> None:
        """Taken over by ``lane`` (after ``steady_rx``, nothing changed in between)."""
        self._rx_lane, self._rx_at = lane, row

    def leave_rx_lane(self) -> int:
        """Out of the receive lane (which restores the state); the row it had."""
        self._rx_lane = None
        return self._rx_at

    def steady_rx(self, clock: int, frame: int, pts: tuple[int, ...], max_depth: int) -> SteadyRx | None:
        """The receive state a lane can take over, or None when anything is unusual: one of
        ``pts`` at ``clock`` and ``frame`` ticks a packet, in order from the latched address,
        nothing pending, no key down, source and jitter buffer agreeing on the newest packet."""
        if self._rx_lane is not None:       # another lane's state goes back into the objects first
            self._rx_lane.release(self)
        src, addr = self._source, self.remote_addr
        if src is None or self._general or self._fast_pt != self._codec_pt or self._codec_pt not in pts \
                or self.codec_clock != clock or self.frame_ticks != frame or not self._latched \
                or addr is None or self._pending or self.dtmf.current is not None:
            return None
        source, jb = src.steady(), self.jitter.steady(frame, max_depth)
        if source is None or jb is None or source.ts_high != jb.end - frame \
                or jb.prev_seq != source.cycles + source.max_seq:
            return None
        return SteadyRx(self._codec_pt, addr, source, jb)

    def restore_steady_rx(self, frame: int, play: int, end: int, frames: list[bytes], src_jitter: float,
                          src_transit: float, jb_jitter: float, jb_transit: float, window_pops: int,
                          window_min: int | None, received: int, octets: int, last_seq: int,
                          last_rx: float) -> None:
        """Take back what a receive lane did (see ``steady_rx``): ``received`` packets in order
        (``octets`` payload bytes), the newest ``last_seq`` (16 bits) at ``last_rx``."""
        src = self._source
        assert src is not None
        src.restore_steady(src_jitter, src_transit, received, last_seq, end - frame)
        self.jitter.restore_steady(frame, play, end, frames, jb_jitter, jb_transit, window_pops,
                                   window_min, received, src.cycles + last_seq)
        if received:
            self.last_received = last_rx if self.last_received is None else max(last_rx, self.last_received)
            self._candidate = None
            self.packets_received += received
            self.octets_received += octets

    def enter_tx_lane(self, lane: TxLane, row: int) -> None:
        self._tx_lane, self._tx_at = lane, row

    def leave_tx_lane(self) -> int:
        self._tx_lane = None
        return self._tx_at

    def steady_tx(self) -> SteadyTx:
        if self._tx_lane is not None:
            self._tx_lane.release(self)
        return SteadyTx(self._codec_pt, self.local_ssrc, self._seq, self._ts, self.packets_sent, self.octets_sent)

    def restore_steady_tx(self, seq: int, ts: int, sent: int, octets: int) -> None:
        """Take back what a send lane did: next sequence number and timestamp, counters."""
        self._seq, self._ts = seq, ts
        if sent != self.packets_sent:
            self._sent_since_report = True
        self.packets_sent, self.octets_sent = sent, octets

    # -- receive -----------------------------------------------------------
    def receive(self, data: bytes, addr: tuple[str, int], now: float) -> list[DtmfEvent]:
        """Feed one datagram from the RTP socket. Never raises on bad input."""
        lane = self._rx_lane
        if lane is not None:
            if lane.put(self, data, addr, now):
                return []
            lane.release(self)
        src = self._source
        if src is not None and len(data) > RTP_HEADER_SIZE and data[0] == 0x80 \
                and data[1] == self._fast_pt and self._latched and addr == self.remote_addr \
                and not self._pending:
            # Fast path: the expected next audio packet of the followed source, from the
            # latched address, with a bare 12-byte header. Same effect as the general path.
            seq, ts, ssrc = unpack_seq_ts_ssrc(data, 2)
            if ssrc == src.ssrc:
                ts_ext = src.next_in_order(seq, ts, now * self.codec_clock)
                if ts_ext is not None:
                    self.last_received = now
                    self.remote_addr = addr
                    self._candidate = None
                    payload = data[RTP_HEADER_SIZE:]
                    self.packets_received += 1
                    self.octets_received += len(payload)
                    self.jitter.put(src.cycles + seq, ts_ext, payload, now)
                    return [] if self.dtmf.current is None else self.dtmf.poll(now)
        return self._receive(data, addr, now)

    def _receive(self, data: bytes, addr: tuple[str, int], now: float) -> list[DtmfEvent]:
        """The general path: any RTP or RTCP datagram."""
        if is_rtcp(data):
            self.receive_rtcp(data, addr, now)
            return self.dtmf.poll(now)
        try:
            pkt = RtpPacket.parse(data)
        except RtpError:
            self.malformed += 1
            return self.dtmf.poll(now)
        events: list[DtmfEvent] = []
        pt = pkt.payload_type
        if self.dtmf_pt is not None and pt == self.dtmf_pt:
            if self._from_peer(addr):
                self._heard(now)
                self._track_sequence(pkt, now)
                events = self.dtmf.receive(pkt.payload, pkt.timestamp, now, pkt.ssrc)
            else:
                self.foreign += 1
        elif pt == self.codec_pt or pt == COMFORT_NOISE_PT:
            if self._latch(pkt, addr, now):
                self._heard(now)
                self._track_sequence(pkt, now)
        elif self._from_peer(addr):
            self.unknown_pt += 1
        else:
            self.foreign += 1
        if self.dtmf.pending:
            events += self.dtmf.poll(now)
        return events

    def poll(self, now: float) -> list[DtmfEvent]:
        """DTMF events whose end packets were all lost; call periodically."""
        return self.dtmf.poll(now)

    def _latch(self, pkt: RtpPacket, addr: tuple[str, int], now: float) -> bool:
        """Apply the strict-source rule (module doc); False if the packet must be dropped."""
        if self._latched:
            if addr == self.remote_addr:
                self._candidate = None          # the followed source resets a challenger
                return True
            src = self._source
            if src is not None and pkt.ssrc == src.ssrc \
                    and 0 < (pkt.sequence - src.max_seq) % 65536 <= REBIND_WINDOW:
                self._retarget(addr)            # NAT rebinding: the same stream, a new port
                return True
            if self._learn_until is None or now >= self._learn_until:
                self.foreign += 1
                return False
            if addr == self._sdp_addr:
                self._retarget(addr)
                return True
            if addr == self._candidate and pkt.sequence == (self._candidate_seq + 1) % 65536:
                self._candidate_count += 1
            else:
                self._candidate, self._candidate_count = addr, 1
            self._candidate_seq = pkt.sequence
            if self._candidate_count >= _LATCH_PACKETS:
                self._retarget(addr)
                return True
            self.foreign += 1
            return False
        if addr != self._sdp_addr:
            self.latches += 1
        self._latched, self.remote_addr, self._candidate = True, addr, None
        if self._learn_until is None:
            self._learn_until = now + self._learning_s
        return True

    def _retarget(self, addr: tuple[str, int]) -> None:
        self.latches += 1
        self.remote_addr, self._candidate = addr, None

    def _from_peer(self, addr: tuple[str, int]) -> bool:
        """Same IP as the latched address (any port), or as the SDP address before a latch."""
        peer = self.remote_addr if self._latched else self._sdp_addr
        return peer is not None and addr[0] == peer[0]

    def _heard(self, now: float) -> None:
        self.last_received = now
        if not self.confirmed:
            self.confirmed = True
            self._send_until = None

    # -- learning and the reflection bound (driven by the call layer) --------
    def open_learning(self, now: float) -> None:
        """Signalling (answer, or an offer that moved the address): new sources may be learnt
        until ``now`` + the learning window."""
        self._learn_until = now + self._learning_s

    def hold_sending(self) -> None:
        """Send nothing until ``allow_sending`` (the call is not confirmed yet)."""
        if not self.confirmed:
            self.leave_lanes()
            if not self._latched:
                self.remote_addr = None

    def allow_sending(self, now: float, window_s: float) -> None:
        """Send to the SDP address, for ``window_s`` at most unless the peer is heard from."""
        if not self.confirmed:
            self.leave_lanes()
            if not self._latched:
                self.remote_addr = self._sdp_addr
            self._send_until = now + window_s

    def check_unconfirmed(self, now: float) -> bool:
        """Stop sending to an address that never answered; True when this call stopped it."""
        if self.confirmed or self._send_until is None or now < self._send_until \
                or self.remote_addr is None or self._latched:
            return False
        self.leave_lanes()
        self.remote_addr = None
        self._send_until = None
        self.send_pauses += 1
        return True

    def _track_sequence(self, pkt: RtpPacket, now: float) -> None:
        is_audio = pkt.payload_type != self.dtmf_pt or self.dtmf_pt is None
        src = self._source
        if src is None or pkt.ssrc != src.ssrc:
            if not is_audio:
                return           # DTMF with its own SSRC: no effect on the audio source
            if src is not None:
                self.ssrc_changes += 1
                self.jitter.reset()
            src = self._source = SourceState(pkt.ssrc, pkt.sequence)
            self._pending.clear()
        seq_ext = src.update(pkt.sequence)
        if seq_ext is None:
            if src.probation and is_audio:
                self._pending = [(pkt, now)]
            elif not src.probation:
                self.dropped_invalid += 1
            return
        self.packets_received += 1
        self.octets_received += len(pkt.payload)
        if self._pending:
            held, self._pending = self._pending, []
            for old, arrival in held:
                self.packets_received += 1
                self.octets_received += len(old.payload)
                if self.codec_pt != G722_PT and old.payload_type == self.codec_pt:
                    # Not played: it would keep the stream a frame late until the shrink dropped
                    # one a second on, anywhere. G.722's ADPCM decoder needs every packet.
                    src.update_jitter(arrival * self.codec_clock, src.extend_ts(old.timestamp))
                else:
                    self._deliver(old, seq_ext - (pkt.sequence - old.sequence) % 65536, arrival)
        if is_audio:
            self._deliver(pkt, seq_ext, now)

    def _deliver(self, pkt: RtpPacket, seq_ext: int, now: float) -> None:
        src = self._source
        assert src is not None
        ts_ext = src.extend_ts(pkt.timestamp)
        if pkt.payload_type == COMFORT_NOISE_PT:
            self.comfort_noise += 1
            return
        src.update_jitter(now * self.codec_clock, ts_ext)
        self.jitter.put(seq_ext, ts_ext, pkt.payload, now)

    def pop_frame(self) -> PlayoutItem:
        if self._rx_lane is not None:
            self._rx_lane.release(self)
        return self.jitter.pop()

    # -- send --------------------------------------------------------------
    def packetize(self, payload: bytes, ticks: int, marker: bool = False, *,
                  now: float | None = None) -> bytes:
        """Next outgoing packet; the timestamp then advances by ``ticks``.
        ``now`` (optional) lets the next SR map wall time to RTP time precisely."""
        if self._tx_lane is not None:
            self._tx_lane.release(self)
        # build_rtp_header, inlined (once per leg per tick); _seq/_ts/local_ssrc are in range.
        seq, ts = self._seq, self._ts
        data = _pack_header(0x80, (0x80 | self._codec_pt) if marker else self._codec_pt, seq, ts,
                            self.local_ssrc) + payload
        self._seq = (seq + 1) & 0xFFFF
        self._ts = (ts + ticks) & 0xFFFFFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        self._sent_since_report = True
        if now is not None:
            self._last_send = now
        return data

    # -- RTCP --------------------------------------------------------------
    def receive_rtcp(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        try:
            packets = parse_rtcp(data)
        except RtcpError:
            self.rtcp_malformed += 1
            return
        if not self._from_peer(addr):
            self.rtcp_foreign += 1
            return
        self.rtcp_received += 1
        if not self.confirmed and self.remote_addr is None and not self._latched:
            self.remote_addr = self._sdp_addr      # the peer is there after all: resume sending
        self._heard(now)
        for p in packets:
            if isinstance(p, SenderReport):
                self._remote_sr = (ntp_middle(p.ntp_timestamp), now)
            if isinstance(p, (SenderReport, ReceiverReport)):
                for block in p.reports:
                    if block.ssrc == self.local_ssrc:
                        self._take_report(block, now)
            elif isinstance(p, Bye) and self._source is not None and self._source.ssrc in p.ssrcs:
                self.remote_bye = True

    def _take_report(self, block: ReportBlock, now: float) -> None:
        self.remote_fraction_lost = block.fraction_lost / 256.0
        self.remote_cumulative_lost = block.cumulative_lost
        self.remote_jitter_ms = block.jitter * 1000.0 / self.codec_clock
        sent_at = self._our_sr.get(block.lsr)
        if block.lsr and sent_at is not None:
            self.rtt_ms = max(0.0, (now - sent_at) * 1000.0 - block.dlsr * 1000.0 / 65536.0)

    def rtcp_report(self, now: float) -> bytes:
        """Compound SR (if we sent since the last report) or RR, plus SDES CNAME."""
        self.leave_lanes()
        blocks: list[ReportBlock] = []
        src = self._source
        if src is not None and src.received > 0:
            lsr, dlsr = 0, 0
            if self._remote_sr is not None:
                lsr = self._remote_sr[0]
                dlsr = int((now - self._remote_sr[1]) * 65536)
            self._last_fraction = src.fraction_lost()
            blocks.append(ReportBlock(src.ssrc, self._last_fraction, src.cumulative_lost, src.ext_max,
                                      int(src.jitter), lsr, dlsr))
        sdes = SourceDescription([(self.local_ssrc, self.cname)])
        if self._sent_since_report:
            ntp = ntp_timestamp(now)
            rtp_ts = self._ts
            if self._last_send is not None:
                rtp_ts = (self._ts + int((now - self._last_send) * self.codec_clock)) & 0xFFFFFFFF
            self._our_sr[ntp_middle(ntp)] = now
            if len(self._our_sr) > 8:
                self._our_sr.pop(next(iter(self._our_sr)))
            self._sent_since_report = False
            return build_compound([SenderReport(self.local_ssrc, ntp, rtp_ts, self.packets_sent,
                                                self.octets_sent, blocks), sdes])
        return build_compound([ReceiverReport(self.local_ssrc, blocks), sdes])

    def rtcp_bye(self, reason: str | None = None) -> bytes:
        """Compound RR + SDES + BYE for the end of the call."""
        self.leave_lanes()
        rr = ReceiverReport(self.local_ssrc, [])
        return build_compound([rr, SourceDescription([(self.local_ssrc, self.cname)]),
                               Bye([self.local_ssrc], reason)])

    # -- control -----------------------------------------------------------
    def update_remote(self, codec_pt: int, codec_clock: int, frame_ticks: int, dtmf_pt: int | None,
                      dtmf_clock: int | None, remote_addr: tuple[str, int] | None,
                      now: float | None = None, loss_depth: bool | None = None) -> bool:
        """Apply a re-INVITE. The jitter buffer restarts only if the codec changed;
        the latch is kept unless the SDP address itself changed, which also reopens
        learning (from ``now``, else from the next latch) and the reflection bound.
        True when the SDP address changed."""
        self.leave_lanes()
        if (codec_pt, codec_clock, frame_ticks) != (self.codec_pt, self.codec_clock, self.frame_ticks):
            self.codec_pt, self.codec_clock, self.frame_ticks = codec_pt, codec_clock, frame_ticks
            if loss_depth is not None:
                self._loss_depth = loss_depth
            old = self.jitter
            self.jitter = self._new_jitter()
            for name in ("received", "late", "lost", "concealed", "duplicates", "dropped", "resyncs"):
                setattr(self.jitter, name, getattr(old, name))
        self.dtmf_pt = dtmf_pt
        self.dtmf.clock_rate = dtmf_clock or codec_clock
        if remote_addr == self._sdp_addr:
            return False
        self._sdp_addr = remote_addr
        if remote_addr is not None:
            self.remote_addr = remote_addr
            self._latched = False
            self.confirmed = False
            self._learn_until = None if now is None else now + self._learning_s
        return True

    def stats(self) -> dict[str, Any]:
        self.leave_lanes()
        src = self._source
        return {
            "local_ssrc": self.local_ssrc,
            "remote_ssrc": src.ssrc if src else None,
            "remote_addr": self.remote_addr,
            "packets_sent": self.packets_sent, "octets_sent": self.octets_sent,
            "packets_received": self.packets_received, "octets_received": self.octets_received,
            "cumulative_lost": src.cumulative_lost if src else 0,
            "fraction_lost": self._last_fraction / 256.0,
            "jitter_ms": (src.jitter * 1000.0 / self.codec_clock) if src else 0.0,
            "remote_fraction_lost": self.remote_fraction_lost,
            "remote_cumulative_lost": self.remote_cumulative_lost,
            "remote_jitter_ms": self.remote_jitter_ms,
            "rtt_ms": self.rtt_ms,
            "malformed": self.malformed, "unknown_pt": self.unknown_pt,
            "comfort_noise": self.comfort_noise, "foreign": self.foreign,
            "ssrc_changes": self.ssrc_changes, "latches": self.latches,
            "rtcp_received": self.rtcp_received, "rtcp_malformed": self.rtcp_malformed,
            "rtcp_foreign": self.rtcp_foreign, "confirmed": self.confirmed, "send_pauses": self.send_pauses,
            "remote_bye": self.remote_bye,
            "jitter_buffer": self.jitter.stats(),
        }


__all__ = ["RtpSession", "COMFORT_NOISE_PT", "RTP_HEADER_SIZE"]
