"""Slowloris and connection floods against the HTTP API of a real bridge process
(``http.header_timeout_s``, ``http.max_connections_per_source``; bridge/adapters/http_bounds.py).

The attack comes from 127.0.0.2, the honest client from 127.0.0.1."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable

import pytest

from tests.support.bridge_proc import DEMO_TOKEN, BridgeProcess
from tests.support.slowloris import attack, normal_request

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT_S = 2.0


def _metric(bridge: BridgeProcess, name: str) -> float:
    with urllib.request.urlopen(bridge.base_url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_slowloris_connections_are_closed_and_the_api_stays_responsive(
    bridge_factory: Callable[..., BridgeProcess],
) -> None:
    bridge = bridge_factory(http={"header_timeout_s": HEADER_TIMEOUT_S})
    result = attack(bridge.http_port, 40, seconds=HEADER_TIMEOUT_S + 4, interval=1.0,
                    probe_url=bridge.base_url + "/v2/conferences", token=DEMO_TOKEN, probe_every=0.5)
    # (a) every dripping connection was closed by the bridge, none before the header timeout
    assert result.opened == 40 and result.refused == 0
    assert result.held_at_end == 0, result
    assert len(result.closed_at) == 40
    assert min(result.closed_at) >= HEADER_TIMEOUT_S - 0.3, result.closed_at
    # (b) meanwhile the normal client's requests all succeeded
    assert result.request_failures == 0 and len(result.request_latencies) >= 3, result
    assert _metric(bridge, 'tutti_http_timeouts_total{phase="header"}') == 40
    assert normal_request(bridge.base_url + "/v2/conferences", DEMO_TOKEN, 5) is not None


def test_connections_over_the_per_source_cap_get_503_and_others_still_get_in(
    bridge_factory: Callable[..., BridgeProcess],
) -> None:
    bridge = bridge_factory(http={"header_timeout_s": 30, "max_connections_per_source": 10})
    result = attack(bridge.http_port, 25, seconds=3, interval=1.0,
                    probe_url=bridge.base_url + "/v2/conferences", token=DEMO_TOKEN, probe_every=0.5)
    assert result.opened == 25
    assert result.refused == 15, result        # answered 503 + Retry-After, then closed
    assert result.held_at_end == 10            # the ten within the cap are still dripping
    assert result.request_failures == 0 and result.request_latencies, result
    assert _metric(bridge, 'tutti_http_connections_refused_total{cap="per_source"}') == 15
