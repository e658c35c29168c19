"""The Kamailio front-proxy generator: values land in the template, bad values are refused."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bridge.cluster.kamailio_config import (
    TEMPLATE,
    ConfigError,
    Node,
    ProxySettings,
    RedisTarget,
    main,
    render_config,
    render_dispatcher_list,
    write_all,
)


def _settings(tmp_path: Path, **kw: object) -> ProxySettings:
    args: dict[str, object] = {"listen_host": "127.0.0.1", "listen_port": 5999,
                               "redis": RedisTarget("10.0.0.7", 6380, 2), **kw}
    return ProxySettings(run_dir=tmp_path, **args)  # type: ignore[arg-type]


def test_template_is_filled_completely(tmp_path: Path) -> None:
    text = render_config(_settings(tmp_path, key_prefix="acme:"), TEMPLATE.read_text())
    assert "{{" not in text and "}}" not in text
    assert "listen=udp:127.0.0.1:5999" in text and "listen=tcp:127.0.0.1:5999" in text
    assert "name=tutti;addr=10.0.0.7;port=6380;db=2" in text
    assert '"GET acme:room:%s:node", "$rU"' in text
    assert f'"list_file", "{tmp_path / "dispatcher.list"}"' in text
    assert f'"binrpc", "unix:{tmp_path / "kamailio.ctl"}"' in text
    # the routing decisions the README promises
    assert 'modparam("dispatcher", "hash_pvar", "$rU")' in text
    assert 'ds_select_dst("1", "7")' in text and "record_route()" in text and "ds_next_dst()" in text


def test_unknown_placeholder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NOPE"):
        render_config(_settings(tmp_path), "listen={{LISTEN_HOST}} {{NOPE}}")


def test_dispatcher_list_keeps_node_order() -> None:
    text = render_dispatcher_list([Node("b", "sip:127.0.0.1:5073"), Node("a", "sip:127.0.0.1:5071")])
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert lines == ["1 sip:127.0.0.1:5073 0 0 duid=b", "1 sip:127.0.0.1:5071 0 0 duid=a"]


@pytest.mark.parametrize("nodes", [
    [],
    [Node("a", "sip:127.0.0.1:5071"), Node("a", "sip:127.0.0.1:5073")],
    [Node("a", "sip:127.0.0.1:5071"), Node("b", "sip:127.0.0.1:5071")],
])
def test_dispatcher_list_refuses_empty_or_duplicates(nodes: list[Node]) -> None:
    with pytest.raises(ConfigError):
        render_dispatcher_list(nodes)


@pytest.mark.parametrize("node_id, uri", [
    ("a b", "sip:127.0.0.1:5071"),
    ("a", "sip:127.0.0.1"),           # the port is part of a node's identity
    ("a", "sips:127.0.0.1:5071"),
    ("a", 'sip:127.0.0.1:5071"'),
    ("a", "sip:127.0.0.1:70000"),
])
def test_bad_nodes_are_refused(node_id: str, uri: str) -> None:
    with pytest.raises(ConfigError):
        Node(node_id, uri)


@pytest.mark.parametrize("kw", [
    {"key_prefix": 'x" ; drop'}, {"key_prefix": "a%s"}, {"key_prefix": "has space"},
    {"listen_port": 0}, {"listen_host": "bad host"}, {"fr_timer_ms": 5}, {"children": 0},
])
def test_bad_settings_are_refused(tmp_path: Path, kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        _settings(tmp_path, **kw)


def test_redis_url() -> None:
    assert RedisTarget.from_url("redis://10.1.2.3:6390/4") == RedisTarget("10.1.2.3", 6390, 4)
    assert RedisTarget.from_url("redis://localhost") == RedisTarget("localhost", 6379, 0)
    with pytest.raises(ConfigError):
        RedisTarget("bad host", 6379, 0)
    for bad in ("rediss://x:1/0", "redis://:secret@x:1/0", "redis://x:1/db"):
        with pytest.raises(ConfigError):
            RedisTarget.from_url(bad)


def test_node_parse() -> None:
    assert Node.parse("n1=sip:10.0.0.1:5060") == Node("n1", "sip:10.0.0.1:5060")
    with pytest.raises(ConfigError):
        Node.parse("sip:10.0.0.1:5060")


def test_cli_writes_both_files_and_dispatcher_only(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--listen", "127.0.0.1:5999", "--node", "n1=sip:127.0.0.1:5071"]) == 0
    cfg = (tmp_path / "kamailio.cfg").read_text()
    assert re.search(r"^listen=udp:127\.0\.0\.1:5999$", cfg, re.MULTILINE)
    assert main(["--out", str(tmp_path), "--dispatcher-only", "--node", "n1=sip:127.0.0.1:5071",
                 "--node", "n2=sip:127.0.0.1:5073"]) == 0
    assert "duid=n2" in (tmp_path / "dispatcher.list").read_text()
    assert (tmp_path / "kamailio.cfg").read_text() == cfg
    assert main(["--out", str(tmp_path), "--node", "bad"]) == 2


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio not installed (scripts/test.sh installs it)")
def test_kamailio_accepts_the_generated_config(tmp_path: Path) -> None:
    config = write_all(_settings(tmp_path), [Node("n1", "sip:127.0.0.1:5071"), Node("n2", "sip:127.0.0.1:5073")])
    out = subprocess.run(["kamailio", "-c", "-f", str(config)], check=False, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
