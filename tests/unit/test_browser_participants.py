"""Browser participants in the sans-IO core, and the pure parts of the invitations and the port."""

from __future__ import annotations

import dataclasses
from collections import deque
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from bridge_codecs import make_decoder, make_encoder

from bridge.adapters.webrtc import BrowserPort, advertise, page_ice_servers
from bridge.config import WebrtcConfig
from bridge.call.browser import BrowserRefused
from bridge.control.errors import ControlError
from bridge.control.events import ParticipantJoined, ParticipantLeft
from bridge.control.invite import JoinDetails, body_text, ics, message, parse_recipients
from bridge.rtp.jitter import Empty, Missing
from tests.unit.call_harness import T0, Bridge

_BE = np.dtype(">i2")


class ToneBrowser:
    """A browser as the room sees it: L16 big-endian at the room rate, in and out."""

    def __init__(self, freq: float | None, rate: int = 8000) -> None:
        self.port = BrowserPort(rate)
        self.freq, self.rate, self.n = freq, rate, 0
        self.heard: list[np.ndarray] = []

    def speak(self) -> None:
        samples = self.rate // 50  # one 20 ms frame
        t = (np.arange(samples) + self.n * samples) / self.rate
        self.n += 1
        level = 0.0 if self.freq is None else 8000.0
        self.port.push_pcm((level * np.sin(2 * np.pi * (self.freq or 0) * t)).astype(np.int16))

    def collect(self) -> None:
        while not self.port.outbound.empty():
            self.heard.append(np.frombuffer(self.port.outbound.get_nowait(), dtype=_BE).astype(np.float64))

    def hears(self, freq: float) -> bool:
        pcm = np.concatenate(self.heard[-10:])
        spectrum = np.abs(np.fft.rfft(pcm))
        b = round(freq * len(pcm) / self.rate)
        return bool(spectrum[b - 2:b + 3].max() > 10 * (np.median(spectrum) + 1))


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
        bridge.core.browsers.join("nowhere", "Ada", "member", BrowserPort(8000), bridge.now)
    assert err.value.reason == "ended"
    bridge.directory.add("conf_later", scheduled_for=T0 + timedelta(hours=1))
    with pytest.raises(BrowserRefused) as err:
        bridge.core.browsers.join("conf_later", "Ada", "member", BrowserPort(8000), bridge.now)
    assert err.value.reason == "not_started"
    p = bridge.core.browsers.join("conf_a", "Ada", "moderator", BrowserPort(8000), bridge.now)
    bridge.core.rooms["conf_a"].locked = True
    with pytest.raises(BrowserRefused) as err:
        bridge.core.browsers.join("conf_a", "Bob", "member", BrowserPort(8000), bridge.now)
    assert err.value.reason == "room_locked"
    assert bridge.core.browsers.leave(p.participant_id, "hangup", bridge.now)
    bridge.run(0.04)
    assert "conf_a" not in bridge.core.rooms
    assert "conference.ended" in bridge.names("conf_a")


def test_browser_port_bounds_both_directions() -> None:
    port = BrowserPort(16000)
    assert isinstance(port.pop_frame(), Empty)
    for i in range(20):
        port.push_pcm(np.full(320, i, np.int16))
    assert len(port.inbound) == 6                        # the oldest are dropped: latency stays bounded
    frame = port.pop_frame()
    assert np.frombuffer(frame.payload, dtype=_BE)[0] == 14
    for i in range(10):
        port.packetize(bytes([i]) * 640, 320)
    assert port.outbound.qsize() == 3 and port.outbound.get_nowait() == bytes([7]) * 640


def test_l16_at_the_room_rate_by_name() -> None:
    assert make_decoder("L16/16000", frame_ms=20).sample_rate == 16000
    assert make_encoder("L16/48000", frame_ms=20).sample_rate == 48000
    assert make_decoder("L16", frame_ms=20).sample_rate == 8000


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


def test_a_gap_in_the_pts_counts_whole_lost_frames() -> None:
    from bridge.adapters.webrtc import lost_frames

    assert lost_frames(0, None, 960) == 0                   # the first frame
    assert lost_frames(960, 960, 960) == 0                  # on time
    assert lost_frames(900, 960, 960) == 0                  # early: reordering is not loss
    assert lost_frames(960 + 400, 960, 960) == 0            # under half a frame
    assert lost_frames(2 * 960, 960, 960) == 1
    assert lost_frames(4 * 960 + 100, 960, 960) == 3
    assert lost_frames(None, 960, 960) == 0


def test_a_lost_browser_frame_is_popped_as_missing_with_its_successor() -> None:
    port = BrowserPort(16000)
    port.push_pcm(np.full(320, 1, np.int16))
    port.push_lost(1)
    port.push_pcm(np.full(320, 2, np.int16))
    assert np.frombuffer(port.pop_frame().payload, dtype=_BE)[0] == 1
    missing = port.pop_frame()
    assert isinstance(missing, Missing) and np.frombuffer(missing.next_payload, dtype=_BE)[0] == 2
    assert np.frombuffer(port.pop_frame().payload, dtype=_BE)[0] == 2
    assert isinstance(port.pop_frame(), Empty) and port.lost == 1


class _FrameTrack:
    """aiortc's remote track as far as read_track uses it: Opus-decoded 48 kHz frames whose pts
    follow the RTP timestamps (a lost packet leaves a gap), then the end of the track."""

    def __init__(self, tone_hz: float, frames: int, lose: set[int]) -> None:
        self.items = []
        for i in range(frames):
            if i in lose:
                continue
            t = (np.arange(960) + 960 * i) / 48000
            pcm = (8000 * np.sin(2 * np.pi * tone_hz * t)).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 48000, 960 * i
            self.items.append(frame)

    async def recv(self) -> av.AudioFrame:
        if not self.items:
            raise MediaStreamError
        return self.items.pop(0)


async def test_read_track_turns_an_opus_gap_into_a_lost_frame() -> None:
    from bridge.adapters.webrtc import read_track

    port = BrowserPort(16000)
    port.inbound = deque(maxlen=64)                        # keep every frame for the check
    with pytest.raises(MediaStreamError):
        await read_track(_FrameTrack(300.0, 10, lose={5}), port)   # type: ignore[arg-type]
    kinds = ["lost" if f is None else "pcm" for f in port.inbound]
    assert port.lost == 1 and kinds.count("lost") == 1
    assert 3 <= kinds.index("lost") <= 5 and kinds.count("pcm") >= 7


def test_the_room_conceals_a_lost_browser_frame_instead_of_going_silent() -> None:
    """A browser talking a 300 Hz tone loses one frame: the listener still hears the tone in that
    tick (L16 concealment continues its pitch); without the lost-frame marker it heard nothing."""
    from bridge.media.room import Room

    room = Room("r", 16000, max_talkers=0)
    talker, listener = ToneBrowser(300.0, 16000), ToneBrowser(None, 16000)
    room.add_leg("talker", talker.port, "L16/16000", "L16/16000", payload_type=96)
    room.add_leg("listener", listener.port, "L16/16000", "L16/16000", payload_type=96)
    heard = []
    for tick in range(30):
        if tick == 20:
            talker.port.push_lost(1)
            talker.n += 1
        else:
            talker.speak()
        listener.speak()
        room.tick(100.0 + tick * 0.02)
        out = listener.port.outbound
        heard.append(np.frombuffer(out.get_nowait(), dtype=_BE).astype(float) if not out.empty() else np.zeros(320))

    def level(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x ** 2)))

    steady = level(heard[18])
    assert steady > 1000
    assert level(heard[20]) > 0.3 * steady                 # concealed, not silence
