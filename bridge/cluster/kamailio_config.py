"""Fill in the shipped Kamailio front-proxy template (deploy/cluster/kamailio.cfg.tmpl).

The template routes a call to the room's owner read from Redis, else hashes the R-URI user over
the dispatcher list (README "Running several nodes"). This module only substitutes values and writes
the dispatcher list file; it validates every value first, because a stray quote or ``%`` in a key
prefix would silently change the routing script.

    python3 -m bridge.cluster.kamailio_config --out run/ --listen 127.0.0.1:5060 \\
        --redis redis://127.0.0.1:6379/0 --node node1=sip:127.0.0.1:5071 --node node2=sip:127.0.0.1:5073

``--dispatcher-only`` rewrites just the node list (then ``kamcmd -s unix:<run>/kamailio.ctl
dispatcher.reload`` makes a running proxy read it).
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "cluster" / "kamailio.cfg.tmpl"
CONFIG_NAME = "kamailio.cfg"
DISPATCHER_NAME = "dispatcher.list"
CTL_NAME = "kamailio.ctl"
DISPATCHER_SET = 1

_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
_NODE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Goes inside a Kamailio string and a redis_cmd format: no quotes, spaces or '%'.
_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{0,64}$")
_NODE_URI = re.compile(r"^sip:(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5})(?P<params>(;[a-z]+=[a-z]+)*)$")
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


class ConfigError(ValueError):
    """A value that cannot go into the proxy configuration."""


def _port(value: int, what: str) -> int:
    if not 1 <= value <= 65535:
        raise ConfigError(f"{what}: port {value} out of range")
    return value


def _host(value: str, what: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOST.match(value):
        raise ConfigError(f"{what}: {value!r} is not an IP address or host name")
    return value


@dataclass(frozen=True)
class Node:
    """One bridge node: its id (for logs and the dispatcher attrs) and its SIP URI, ``sip:host:port``."""

    node_id: str
    uri: str

    def __post_init__(self) -> None:
        if not _NODE_ID.match(self.node_id):
            raise ConfigError(f"node id {self.node_id!r}: letters, digits, '_', '.', '-' only")
        match = _NODE_URI.match(self.uri)
        if not match:
            raise ConfigError(f"node {self.node_id}: {self.uri!r} is not sip:host:port")
        _port(int(match["port"]), f"node {self.node_id}")

    @classmethod
    def parse(cls, text: str) -> Node:
        """``id=sip:host:port``."""
        node_id, sep, uri = text.partition("=")
        if not sep:
            raise ConfigError(f"{text!r}: expected id=sip:host:port")
        return cls(node_id.strip(), uri.strip())


@dataclass(frozen=True)
class RedisTarget:
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0

    def __post_init__(self) -> None:
        _host(self.host, "redis")
        _port(self.port, "redis")
        if not 0 <= self.db <= 65535:
            raise ConfigError(f"redis database {self.db} out of range")

    @classmethod
    def from_url(cls, url: str) -> RedisTarget:
        """``redis://host:port/db`` (the bridge's ``cluster.redis_url``). Kamailio's ndb_redis
        takes no password in this template: keep Redis on a private network (README)."""
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ConfigError(f"{url!r}: only redis:// URLs (ndb_redis here speaks plain TCP)")
        if parts.username or parts.password:
            raise ConfigError(f"{url!r}: a password is not supported by this template")
        db_text = parts.path.lstrip("/") or "0"
        if not db_text.isdigit():
            raise ConfigError(f"{url!r}: database must be a number")
        return cls(host=parts.hostname or "127.0.0.1", port=parts.port or 6379, db=int(db_text))


@dataclass(frozen=True)
class ProxySettings:
    """What the template needs besides the node list."""

    run_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 5060
    redis: RedisTarget = RedisTarget()
    key_prefix: str = "tutti:"
    ping_interval_s: int = 1       # OPTIONS probe period: a dead node is marked down after about 2 s
    fr_timer_ms: int = 2000        # an INVITE unanswered this long fails over to the next node
    redis_timeout_ms: int = 200    # connect and command timeout: Redis down costs at most this per call
    owner_wait_s: int = 8          # a call for a room whose owner died waits this long for a new owner
    children: int = 2
    debug_level: int = 2

    def __post_init__(self) -> None:
        _host(self.listen_host, "listen")
        _port(self.listen_port, "listen")
        if not _PREFIX.match(self.key_prefix):
            raise ConfigError(f"key prefix {self.key_prefix!r}: letters, digits, '_', '.', ':', '-' only")
        for name, value, low, high in (("ping_interval_s", self.ping_interval_s, 1, 3600),
                                       ("fr_timer_ms", self.fr_timer_ms, 100, 60000),
                                       ("redis_timeout_ms", self.redis_timeout_ms, 10, 10000),
                                       ("owner_wait_s", self.owner_wait_s, 0, 30),
                                       ("children", self.children, 1, 64),
                                       ("debug_level", self.debug_level, -5, 3)):
            if not low <= value <= high:
                raise ConfigError(f"{name}={value}: expected {low}..{high}")
        if any(c in str(self.run_dir) for c in '"\n'):
            raise ConfigError("run_dir: no quotes or newlines")

    @property
    def config_path(self) -> Path:
        return self.run_dir / CONFIG_NAME

    @property
    def dispatcher_path(self) -> Path:
        return self.run_dir / DISPATCHER_NAME

    @property
    def ctl_socket(self) -> Path:
        return self.run_dir / CTL_NAME

    def values(self) -> dict[str, str]:
        return {
            "LISTEN_HOST": self.listen_host,
            "LISTEN_PORT": str(self.listen_port),
            "REDIS_HOST": self.redis.host,
            "REDIS_PORT": str(self.redis.port),
            "REDIS_DB": str(self.redis.db),
            "REDIS_TIMEOUT_MS": str(self.redis_timeout_ms),
            "KEY_PREFIX": self.key_prefix,
            "PING_INTERVAL_S": str(self.ping_interval_s),
            "FR_TIMER_MS": str(self.fr_timer_ms),
            "OWNER_WAIT_S": str(self.owner_wait_s),
            "CHILDREN": str(self.children),
            "DEBUG_LEVEL": str(self.debug_level),
            "DISPATCHER_LIST": str(self.dispatcher_path),
            "CTL_SOCKET": str(self.ctl_socket),
        }


def render_config(settings: ProxySettings, template: str) -> str:
    """The template with every ``{{NAME}}`` replaced; an unknown or missing name is an error."""
    values = settings.values()
    unknown = sorted(set(_PLACEHOLDER.findall(template)) - values.keys())
    if unknown:
        raise ConfigError(f"template names unknown values: {', '.join(unknown)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def render_dispatcher_list(nodes: Sequence[Node]) -> str:
    """Kamailio dispatcher list: ``setid uri flags priority attrs``, one node a line.

    Hashing is modulo the node count, so adding or removing a node re-hashes most rooms whatever
    the order: live rooms stay where they are only because the proxy reads their owner from Redis.
    """
    if not nodes:
        raise ConfigError("at least one node")
    ids = [n.node_id for n in nodes]
    uris = [n.uri for n in nodes]
    if len(set(ids)) != len(ids) or len(set(uris)) != len(uris):
        raise ConfigError("node ids and URIs must be unique")
    lines = ["# setid destination flags priority attrs (generated by bridge/cluster/kamailio_config.py)"]
    lines += [f"{DISPATCHER_SET} {n.uri} 0 0 duid={n.node_id}" for n in nodes]
    return "\n".join(lines) + "\n"


def write_dispatcher_list(settings: ProxySettings, nodes: Sequence[Node]) -> Path:
    text = render_dispatcher_list(nodes)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.dispatcher_path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(settings.dispatcher_path)  # a reload never reads half a file
    return settings.dispatcher_path


def write_all(settings: ProxySettings, nodes: Sequence[Node], template: Path = TEMPLATE) -> Path:
    """Write kamailio.cfg and dispatcher.list into ``settings.run_dir``; returns the config path."""
    config = render_config(settings, template.read_text())
    write_dispatcher_list(settings, nodes)
    settings.config_path.write_text(config)
    return settings.config_path


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--listen {text!r}: expected host:port")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="run directory for kamailio.cfg and dispatcher.list")
    parser.add_argument("--listen", default="127.0.0.1:5060", help="host:port Kamailio listens on (UDP and TCP)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the bridges' cluster.redis_url")
    parser.add_argument("--key-prefix", default="tutti:", help="the bridges' cluster.key_prefix")
    parser.add_argument("--node", action="append", default=[], metavar="ID=sip:HOST:PORT", required=True)
    parser.add_argument("--ping-interval", type=int, default=1, help="seconds between OPTIONS probes")
    parser.add_argument("--fr-timer-ms", type=int, default=2000, help="INVITE failover timeout")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--dispatcher-only", action="store_true", help="rewrite only dispatcher.list")
    args = parser.parse_args(argv)
    try:
        host, port = _listen(args.listen)
        settings = ProxySettings(run_dir=args.out.resolve(), listen_host=host, listen_port=port,
                                 redis=RedisTarget.from_url(args.redis), key_prefix=args.key_prefix,
                                 ping_interval_s=args.ping_interval, fr_timer_ms=args.fr_timer_ms)
        nodes = [Node.parse(n) for n in args.node]
        path = (write_dispatcher_list(settings, nodes) if args.dispatcher_only
                else write_all(settings, nodes, args.template))
    except (ConfigError, OSError) as err:
        print(f"kamailio_config: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
