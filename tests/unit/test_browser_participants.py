"""Browser participants in the sans-IO core, and the pure parts of the invitations and the port."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from bridge_codecs.opus import OpusDecoder, OpusEncoder

from bridge.adapters.webrtc import BrowserPort, advertise, opus_fmtp, page_ice_servers
from bridge.call.browser import BrowserRefused
from bridge.config import WebrtcConfig
from bridge.control.errors import ControlError
from bridge.control.events import ParticipantJoined, ParticipantLeft
from bridge.control.invite import JoinDetails, body_text, ics, message, parse_recipients
from bridge.rtp.jitter import Empty, Frame, Missing
from tests.unit.call_harness import T0, Bridge


class ToneBrowser:
    """A browser as the room sees it: Opus RTP packets (seq, timestamp, payload) into its port,
    the room's Opus packets out of it."""

    def __init__(self, freq: float | None, rate: int = 48000) -> None:
        self.port = BrowserPort()
        self.freq, self.rate, self.n = freq, rate, 0
        self.encoder = OpusEncoder(fec=True, packet_loss=20)
        self.decoder = OpusDecoder(rate)
        self.heard: list[np.ndarray] = []

    def speak(self, lose: bool = False) -> None:
        t = (np.arange(960) + self.n * 960) / 48000
        level = 0.0 if self.freq is None else 8000.0
        payload = self.encoder.encode((level * np.sin(2 * np.pi * (self.freq or 0) * t)).astype(np.int16))
        if not lose:
            self.port.push_rtp(self.n, self.n * 960, 0x1234, self.n == 0, payload, self.n * 0.02)
        self.n += 1

    def collect(self) -> None:
        while not self.port.outbound.empty():
            payload, ticks = self.port.outbound.get_nowait()
            assert ticks == 960
            self.heard.append(self.decoder.decode(payload).astype(np.float64))

    def hears(self, freq: float) -> bool:
        pcm = np.concatenate(self.heard[-10:])
        spectrum = np.abs(np.fft.rfft(pcm))
        b = round(freq * len(pcm) / self.rate)
        # Within 26 dB of the strongest tone (codec distortion of another tone stays far below).
        peak = spectrum[b - 2:b + 3].max()
        return bool(peak > 10 * (np.median(spectrum) + 1) and peak > 0.05 * spectrum.max())


def run(bridge: Bridge, seconds: float, browser: ToneBrowser, phone_freq: dict | None = None) -> None:
    for _ in range(round(seconds / 0.02)):
        browser.speak()
        bridge.run(0.02, phone_freq)
        browser.collect()


@pytest.fixture
def bridge(tmp_path: Path) -> Bridge:
    b = Bridge(tmp_path)
    b.directory.add("conf_a", beep="never")
    return b


def test_browser_and_caller_hear_each_other_and_a_kick_removes_the_browser(bridge: Bridge) -> None:
    phone = bridge.phone()
    phone.call("conf_a")
    web = ToneBrowser(1000.0)
    p = bridge.core.browsers.join("conf_a", "Ada", "member", web.port, bridge.now)
    assert p.kind == "webrtc" and p.status == "connected"
    run(bridge, 1.0, web, {phone: 500.0})
    assert web.hears(500.0) and not web.hears(1000.0)
    assert phone.hears(1000.0)
    joined = [e for e in bridge.events if isinstance(e, ParticipantJoined) and e.participant_id == p.participant_id]
    assert joined and joined[0].kind == "webrtc" and joined[0].caller_name == "Ada"
    # Muting the page: the caller stops hearing the browser.
    assert bridge.core.browsers.set_muted(p.participant_id, True, bridge.now)
    run(bridge, 0.5, web, {phone: 500.0})
    assert not phone.hears(1000.0)
    # A REST kick reaches a browser as it reaches a caller: out of the room, listed as left.
    assert bridge.core.act("conf_a", p.participant_id, "kick", bridge.now)
    run(bridge, 0.1, web)
    left = [e for e in bridge.events if isinstance(e, ParticipantLeft) and e.participant_id == p.participant_id]
    assert [e.reason for e in left] == ["kicked"]
    assert p.participant_id not in bridge.core.browsers.seated
    listed = {v.participant_id: v.status for v in bridge.core.participants("conf_a")}
    assert listed[p.participant_id] == "disconnected"


def test_refusals_and_the_room_closes_with_its_last_browser(bridge: Bridge) -> None:
    with pytest.raises(BrowserRefused) as err:
        bridge.core.browsers.join("nowhere", "Ada", "member", BrowserPort(), bridge.now)
    assert err.value.reason == "ended"
    bridge.directory.add("conf_later", scheduled_for=T0 + timedelta(hours=1))
    with pytest.raises(BrowserRefused) as err:
        bridge.core.browsers.join("conf_later", "Ada", "member", BrowserPort(), bridge.now)
    assert err.value.reason == "not_started"
    p = bridge.core.browsers.join("conf_a", "Ada", "moderator", BrowserPort(), bridge.now)
    bridge.core.rooms["conf_a"].locked = True
    with pytest.raises(BrowserRefused) as err:
        bridge.core.browsers.join("conf_a", "Bob", "member", BrowserPort(), bridge.now)
    assert err.value.reason == "room_locked"
    assert bridge.core.browsers.leave(p.participant_id, "hangup", bridge.now)
    bridge.run(0.04)
    assert "conf_a" not in bridge.core.rooms
    assert "conference.ended" in bridge.names("conf_a")


def test_browser_port_pops_the_jitter_buffer_and_bounds_what_it_sends() -> None:
    port = BrowserPort()
    assert isinstance(port.pop_frame(), Empty)
    for seq in range(4):
        port.push_rtp(seq, seq * 960, 7, seq == 0, bytes([seq]) * 10, seq * 0.02)
    # The first packet ends no probation (RtpSession): it is counted, not played.
    assert [port.pop_frame().payload for _ in range(3)] == [bytes([s]) * 10 for s in range(1, 4)]
    assert port.received == 4
    for i in range(10):
        port.packetize(bytes([i]) * 40, 960)
    assert port.outbound.qsize() == 3 and port.outbound.get_nowait() == (bytes([7]) * 40, 960)


def test_the_offers_opus_fmtp() -> None:
    sdp = ("m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\na=rtpmap:111 opus/48000/2\r\n"
           "a=fmtp:63 111/111\r\na=fmtp:111 minptime=10;useinbandfec=1;maxaveragebitrate=24000\r\n")
    assert opus_fmtp(sdp) == "minptime=10;useinbandfec=1;maxaveragebitrate=24000"
    assert opus_fmtp("m=audio 9 RTP/AVP 0\r\n") == ""


def test_advertised_address_rewrites_host_candidates_only() -> None:
    sdp = ("a=candidate:1 1 udp 2130706431 10.0.0.5 40000 typ host\r\n"
           "a=candidate:2 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 10.0.0.5 rport 40000\r\n")
    out = advertise(sdp, "203.0.113.9")
    assert "203.0.113.9 40000 typ host" in out and "198.51.100.7 40000 typ srflx" in out
    assert advertise(sdp, None) == sdp


def test_invitation_addresses_are_validated() -> None:
    assert parse_recipients({"emails": ["a@example.org", "A@example.org", " b@example.com "]}) == [
        "a@example.org", "b@example.com"]
    for bad in (None, [], ["x"], ["a@b"], ["a b@example.org"], ["a@example.org\r\nBcc: c@example.org"],
                ["a@example.org"] * 51, [1]):
        with pytest.raises(ControlError) as err:
            parse_recipients({"emails": bad})
        assert err.value.status == 400


def test_invitation_text_and_calendar(bridge: Bridge) -> None:
    conf = dataclasses.replace(bridge.directory.add(
        "conf_s", code="5555", member_pins=("1234",), scheduled_for=T0 + timedelta(days=1), duration_minutes=30),
        name="Board meeting, Q3; final")
    links = JoinDetails("http://bridge.example/conferences/conf_s/join", "sip:conf_s@bridge.example",
                        "sip:conference@bridge.example", None)
    text = body_text(conf, links)
    assert "PIN: 1234" in text and "sip:conference@bridge.example" in text and "5555" in text
    cal = ics(conf, links, T0, "bridge.example")
    assert cal is not None
    assert "SUMMARY:Board meeting\\, Q3\\; final\r\n" in cal
    assert all(len(line.encode()) <= 75 for line in cal.split("\r\n"))
    msg = message(conf, links, "b@example.org", "a@example.org", T0, "bridge.example")
    assert [p.get_filename() for p in msg.iter_attachments()] == ["invite.ics"]
    unscheduled = bridge.directory.add("conf_n")
    assert ics(unscheduled, links, T0, "h") is None


def test_ending_the_conference_ends_the_browser_after_the_closing_prompt(bridge: Bridge) -> None:
    web = ToneBrowser(None)
    p = bridge.core.browsers.join("conf_a", "Ada", "member", web.port, bridge.now)
    run(bridge, 0.2, web)
    bridge.core.end_conference("conf_a", "ended_via_api", bridge.now)
    run(bridge, 9.0, web)
    left = [e.reason for e in bridge.events if isinstance(e, ParticipantLeft) and e.participant_id == p.participant_id]
    assert left == ["conference_ended"]
    assert "conf_a" not in bridge.core.rooms and not bridge.core.browsers.seated


def test_ice_servers_for_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURN_PW", "s3cret")
    cfg = WebrtcConfig(ice_servers=("stun:stun.example.org:3478", "turn:turn.example.org:3478"),
                       turn_username="bridge", turn_password_env="TURN_PW")
    assert page_ice_servers(cfg) == [
        {"urls": "stun:stun.example.org:3478"},
        {"urls": "turn:turn.example.org:3478", "username": "bridge", "credential": "s3cret"}]


def test_a_lost_browser_packet_is_popped_as_missing_with_its_successor() -> None:
    port = BrowserPort()
    for seq in (0, 1, 2, 4, 5):           # the first is counted, not played (probation)
        port.push_rtp(seq, seq * 960, 7, seq == 0, bytes([seq]) * 10, seq * 0.02)
    items = [port.pop_frame() for _ in range(5)]
    assert [type(i) for i in items] == [Frame, Frame, Missing, Frame, Frame]
    assert items[2].next_payload == bytes([4]) * 10           # its FEC rebuilds the lost frame
    assert port.lost == 1


def test_the_room_rebuilds_a_lost_browser_packet_from_fec_instead_of_going_silent() -> None:
    """A browser talking a 300 Hz tone loses one packet: the listener still hears the tone in that
    tick, rebuilt by the room's Opus decoder from the next packet's in-band FEC."""
    from bridge.media.room import Room

    room = Room("r", 16000, max_talkers=0)
    talker, listener = ToneBrowser(300.0, 16000), ToneBrowser(None, 16000)
    room.add_leg("talker", talker.port, "opus", "opus", payload_type=111)
    room.add_leg("listener", listener.port, "opus", "opus", payload_type=111)
    heard = []
    for tick in range(30):
        talker.speak(lose=tick == 20)
        if tick == 20:
            talker.speak()          # the next packet is here when the gap is due
        listener.speak()
        room.tick(100.0 + tick * 0.02)
        listener.collect()
        heard.append(listener.heard[-1] if listener.heard else np.zeros(320))

    def level(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x ** 2)))

    assert room._legs["talker"].decoder.fec_frames == 1
    state = next(s for s in room.participants_snapshot() if s.leg_id == "talker")
    assert (state.frames_fec, state.frames_concealed) == (1, 0)      # what the listing shows
    steady = level(heard[18])
    assert steady > 1000
    assert level(heard[21]) > 0.5 * steady                 # the lost frame, a tick of decoder delay later
