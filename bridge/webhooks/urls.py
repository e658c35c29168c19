"""Which webhook destinations the bridge will call (SSRF rules), without touching the network.

A destination URL must be ``http``/``https`` with a host, no user name or password, no
fragment, at most 2048 characters. Its address must be public: loopback, private (RFC 1918,
ULA), link-local (169.254/16, where cloud metadata lives, and fe80::/10), shared, multicast,
reserved and unspecified addresses are refused, unless they fall in one of the networks of
``webhooks.allow_networks`` in config.yaml. The check runs twice: on the URL's host when a URL
is stored (an IP literal is judged at once; a name such as ``localhost`` or ``*.internal`` is
refused when it can only mean a local host), and on every address the name resolves to right
before each request (``check_address``), so a name that later resolves to a private address
(DNS rebinding) is refused at send time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..control.errors import ControlError, bad_request

MAX_URL = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
# Addresses that are "global" to ipaddress but still no place for a webhook.
_EXTRA_FORBIDDEN = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("64:ff9b:1::/48"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")      # RFC 6052 well-known prefix


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is where it leads."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """The networks that are allowed although they are not public (config ``allow_networks``)."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_config(cls, networks: Iterable[str]) -> "AddressPolicy":
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def allows(self, address: IPAddress) -> bool:
        if any(address in net for net in self.allow):
            return True
        if isinstance(address, ipaddress.IPv6Address) and (v4 := _embedded_ipv4(address)) is not None:
            address = v4
        if any(address in net for net in self.allow):
            return True
        if any(address in net for net in _EXTRA_FORBIDDEN):
            return False
        return address.is_global and not address.is_multicast


class ForbiddenDestination(Exception):
    """A destination address the policy refuses (the message names it)."""


def check_address(address: str, policy: AddressPolicy) -> None:
    """Raise ``ForbiddenDestination`` unless ``address`` (an IP literal) may be called."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        raise ForbiddenDestination(f"{address!r} is not an IP address") from None
    if not policy.allows(ip):
        raise ForbiddenDestination(f"destination address {ip} is not public and not in webhooks.allow_networks")


def literal_address(host: str) -> IPAddress | None:
    """The IP address a URL host names literally (``[::1]`` included), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _invalid(field: str, why: str) -> ControlError:
    return bad_request(f"invalid_{field}", f"{field} {why}")


def validate_url(field: str, value: str, policy: AddressPolicy) -> str:
    """Check a destination URL about to be stored; ``ControlError`` 400 names ``field``."""
    if len(value) > MAX_URL:
        raise _invalid(field, f"must be at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise _invalid(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _invalid(field, "is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise _invalid(field, "must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _invalid(field, "must not contain a user name or password")
    host = (parts.hostname or "").lower()
    if not host:
        raise _invalid(field, "must name a host")
    if parts.fragment:
        raise _invalid(field, "must not contain a #fragment")
    if port == 0:
        raise _invalid(field, "must not use port 0")
    literal = literal_address(host)
    if literal is not None:
        if not policy.allows(literal):
            raise bad_request(
                f"forbidden_{field}",
                f"{field} points to {literal}, which is not a public address (see webhooks.allow_networks)",
            )
        return value
    if host.rstrip(".") in _LOCAL_NAMES or host.rstrip(".").endswith(_LOCAL_SUFFIXES) or "." not in host:
        loopback = ipaddress.ip_address("127.0.0.1")
        if not policy.allows(loopback) or not host.rstrip(".").startswith("localhost"):
            raise bad_request(f"forbidden_{field}", f"{field} names a local host ({host}); use a public name")
    return value


def destination_key(url: str) -> str:
    """What "one destination" means for concurrency limits: ``scheme://host:port``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"
