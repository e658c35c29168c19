"""Process limits at start: the open-file limit, the call capacity it allows, admission limits.

The soft RLIMIT_NOFILE is raised to the hard limit (any process may; raising the hard limit needs
privilege, so we never try). Each call costs descriptors (an RTP and an RTCP socket, maybe a SIP TCP
connection), so the bridge refuses new calls with 503 before EMFILE could hit a live call.
"""

from __future__ import annotations

import logging
import resource

from bridge.config import SecurityConfig
from bridge.control.pin_guard import PinLimits
from bridge.sip.admission import AdmissionLimits

log = logging.getLogger("bridge")

FDS_PER_CALL = 3        # RTP + RTCP sockets, and a SIP TCP connection for TCP callers
FD_RESERVE = 256        # listeners, the database, logs, recordings, prompts, HTTP clients
_UNLIMITED_TARGET = 1 << 20


def raise_fd_limit() -> int:
    """Raise the soft open-file limit as far as allowed; return the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as err:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, err)
    return int(soft if soft != resource.RLIM_INFINITY else _UNLIMITED_TARGET)


def call_capacity(fd_limit: int) -> int:
    return max(1, (fd_limit - FD_RESERVE) // FDS_PER_CALL)


def admission_limits(sec: SecurityConfig, max_calls: int) -> AdmissionLimits:
    return AdmissionLimits(
        invite_rate=sec.invite_rate, invite_burst=sec.invite_burst,
        register_rate=sec.register_rate, register_burst=sec.register_burst,
        options_rate=sec.options_rate, options_burst=sec.options_burst,
        other_rate=sec.other_rate, other_burst=sec.other_burst,
        max_unconfirmed_per_source=sec.max_unconfirmed_per_source, max_unconfirmed=sec.max_unconfirmed,
        # Counted as long as the endpoint retransmits its 2xx waiting for the ACK.
        unconfirmed_hold_s=sec.ack_timeout_s, ban_after=sec.ban_after, ban_window_s=sec.ban_window_s,
        ban_s=sec.ban_s, retry_after_s=sec.retry_after_s, drop_scanners=sec.drop_scanners,
        trusted_proxies=sec.trusted_proxies, max_calls=max_calls,
    )


def pin_limits(sec: SecurityConfig) -> PinLimits:
    return PinLimits(free_failures=sec.pin_free_failures, base_delay_s=sec.pin_base_delay_s,
                     max_delay_s=sec.pin_max_delay_s, lockout_after=sec.pin_lockout_after,
                     lockout_s=sec.pin_lockout_s, window_s=sec.pin_window_s)
