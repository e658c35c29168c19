"""Command line: ``--check-config`` and where a relative ``data_dir`` points."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config import load_config

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
data_dir: state
accounts: [{id: acct1, tokens: [t]}]
rooms:
  - {name: lobby, account: acct1}
  - {name: board, dial_in_code: "2000", member_pins: ["1234"]}
"""


def test_check_config_accepts_the_bundled_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check-config", str(ROOT / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "config.yaml: OK (1 rooms, 1 accounts" in out


def test_check_config_path_wins_over_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["--config", str(tmp_path / "missing.yaml"), "--check-config", str(good)]) == 0
    assert "good.yaml: OK (2 rooms, 1 accounts" in capsys.readouterr().out


def test_check_config_without_path_checks_the_config_file(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["--config", str(good), "--check-config"]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize(("text", "expected"), [
    ("rooms:\n  - {name: a, rate: 11025}\n", "rooms.0.rate: Input should be 8000, 16000 or 48000"),
    ("sip: {port: 70000}\n", "sip.port: Input should be less than or equal to 65535"),
    ("rooms:\n  - {name: a, member_pins: ['12']}\n", "rooms.0.member_pins: Value error, PIN must be 4-6 digits"),
    ("sip: {colour: blue}\n", "sip.colour: Extra inputs are not permitted"),
    ("rooms: [\n", "is not valid YAML"),
    ("- just\n- a list\n", "the top level must be a mapping"),
])
def test_check_config_refuses_with_the_key_path(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                text: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["--check-config", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in captured.err


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check-config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read configuration" in capsys.readouterr().err


def test_check_config_applies_command_line_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["--check-config", str(good), "--rtp-ports", "3000-2000"]) == 2
    assert "port_max must be greater than port_min" in capsys.readouterr().err


def test_relative_data_dir_is_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "bridge.yaml").write_text(GOOD)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_config(etc / "bridge.yaml").data_dir == str(etc / "state")
    assert load_config(os.path.relpath(etc / "bridge.yaml")).data_dir == str(etc / "state")
    (etc / "abs.yaml").write_text(f"data_dir: {tmp_path / 'var'}\n")
    assert load_config(etc / "abs.yaml").data_dir == str(tmp_path / "var")
    (etc / "default.yaml").write_text("{}\n")
    assert load_config(etc / "default.yaml").data_dir == str(etc / "data")


def test_log_format_flag_overrides_the_file(tmp_path: Path) -> None:
    from bridge.cli import build_parser, resolve_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("log_format: text\n")
    assert resolve_config(build_parser().parse_args(["--config", str(cfg)])).log_format == "text"
    args = build_parser().parse_args(["--config", str(cfg), "--log-format", "json"])
    assert resolve_config(args).log_format == "json"
