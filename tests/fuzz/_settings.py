"""Example budgets for the bounded fuzz runs (whole directory well under 40 s on 2 cores)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = max(1, int(os.environ.get("TUTTI_FUZZ_SCALE", "1") or "1"))


def fuzz(max_examples: int) -> settings:
    """``@fuzz(n)``: n examples (times TUTTI_FUZZ_SCALE), no deadline, no slow-data health checks."""
    return settings(max_examples=max_examples * SCALE, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
