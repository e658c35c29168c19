"""Per-listener Opus FEC: RTCP loss reports choose a listener's loss bucket (opus_loss.py), and
the room encodes each bucket once, with in-band FEC only where a listener loses packets."""

from __future__ import annotations

import numpy as np
import pytest
from bridge_codecs import make_encoder
from bridge_codecs.opus import packet_has_lbrr

from bridge.media.opus_loss import BUCKETS, DOWN_AFTER, LossBucket, bucket_for
from bridge.media.room import Room
from bridge.rtp.jitter import Frame
from tests.unit.test_opus_native import frames, voiced
from tests.unit.test_room import FakePort


def test_bucket_thresholds() -> None:
    assert [BUCKETS[bucket_for(f)] for f in (0.0, 0.019, 0.02, 0.069, 0.07, 0.149, 0.15, 1.0)] == \
        [0, 0, 5, 5, 10, 10, 20, 20]


def test_loss_moves_up_at_once_and_down_only_after_steady_reports() -> None:
    b = LossBucket()
    assert b.percent == 0
    assert b.report(0.12) and b.percent == 10           # one lossy report is enough to go up
    assert not b.report(0.05) and b.percent == 10       # inside the hysteresis band: stays
    for _ in range(DOWN_AFTER - 1):
        assert not b.report(0.0)
    assert b.report(0.0) and b.percent == 0             # DOWN_AFTER clean reports in a row
    assert b.report(0.30) and b.percent == 20


def test_a_lossy_report_restarts_the_way_down() -> None:
    b = LossBucket(20)
    assert b.percent == 20
    b.report(0.0)
    b.report(0.0)
    b.report(0.12)                                      # still lossy: the count starts over
    assert b.percent == 20
    for _ in range(DOWN_AFTER - 1):
        b.report(0.0)
    assert b.percent == 20
    assert b.report(0.05) and b.percent == 10           # goes to the highest bucket seen meanwhile


def test_listener_near_a_threshold_does_not_flap() -> None:
    b = LossBucket(5)          # a listener losing 4 to 8 % of packets, around the 7 % threshold
    changes = sum(b.report(f) for f in [0.06, 0.08, 0.06, 0.05, 0.075, 0.045, 0.07, 0.05] * 5)
    assert changes == 1 and b.percent == 10


def _room() -> tuple[Room, dict[str, FakePort]]:
    room = Room("r", 48000)
    ports = {n: FakePort() for n in ("talker", "clean", "lossy1", "lossy2", "fixed", "pcmu")}
    for name, port in ports.items():
        if name == "pcmu":
            room.add_leg(name, port, "PCMU", "PCMU", payload_type=0)
            continue
        loss: int | str = 10 if name == "fixed" else "auto"
        room.add_leg(name, port, "opus", "opus", payload_type=111,
                     encoder_opts={"bitrate": 32000, "packet_loss": loss})
    return room, ports


def _talk(room: Room, ports: dict[str, FakePort], speech: list[np.ndarray], t0: float) -> dict[str, list[bytes]]:
    enc = make_encoder("opus")
    first = {n: len(p.sent) for n, p in ports.items()}
    for i, frame in enumerate(speech):
        ports["talker"].incoming.append(Frame(enc.encode(frame), 960 * i))
        room.tick(t0 + 0.02 * i)
    return {n: [s[0] for s in p.sent[first[n]:]] for n, p in ports.items()}


def test_listener_reporting_loss_gets_fec_and_a_clean_one_does_not() -> None:
    room, ports = _room()
    speech = frames(voiced(1.2))
    room.tick(0.0)
    assert {room.expected_loss(n) for n in ("talker", "clean", "lossy1", "lossy2")} == {0}
    assert room.expected_loss("fixed") == 10 and room.expected_loss("pcmu") is None
    room.report_loss("clean", 0.0)
    room.report_loss("lossy1", 0.12)
    room.report_loss("lossy2", 0.09)
    room.report_loss("pcmu", 0.5)                        # not Opus: ignored
    room.report_loss("fixed", 0.0)                       # a fixed setting: ignored
    room.report_loss("gone", 0.5)                        # a leg not (or no longer) here: ignored
    got = _talk(room, ports, speech, 1.0)
    assert (room.expected_loss("lossy1"), room.expected_loss("lossy2"), room.expected_loss("clean"),
            room.expected_loss("fixed")) == (10, 10, 0, 10)
    listed = {s.leg_id: s.send_expected_loss for s in room.participants_snapshot()}    # the listing's
    assert (listed["lossy1"], listed["clean"], listed["pcmu"]) == (10, 0, None)
    lbrr = {n: sum(packet_has_lbrr(p) for p in got[n][10:]) for n in ("clean", "lossy1", "lossy2", "fixed")}
    assert lbrr["clean"] == 0
    assert lbrr["lossy1"] > 10 and lbrr["fixed"] > 10
    # One encode per bucket: both lossy listeners got the very same payloads.
    assert all(a is b for a, b in zip(got["lossy1"], got["lossy2"]))
    assert not any(a is b for a, b in zip(got["lossy1"][1:], got["clean"][1:]))
    # A clean listener with FEC off is sent fewer bytes for the same speech.
    assert sum(map(len, got["clean"])) < sum(map(len, got["lossy1"]))

    # lossy1's network recovers: after DOWN_AFTER clean reports it shares the clean encode again.
    for _ in range(DOWN_AFTER):
        room.report_loss("lossy1", 0.0)
    got = _talk(room, ports, speech, 3.0)
    assert room.expected_loss("lossy1") == 0
    assert sum(packet_has_lbrr(p) for p in got["lossy1"][2:]) == 0
    assert all(a is b for a, b in zip(got["lossy1"][1:], got["clean"][1:]))
    assert sum(packet_has_lbrr(p) for p in got["lossy2"][10:]) > 10


def test_lossy_listeners_fec_rebuilds_a_lost_frame() -> None:
    """What FEC is for: drop one of the lossy listener's packets; its decoder rebuilds the frame
    from the next packet's LBRR much closer to what was sent than concealment without it."""
    from bridge_codecs import make_decoder

    room, ports = _room()
    room.tick(0.0)
    room.report_loss("lossy1", 0.2)
    got = _talk(room, ports, frames(voiced(1.0)), 1.0)["lossy1"]
    k = next(i for i in range(20, len(got) - 1) if packet_has_lbrr(got[i + 1]))

    def rebuilt(fec: bool) -> np.ndarray:
        dec = make_decoder("opus")
        for p in got[:k]:
            dec.decode(p)
        return dec.conceal(960, got[k + 1] if fec else None)

    ref = make_decoder("opus")
    for p in got[:k]:
        ref.decode(p)
    want = ref.decode(got[k]).astype(float)
    err_fec = np.sum((rebuilt(True) - want) ** 2)
    err_plc = np.sum((rebuilt(False) - want) ** 2)
    assert err_fec < 0.5 * err_plc


@pytest.mark.parametrize("value", ["auto", 0, 10])
def test_config_accepts_auto_or_a_percentage(value: int | str) -> None:
    from bridge.call.leg import encoder_options
    from bridge.config import Config

    config = Config.model_validate({"media": {"opus_expected_loss": value}})
    assert encoder_options(config, "opus")["packet_loss"] == value
    assert "packet_loss" not in encoder_options(config, "PCMU")


@pytest.mark.parametrize("value", ["sometimes", -1, 101])
def test_config_refuses_other_values(value: int | str) -> None:
    from pydantic import ValidationError

    from bridge.config import Config

    with pytest.raises(ValidationError):
        Config.model_validate({"media": {"opus_expected_loss": value}})


def test_shared_streams_use_opus_complexity_and_a_talkers_own_stream_the_talker_one() -> None:
    room = Room("r", 48000)
    ports = {n: FakePort() for n in ("talker", "l1", "l2")}
    for name, port in ports.items():
        room.add_leg(name, port, "opus", "opus", payload_type=111,
                     encoder_opts={"complexity": 10, "talker_complexity": 5, "packet_loss": "auto"})
    _talk(room, ports, frames(voiced(0.3)), 0.0)
    by_sig = {key[0][:2]: stream.encoder for key, stream in room._streams.items()}
    assert by_sig[("mix", -1)].complexity == 10                       # what l1 and l2 share
    own = [enc for sig, enc in by_sig.items() if sig[0] == "mix" and sig[1] >= 0]
    assert len(own) == 1 and own[0].complexity == 5                   # the talker's mix-minus
    assert ports["l1"].last is ports["l2"].last
    with pytest.raises(ValueError):
        room.add_leg("x", FakePort(), "opus", "opus", payload_type=111, encoder_opts={"talker_complexity": 11})
    with pytest.raises(ValueError):
        room.add_leg("y", FakePort(), "PCMU", "PCMU", payload_type=0, encoder_opts={"talker_complexity": 5})
