"""A browser under real packet loss: headless Chromium joins through a lossy UDP relay
(tests/support/udp_relay.py) that drops a seeded share of its RTP packets.

Uplink: a baresip caller in the same room records what it hears; the browser's tone is judged
per 20 ms window by Goertzel against what the same losses would leave without concealment, and
the participant listing must show that the bridge rebuilt lost frames from Chromium's in-band FEC.
Downlink: the browser's RTCP reports of the loss move its Opus encode into a loss bucket (FEC),
shown in the listing, and the page still hears the caller.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.browser import BROWSER_HZ, conference, join, page_heard, wait_listed
from tests.e2e.calls import participants
from tests.e2e.peers import audio
from tests.e2e.peers.ports import PortAllocator
from tests.support.bridge_proc import BridgeProcess
from tests.support.udp_relay import LossyRelay, loss_pattern

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("need_baresip"), pytest.mark.timeout(150)]

SEED = 17
LOSS = 0.10                 # random share of the browser's RTP packets dropped...
BURST_EVERY = 100           # ...plus one 3-packet burst per 100 packets (2 s)
STREAM = 2500               # packets the pattern covers (50 s): more than the test sends
WINDOW_S = 0.02             # Goertzel window
TONE_FLOOR = 0.25           # a window "has the tone" at a quarter of the median tone power (-6 dB)
TALK_S = 14.0               # how long the browser talks through the relay
SETTLE_S = 5.0              # Chromium codes FEC once its RTCP shows loss: judged after this
SIP_HZ = 500.0              # the caller's tone in the downlink test


def _route_through(page: Any, relay: LossyRelay) -> None:
    """The join request's offer and the bridge's answer each keep one candidate, the relay's."""
    def handle(route: Any, request: Any) -> None:
        if request.method != "POST":
            route.continue_()
            return
        body = request.post_data_json
        body["sdp"] = relay.route_offer(body["sdp"])
        response = route.fetch(post_data=json.dumps(body))
        answer = response.json()
        if response.status < 300:
            answer["sdp"] = relay.route_answer(answer["sdp"])
        route.fulfill(response=response, json=answer)

    page.route("**/join/session", handle)


def _tone_windows(samples: np.ndarray, rate: int) -> np.ndarray:
    """The browser tone's Goertzel power per consecutive 20 ms window."""
    n = int(rate * WINDOW_S)
    return np.array([audio.goertzel_power(samples[i:i + n], rate, BROWSER_HZ)
                     for i in range(0, len(samples) - n + 1, n)])


def test_browser_uplink_loss_is_concealed_and_rebuilt_from_chromium_fec(
    bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path, chromium: Any
) -> None:
    """10 % random loss plus a 3-packet burst every 2 s on Chromium's RTP to the bridge: the SIP
    listener still hears the tone in far more windows than the same losses played as silence
    would leave, and the listing's ``frames_fec`` shows most losses rebuilt from Chromium's FEC."""
    conf = conference(bridge, "room1")
    lost = loss_pattern(SEED, STREAM, LOSS, bursts=STREAM // BURST_EVERY)
    with LossyRelay((ports.port(), ports.port()), drop_up=lost.__contains__) as relay, \
            participants(tmp_path, ports, [("sip", "PCMU", None)], seconds=TALK_S + 10) as (sip,):
        sip.phone.dial(f"sip:room1@127.0.0.1:{bridge.sip_port}")
        sip.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        t0 = time.monotonic()
        page = chromium.new_page()
        _route_through(page, relay)
        join(page, conf["join_url"], "Ada")
        page.wait_for_selector("#call:not([hidden])", timeout=15000)
        wait_listed(bridge, conf["id"], "Ada")
        t_join = time.monotonic() - t0
        time.sleep(SETTLE_S)
        early, early_dropped = wait_listed(bridge, conf["id"], "Ada"), relay.dropped_up
        time.sleep(TALK_S - SETTLE_S)
        late, sent, dropped = wait_listed(bridge, conf["id"], "Ada"), relay.rtp_up, relay.dropped_up
        sip.phone.hangup()
        sip.phone.wait_event("CALL_CLOSED", timeout=10)
        samples, rate = sip.heard()
    assert relay.browser is not None and relay.bridge is not None and sent > 40 * TALK_S, (
        f"the browser's media did not go through the relay: {sent} RTP packets")
    share_lost = dropped / sent
    assert 0.1 <= share_lost <= 0.2, share_lost
    power = _tone_windows(audio.segment(samples, rate, t_join + SETTLE_S, t_join + TALK_S - 0.5), rate)
    heard = float(np.mean(power >= TONE_FLOOR * float(np.median(power))))
    # Played as silence, a lost 20 ms frame takes about one 20 ms window below a quarter of the
    # tone's power (more than half of it silent): 1 - share_lost would have the tone. Concealment
    # must give back at least a third of those windows (measured: 0.95-0.96 against 0.87, so
    # about two thirds; with lost frames made silent in the bridge this measured 0.85 and failed).
    silent = 1.0 - share_lost
    assert heard >= silent + share_lost / 3, (
        f"the tone in {heard:.3f} of the windows; {silent:.3f} without concealment at {share_lost:.1%} loss")
    # The bridge saw the losses (each missing frame is rebuilt or concealed) and, once Chromium
    # codes FEC, rebuilt many from the next packet's LBRR (measured: 0.75 of them in most runs;
    # fewer when Chromium's encoder spends stretches in CELT-only mode, which has no LBRR).
    missing = late["frames_fec"] + late["frames_concealed"]
    assert missing >= 0.9 * dropped, (missing, dropped)
    fec_late = late["frames_fec"] - early["frames_fec"]
    assert fec_late >= 0.25 * (dropped - early_dropped), (early, late, early_dropped, dropped)


def test_browser_downlink_loss_moves_its_encode_to_fec(
    bridge: BridgeProcess, ports: PortAllocator, tmp_path: Path, chromium: Any
) -> None:
    """10 % of the bridge's RTP packets to Chromium dropped: Chromium's receiver reports say so,
    and the listing's ``send_expected_loss`` shows its encode planning FEC for 10 % (bucket
    entered from 7 %); the page still hears the SIP caller's tone. Without loss it stays 0
    (test_browser_join's clean call checks that)."""
    conf = conference(bridge, "room1")
    lost = loss_pattern(SEED + 1, STREAM, LOSS, bursts=0)
    with LossyRelay((ports.port(), ports.port()), drop_down=lost.__contains__) as relay, \
            participants(tmp_path, ports, [("sip", "PCMU", SIP_HZ)], seconds=30.0) as (sip,):
        sip.phone.dial(f"sip:room1@127.0.0.1:{bridge.sip_port}")
        sip.phone.wait_event("CALL_ESTABLISHED", timeout=10)
        page = chromium.new_page()
        _route_through(page, relay)
        join(page, conf["join_url"], "Ada")
        page.wait_for_selector("#call:not([hidden])", timeout=15000)
        me = wait_listed(bridge, conf["id"], "Ada")
        deadline = time.monotonic() + 20.0        # RTCP every few seconds: a few reports
        while time.monotonic() < deadline and (me["send_expected_loss"] or 0) < 10:
            time.sleep(0.5)
            me = wait_listed(bridge, conf["id"], "Ada")
        heard, rate = page_heard(page, 2500)
        sip.phone.hangup()
        sip.phone.wait_event("CALL_CLOSED", timeout=10)
    assert relay.rtp_down > 100 and 0.05 < relay.dropped_down / relay.rtp_down < 0.15, (
        relay.rtp_down, relay.dropped_down)
    assert me["send_expected_loss"] in (10, 20), me
    assert audio.has_tone(heard, rate, SIP_HZ, min_rel_db=-15, min_seconds=1.0), (
        f"the page did not hear the caller's {SIP_HZ} Hz: {audio.tone_level_db(heard, rate, SIP_HZ):.1f} dB")
