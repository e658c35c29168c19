"""The in-call experience with real softphones: PINs, the access number, waiting for the
host, beeps, webinar listeners, full rooms. DTMF is sent by baresip as RFC 4733."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.media.prompts import prompt_path
from tests.e2e.calls import Participant, dial_all, hang_up_all, participants, talk
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip")]

ROOMS: list[dict[str, Any]] = [
    {"name": "secure", "dial_in_code": "2001", "account": "acct1", "member_pins": ["1111"],
     "moderator_pins": ["9999"]},
    {"name": "plain", "dial_in_code": "2002", "account": "acct1"},
    {"name": "hosted", "account": "acct1", "moderator_pins": ["9999"], "wait_for_moderator": True},
    {"name": "quiet", "account": "acct1", "beep": "never"},
    {"name": "beeping", "account": "acct1", "beep": "on_enter"},
    {"name": "seminar", "account": "acct1", "profile": "webinar", "moderator_pins": ["9999"]},
    {"name": "tiny", "account": "acct1", "max_participants": 1},
]
ENTRY_HIGH_HZ = 660.0  # second half of the entry tone (440 -> 660 Hz); hold music has no 660


@pytest.fixture
def bridge(bridge_factory: Callable[..., BridgeProcess]) -> BridgeProcess:
    return bridge_factory(rooms=ROOMS)


def log_count(bridge: BridgeProcess, text: str) -> int:
    return bridge.log_path.read_text(errors="replace").count(text)


def wait_log(bridge: BridgeProcess, text: str, count: int = 1, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while log_count(bridge, text) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} x{count} not in bridge log:\n{bridge.log_tail()}")
        time.sleep(0.1)


def roles(bridge: BridgeProcess, conf_id: str) -> dict[str, str]:
    status, body = bridge.api("GET", f"/v2/conferences/{conf_id}/participants")
    assert status == 200, body
    return {p["phone_number"]: p["role"] for p in body["participants"]}


def test_pin_wrong_three_times_member_and_moderator(bridge: BridgeProcess, ports: PortAllocator,
                                                    tmp_path: Path) -> None:
    specs = [("intruder", "PCMU", None), ("member", "PCMU", None), ("boss", "PCMU", None)]
    with participants(tmp_path, ports, specs) as people:
        intruder, member, boss = (p.phone for p in people)
        dial_all(bridge, people, "secure")
        intruder.send_dtmf("1234#")
        member.send_dtmf("1111#")
        boss.send_dtmf("9999#")
        wait_log(bridge, "joined conf_secure as member")
        wait_log(bridge, "joined conf_secure as moderator")
        assert roles(bridge, "conf_secure") == {"member": "member", "boss": "moderator"}
        time.sleep(0.5)
        intruder.send_dtmf("2345#")
        time.sleep(0.5)
        intruder.send_dtmf("3456#")
        intruder.wait_event("CALL_CLOSED", timeout=15)  # too_many_attempts prompt, then our BYE
        assert "IVR ends the call (too_many_attempts)" in bridge.log_path.read_text()
        assert "intruder" not in roles(bridge, "conf_secure")
        hang_up_all([people[1], people[2]])


def test_access_number_with_dial_in_code(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    with participants(tmp_path, ports, [("dialer", "PCMU", None)]) as people:
        dial_all(bridge, people, "conference")
        people[0].phone.send_dtmf("2002#")
        wait_log(bridge, "joined conf_plain as member")
        assert roles(bridge, "conf_plain") == {"dialer": "member"}
        hang_up_all(people)


def test_access_number_code_then_pin(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    with participants(tmp_path, ports, [("dialer", "PCMU", None)]) as people:
        dial_all(bridge, people, "conference")
        people[0].phone.send_dtmf("2001#")
        time.sleep(0.5)
        people[0].phone.send_dtmf("9999#")
        wait_log(bridge, "joined conf_secure as moderator")
        hang_up_all(people)


def prompt_seconds(name: str) -> float:
    samples, rate = audio.read_wav(Path(prompt_path(name)))
    return len(samples) / rate


def music_seconds(samples: audio.Samples, rate: int) -> float:
    return sum(audio.tone_presence(samples, rate, f, min_rel_db=-10) for f in (294.0, 349.0, 440.0, 587.0))


def test_members_wait_for_the_host_with_music(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    # Voices far from the hold-music notes (294-587 Hz), so music is never mistaken for a voice.
    specs = [("m1", "PCMU", 800.0), ("m2", "PCMU", 1200.0), ("host", "PCMU", 1000.0)]
    with participants(tmp_path, ports, specs) as people:
        m1, m2, host = people
        dial_all(bridge, [m1, m2], "hosted")
        t0 = time.monotonic()
        m1.phone.send_dtmf("#")
        m2.phone.send_dtmf("#")
        wait_log(bridge, "(waiting for a moderator)", 2)
        talk(7.0)
        dial_all(bridge, [host], "hosted")
        host.phone.send_dtmf("9999#")
        wait_log(bridge, "joined conf_hosted as moderator")
        t_host = time.monotonic() - t0
        talk(3.0)
        hang_up_all(people)
        for me, other in ((m1, m2), (m2, m1)):
            samples, rate = me.heard()
            # From the end of the spoken "please wait" prompt until the host arrives: only music.
            waiting = audio.segment(samples, rate, prompt_seconds("wait_moderator") + 0.8, t_host - 0.3)
            assert len(waiting) > 2 * rate
            after = audio.segment(samples, rate, t_host + 0.8, len(samples) / rate - 0.3)
            assert music_seconds(waiting, rate) > 1.0, f"{me.name} heard no hold music while waiting"
            for voice in (other, host):
                assert audio.tone_presence(waiting, rate, voice.freq, min_rel_db=-20) == 0.0, (
                    f"{me.name} heard {voice.name} while waiting for the host")
            assert audio.has_tone(after, rate, host.freq, min_rel_db=-15, min_seconds=0.5)
            assert audio.has_tone(after, rate, other.freq, min_rel_db=-15, min_seconds=0.5)
            assert music_seconds(after, rate) < 0.3, f"{me.name} still hears music with the host there"
        samples, rate = host.heard()
        assert audio.has_tone(samples, rate, m1.freq, min_rel_db=-15, min_seconds=0.5)
        assert audio.has_tone(samples, rate, m2.freq, min_rel_db=-15, min_seconds=0.5)


def entry_tone_heard(first: Participant, second: Participant, bridge: BridgeProcess, room: str) -> float:
    """Seconds of the entry tone's 660 Hz the first caller hears around the second's arrival."""
    dial_all(bridge, [first], room)
    t0 = time.monotonic()
    talk(3.5)       # past the 2.6 s "you are alone" prompt: its speech has energy near 660 Hz
    dial_all(bridge, [second], room)
    t_join = time.monotonic() - t0
    talk(2.0)
    hang_up_all([first, second])
    samples, rate = first.heard()
    window = audio.segment(samples, rate, t_join - 0.3, t_join + 1.2)
    return audio.tone_presence(window, rate, ENTRY_HIGH_HZ, min_rel_db=-10, window=0.05)


@pytest.mark.parametrize("room,expected", [("plain", True), ("beeping", True), ("quiet", False)])
def test_entry_tone_follows_beep_mode(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path,
                                      room: str, expected: bool) -> None:
    with participants(tmp_path, ports, [("first", "PCMU", None), ("second", "PCMU", None)]) as people:
        heard = entry_tone_heard(people[0], people[1], bridge, room)
    if expected:
        assert heard >= 0.05, f"no entry tone in {room}"
    else:
        assert heard == 0.0, f"entry tone played in {room} (beep: never)"


def test_webinar_listener_never_heard(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    specs = [("listener1", "PCMU", 800.0), ("listener2", "PCMU", 1200.0), ("presenter", "PCMU", 1000.0)]
    with participants(tmp_path, ports, specs) as people:
        l1, l2, presenter = people
        dial_all(bridge, people, "seminar")
        t0 = time.monotonic()
        l1.phone.send_dtmf("#")
        l2.phone.send_dtmf("#")
        presenter.phone.send_dtmf("9999#")
        wait_log(bridge, "joined conf_seminar as listener", 2)
        wait_log(bridge, "joined conf_seminar as moderator")
        assert roles(bridge, "conf_seminar") == {"listener1": "listener", "listener2": "listener",
                                                 "presenter": "moderator"}
        t_all = time.monotonic() - t0
        talk(3.0)
        hang_up_all(people)
        for p in people:
            samples, rate = p.heard()
            # Once everyone is in (before that: PIN prompts, hold music while alone, beeps).
            samples = audio.segment(samples, rate, t_all + 0.8, len(samples) / rate - 0.3)
            for listener in (l1, l2):
                if listener is not p:
                    level = audio.tone_level_db(samples, rate, listener.freq)
                    assert level < -30, f"{p.name} heard webinar listener {listener.name} ({level:.1f} dB)"
        for listener in (l1, l2):
            samples, rate = listener.heard()
            assert audio.has_tone(samples, rate, 1000.0, min_rel_db=-15, min_seconds=1.0)


def test_full_room_refuses_with_486(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    with participants(tmp_path, ports, [("inside", "PCMU", None), ("late", "PCMU", None)]) as people:
        inside, late = people
        dial_all(bridge, [inside], "tiny")
        late.phone.dial(f"sip:tiny@127.0.0.1:{bridge.sip_port}")
        closed = late.phone.wait_event("CALL_CLOSED", timeout=10)
        assert "486" in str(closed), closed
        assert "CALL_ESTABLISHED" not in late.phone.event_types()
        assert "rejected call to 'tiny': 486 Busy Here (conference is full)" in bridge.log_path.read_text()
        hang_up_all([inside])


def test_keypad_self_mute_toggle(bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path) -> None:
    specs = [("talker", "PCMU", 800.0), ("ear", "PCMU", 1200.0)]
    with participants(tmp_path, ports, specs) as people:
        talker, ear = people
        dial_all(bridge, people, "plain")
        t0 = time.monotonic()
        talk(2.0)
        talker.phone.send_dtmf("*6")
        t_mute = time.monotonic() - t0
        wait_log(bridge, "DTMF 6 (rfc4733)")
        talk(2.5)
        talker.phone.send_dtmf("*6")
        t_unmute = time.monotonic() - t0
        talk(2.0)
        hang_up_all(people)
        samples, rate = ear.heard()

        def heard(a: float, b: float) -> float:
            return audio.tone_presence(audio.segment(samples, rate, a, b), rate, 800.0, min_rel_db=-15)

        assert heard(0.8, t_mute - 0.2) > 0.5
        assert heard(t_mute + 0.6, t_unmute - 0.2) == 0.0, "*6 did not mute the talker"
        assert heard(t_unmute + 0.6, t_unmute + 1.8) > 0.5, "second *6 did not unmute"
