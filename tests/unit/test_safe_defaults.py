"""Safe defaults (README "Security"): bad-token limiting, the API's address with the demo token."""

from __future__ import annotations

from bridge.adapters.auth_limit import BadTokenLimiter
from bridge.app import DEMO_TOKEN, api_host
from bridge.config import parse_config


def test_bad_tokens_get_429_after_the_limit_then_expire() -> None:
    lim = BadTokenLimiter(max_failures=3, window_s=60, block_s=300)
    for t in range(2):
        lim.failed("10.0.0.1", t)
    assert lim.retry_after("10.0.0.1", 2) == 0
    lim.failed("10.0.0.1", 2)
    assert lim.retry_after("10.0.0.1", 3) == 299
    assert lim.retry_after("10.0.0.2", 3) == 0          # other clients unaffected
    assert lim.retry_after("10.0.0.1", 303) == 0
    lim.failed("10.0.0.3", 0)
    lim.failed("10.0.0.3", 61)
    lim.failed("10.0.0.3", 62)                          # the first fell out of the window
    assert lim.retry_after("10.0.0.3", 62) == 0


def test_api_stays_on_loopback_while_the_demo_token_is_active() -> None:
    demo = parse_config({"http": {"host": "0.0.0.0"}, "accounts": [{"id": "a", "tokens": [DEMO_TOKEN]}]})
    assert api_host(demo) == "127.0.0.1"
    own = parse_config({"http": {"host": "0.0.0.0"}, "accounts": [{"id": "a", "tokens": ["s3cret-own-token"]}]})
    assert api_host(own) == "0.0.0.0"
