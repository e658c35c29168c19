"""One room across nodes (bridge/call/cascade.py): the pure decisions, the talker-cap exemption,
and the owner side of the call flow in the socket-free harness (302, 403, the trunk as a
hidden, always-mixed participant)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bridge_codecs import make_decoder

from bridge.call.cascade import (
    HEADER,
    is_trusted,
    node_address,
    redirect_contact,
    redirect_node,
    screen,
    trunk_codecs,
    trunk_header,
)
from bridge.config import ConfigError, parse_config
from bridge.media.mixer import Mixer
from bridge.rtp.packet import RtpPacket
from bridge.sip import parse_message
from bridge.sip.message import SipRequest
from tests.unit.call_harness import BRIDGE_HOST, Bridge, Phone
from tests.unit.test_call_dialout import TRUNK_ADDR, Trunk

# --------------------------------------------------------------------------- pure decisions


def _invite(uri: str, *headers: str) -> SipRequest:
    text = (f"INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKx\r\nMax-Forwards: 70\r\n"
            "From: <sip:a@10.0.0.9>;tag=1\r\nTo: <sip:room@192.0.2.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"
            "Contact: <sip:a@10.0.0.9>\r\n" + "".join(h + "\r\n" for h in headers) + "Content-Length: 0\r\n\r\n")
    msg = parse_message(text.encode())
    assert isinstance(msg, SipRequest)
    return msg


def _config(**cascade: Any) -> Any:
    return parse_config({"cascade": cascade, "security": {"trusted_proxies": ["127.0.0.1", "10.1.0.0/16"]},
                         "sip": {"advertise_host": "192.0.2.1", "port": 5070}})


def test_redirect_only_past_the_part_size_and_only_with_a_part_node() -> None:
    assert redirect_node(0, ["127.0.0.1:5072"], 99, "c1") is None          # off by default
    assert redirect_node(2, [], 5, "c1") is None                           # nowhere to send them
    assert redirect_node(2, ["127.0.0.1:5072"], 1, "c1") is None
    assert redirect_node(2, ["127.0.0.1:5072"], 2, "c1") == "127.0.0.1:5072"


def test_one_part_node_per_conference_whatever_the_order_of_the_list() -> None:
    nodes = [f"10.0.0.{i}:5060" for i in range(2, 6)]
    chosen = {conf: redirect_node(1, nodes, 1, conf) for conf in (f"conf_{i}" for i in range(40))}
    assert all(redirect_node(1, nodes[::-1], 5, conf) == node for conf, node in chosen.items())
    assert len(set(chosen.values())) > 1, "every conference overflows onto the same node"


def test_part_nodes_given_by_the_caller_replace_the_static_list_and_never_name_this_node() -> None:
    cfg = _config(part_size=1)                # no static part_nodes: cluster mode lists the live nodes
    plain = _invite("sip:demo@192.0.2.1:5070")
    node = "192.0.2.1:5070"
    assert screen(plain, "10.9.9.9", cfg, 1, node, "c1").status == 0                 # nowhere to go
    assert screen(plain, "10.9.9.9", cfg, 1, node, "c1", [node]).status == 0         # only itself
    moved = screen(plain, "10.9.9.9", cfg, 1, node, "c1", [node, "192.0.2.7:5060"])
    assert moved.status == 302 and "@192.0.2.7:5060;tutti-owner=192.0.2.1:5070" in dict(moved.headers)["Contact"]


def test_contact_and_trunk_header() -> None:
    assert redirect_contact("room1", "127.0.0.1:5072", "192.0.2.1:5070") == \
        "<sip:room1@127.0.0.1:5072;tutti-owner=192.0.2.1:5070>"
    assert trunk_header("127.0.0.1:5072") == "part;node=127.0.0.1:5072"


def test_trusted_sources() -> None:
    trusted = ("127.0.0.1", "10.1.0.0/16")
    assert is_trusted("127.0.0.1", trusted)
    assert is_trusted("10.1.200.3", trusted)
    assert not is_trusted("10.2.0.1", trusted)
    assert not is_trusted("not-an-ip", trusted)
    assert not is_trusted("127.0.0.1", ())


def test_screen_decisions() -> None:
    cfg = _config(part_size=1, part_nodes=["127.0.0.1:5072"])
    node = node_address(cfg, "")
    assert node == "192.0.2.1:5070"
    plain = _invite("sip:room1@192.0.2.1")
    assert screen(plain, "10.9.9.9", cfg, 0, node).kind == "plain"
    moved = screen(plain, "10.9.9.9", cfg, 1, node)
    assert (moved.status, dict(moved.headers)["Contact"]) == (
        302, "<sip:room1@127.0.0.1:5072;tutti-owner=192.0.2.1:5070>")
    # A trunk is never redirected (a tree, never a loop), and only a trusted node may open one.
    trunk = _invite("sip:room1@192.0.2.1", f"{HEADER}: part;node=127.0.0.1:5072")
    assert screen(trunk, "127.0.0.1", cfg, 5, node).kind == "trunk"
    assert screen(trunk, "10.9.9.9", cfg, 5, node).status == 403
    # A redirected caller: trusted source, a host:port owner; never redirected again.
    part = _invite("sip:room1@127.0.0.1:5072;tutti-owner=192.0.2.1:5070")
    verdict = screen(part, "10.1.0.7", cfg, 5, node)
    assert (verdict.kind, verdict.owner, verdict.status) == ("part", "192.0.2.1:5070", 0)
    assert screen(part, "10.9.9.9", cfg, 0, node).status == 403
    bad = _invite("sip:room1@127.0.0.1:5072;tutti-owner=evil")
    assert screen(bad, "127.0.0.1", cfg, 0, node).status == 403
    # A node listed as its own part node seats the caller itself.
    own = _config(part_size=1, part_nodes=["192.0.2.1:5070"])
    assert screen(plain, "10.9.9.9", own, 3, node_address(own, "")).status == 0


def test_trunk_codec_is_the_rooms_native_rate_when_allowed() -> None:
    assert trunk_codecs(16000, ["opus", "G722", "PCMU"]) == ["G722"]
    assert trunk_codecs(48000, ["opus", "G722", "PCMU"]) == ["G722"]
    assert trunk_codecs(16000, ["opus", "PCMU"]) == ["PCMU"]
    assert trunk_codecs(8000, ["G722", "PCMU"]) == ["PCMU"]
    assert trunk_codecs(8000, ["opus"]) == ["opus"]


def test_config_block_validates_addresses() -> None:
    assert parse_config({}).cascade.part_size == 0
    with pytest.raises((ConfigError, ValueError)):
        parse_config({"cascade": {"part_nodes": ["no-port"]}})
    with pytest.raises((ConfigError, ValueError)):
        parse_config({"cascade": {"node_address": "127.0.0.1:70000"}})


def test_pinned_slot_is_never_evicted_by_the_talker_cap() -> None:
    mixer = Mixer(8000, max_talkers=2)
    slots = [mixer.add() for _ in range(4)]
    mixer.pinned[slots[3]] = True
    t = np.arange(160) / 8000
    for _ in range(30):
        for slot, amp in zip(slots, (20000, 16000, 12000, 800), strict=True):
            mixer.inputs[slot] = (np.sin(2 * np.pi * 400 * t) * amp).astype(np.int16)
            mixer.present[slot] = True
        report = mixer.mix()
    # The quiet pinned trunk is mixed, plus the two loudest others.
    assert sorted(report.contributors.tolist()) == [slots[0], slots[1], slots[3]]


# --------------------------------------------------------------------------- owner node, no sockets


class NodePhone(Phone):
    """A caller whose INVITE may carry the trunk header or a tutti-owner URI parameter."""

    def __init__(self, bridge: Bridge, n: int, uri_params: str = "", header: str | None = None) -> None:
        super().__init__(bridge, n)
        self.uri_params, self.header = uri_params, header

    def _request(self, method: str, body: bytes = b"", ctype: str = "application/sdp",
                 cseq_method: str | None = None) -> bytes:
        data = super()._request(method, body, ctype, cseq_method)
        if method == "INVITE":
            first, rest = data.split(b"\r\n", 1)
            first = first.replace(f"@{BRIDGE_HOST}".encode(), f"@{BRIDGE_HOST}{self.uri_params}".encode())
            extra = f"{self.header}\r\n".encode() if self.header else b""
            data = first + b"\r\n" + extra + rest
        return data


def _node_phone(bridge: Bridge, **kwargs: Any) -> NodePhone:
    p = NodePhone(bridge, len(bridge.phones) + 1, **kwargs)
    bridge.phones[p.addr] = p
    return p


def _level(phone: Phone, freq: float) -> float:
    """The tone's peak in the spectrum of the last 200 ms the bridge sent ``phone``."""
    assert phone.transport is not None
    decoder = make_decoder("PCMU")
    frames = [RtpPacket.parse(d) for d in phone.transport.received[-10:]]
    pcm = np.concatenate([decoder.decode(f.payload) for f in frames if f.payload_type == 0]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm))
    bin_ = int(round(freq * len(pcm) / 8000))
    return float(spectrum[bin_ - 2:bin_ + 3].max())


def _owner(tmp_path: Path, trusted: str = "10.0.0.2/32", **settings: Any) -> Bridge:
    b = Bridge(tmp_path, cascade={"part_size": 1, "part_nodes": ["127.0.0.1:5072"]},
               security={"trusted_proxies": [trusted]})
    b.directory.add("room1", **settings)
    return b


def test_owner_redirects_the_caller_past_the_part_size(tmp_path: Path) -> None:
    b = _owner(tmp_path, member_pins=("4321",))
    first = b.phone()
    first.call("1234")                 # still in the PIN prompt: counts already
    second = b.phone()
    second.dial("1234")
    moved = second.responses[-1]
    assert moved.status == 302
    assert moved.headers.get("contact") == "<sip:1234@127.0.0.1:5072;tutti-owner=192.0.2.1:5060>"


def test_trunk_or_owner_from_an_untrusted_address_is_refused(tmp_path: Path) -> None:
    b = _owner(tmp_path, trusted="10.0.0.99/32")
    rogue = _node_phone(b, header=f"{HEADER}: part;node=10.0.0.1:5060")
    rogue.dial("1234")
    assert rogue.last_status() == 403
    part = _node_phone(b, uri_params=";tutti-owner=10.0.0.1:5060")
    part.dial("1234")
    assert part.last_status() == 403
    assert not b.core.legs_by_call and b.events == []


def test_trunk_is_mixed_both_ways_but_hidden(tmp_path: Path) -> None:
    b = _owner(tmp_path, member_pins=("4321",), max_participants=1)
    caller = b.phone()
    caller.call("1234")
    b.run(0.3)
    for digit in "4321#":
        caller.press(digit)
        b.run(0.1)
    b.run(0.5)
    assert [p.status for p in b.core.book.listing("room1")] == ["connected"]
    assert "alone" in b.prompts.played
    played = len(b.prompts.played)
    # The part node's trunk: no PIN asked, no cap (max_participants=1), no redirect (part_size=1
    # is reached), no events, not listed, no prompt for anyone.
    trunk = _node_phone(b, header=f"{HEADER}: part;node=10.0.0.2:5060")
    trunk.call("1234")
    b.run(1.0, speak={caller: 500.0, trunk: 1500.0})
    live = b.core.rooms["room1"]
    assert len(live.trunks) == 1 and len(live.members) == 1
    tid = next(iter(live.trunks))
    assert [p.participant_id for p in b.core.book.listing("room1")] == list(live.members)
    assert b.prompts.played[played:] == []
    assert all(getattr(e, "participant_id", None) != tid for e in b.events)
    assert _level(trunk, 500.0) > 30 * _level(trunk, 1500.0)      # the caller, not itself
    assert _level(caller, 1500.0) > 30 * _level(caller, 500.0)
    assert next(iter(live.members.values())).background == "none"   # not "alone" any more
    # The trunk leaves: out of the room, nothing published about it, the caller stays.
    trunk.bye()
    b.run(0.2)
    assert not live.trunks and "room1" in b.core.rooms
    assert all(getattr(e, "participant_id", None) != tid for e in b.events)


def test_owner_room_lives_while_the_trunk_does(tmp_path: Path) -> None:
    b = _owner(tmp_path)
    caller = b.phone()
    caller.call("1234")
    trunk = _node_phone(b, header=f"{HEADER}: part;node=10.0.0.2:5060")
    trunk.call("1234")
    b.run(0.2)
    caller.bye()
    b.run(0.2)
    assert "room1" in b.core.rooms and "conference.ended" not in b.names("room1")
    trunk.bye()
    b.run(0.2)
    assert "room1" not in b.core.rooms and b.names("room1").count("conference.ended") == 1


# --------------------------------------------------------------------------- part node, no sockets


class OwnerNode(Trunk):
    """The owner node as a scripted far end: answers the trunk, records what it was sent."""

    def __init__(self, bridge: Bridge, answer: list[int]) -> None:
        super().__init__(bridge, answer)
        self.methods: list[str] = []

    def on_request(self, req: SipRequest) -> None:
        self.methods.append(req.method)
        super().on_request(req)


def test_part_node_dials_one_trunk_and_hangs_it_up_with_its_last_caller(tmp_path: Path) -> None:
    b = Bridge(tmp_path, security={"trusted_proxies": ["10.0.0.0/24"]})
    b.directory.add("room1")
    owner = OwnerNode(b, [100, 200])             # node A, as far as this node can tell
    b.phones[TRUNK_ADDR] = owner
    param = f";tutti-owner={TRUNK_ADDR[0]}:{TRUNK_ADDR[1]}"
    first, second = _node_phone(b, uri_params=param), _node_phone(b, uri_params=param)
    first.call("1234")
    b.run(0.2)
    assert len(owner.invites) == 1
    invite = owner.invites[0]
    assert invite.uri.user_text == "1234" and (invite.uri.host, invite.uri.port) == TRUNK_ADDR
    assert invite.headers.get(HEADER) == "part;node=192.0.2.1:5060"
    assert b"PCMU" in invite.body and b"G722" not in invite.body      # an 8 kHz room: PCMU
    owner.transport = b.media.by_port[Phone._answer_port_of(invite)]
    second.call("1234")
    b.run(1.0, speak={first: 500.0, second: 1000.0, owner: 1500.0})
    assert len(owner.invites) == 1                                      # one trunk per part
    live = b.core.rooms["room1"]
    assert len(live.trunks) == 1 and len(live.members) == 2
    # A's voices reach B's callers; B's callers reach A, minus A's own.
    assert _level(first, 1500.0) > 30 * _level(first, 500.0) and _level(first, 1000.0) > 30 * _level(first, 500.0)
    assert _level(owner, 500.0) > 30 * _level(owner, 1500.0) and _level(owner, 1000.0) > 30 * _level(owner, 1500.0)
    assert "alone" not in b.prompts.played                  # the trunk was on its way from the start
    tid = next(iter(live.trunks))
    assert all(getattr(e, "participant_id", None) != tid for e in b.events)
    assert len(b.core.book.listing("room1")) == 2
    first.bye()
    b.run(0.2)
    assert "BYE" not in owner.methods and b.core.cascade.trunks
    second.bye()
    b.run(0.2)
    assert owner.methods.count("BYE") == 1
    assert not b.core.cascade.trunks and "room1" not in b.core.rooms
    assert not b.core.legs_by_call
