"""Command line: ``python -m bridge --config config.yaml`` (or ``tutti-bridge``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Coroutine
from typing import Any

from bridge.config import Config, ConfigError, load_config
from bridge.ops.logs import setup_logging


def _port_range(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)-(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError("expected LO-HI, e.g. 20000-20999")
    return int(match.group(1)), int(match.group(2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tutti-bridge", description="SIP/RTP audio conference bridge")
    parser.add_argument("--config", default="config.yaml", help="configuration file (default: config.yaml)")
    parser.add_argument("--sip-port", type=int, help="SIP port for UDP and TCP (overrides sip.port)")
    parser.add_argument("--http-port", type=int, help="REST API port (overrides http.port)")
    parser.add_argument("--rtp-ports", type=_port_range, metavar="LO-HI", help="RTP port range")
    parser.add_argument("--data-dir", help="directory for the database and recordings (overrides data_dir)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", choices=["text", "json"],
                        help="text lines, or JSON lines with call ids (overrides log_format)")
    parser.add_argument(
        "--check-config", nargs="?", const="", metavar="PATH",
        help="validate PATH (default: the --config file) with the other options applied, print OK and exit",
    )
    return parser


def resolve_config(args: argparse.Namespace) -> Config:
    config = load_config(args.check_config or args.config)
    lo, hi = args.rtp_ports if args.rtp_ports else (None, None)
    return config.with_overrides(
        **{
            "sip.port": args.sip_port,
            "http.port": args.http_port,
            "rtp.port_min": lo,
            "rtp.port_max": hi,
            "data_dir": args.data_dir,
            "log_level": args.log_level,
            "log_format": args.log_format,
        }
    )


def run_loop(main_coro: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when installed (its datagram path is cheaper than the stock
    selector loop's, see benchmarks/bench_media_path.py). ``TUTTI_LOOP=asyncio``
    forces the stock loop (benchmarks)."""
    if os.environ.get("TUTTI_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main_coro)
            return
    asyncio.run(main_coro)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = resolve_config(args)
    except ConfigError as err:
        print(f"tutti-bridge: {err}", file=sys.stderr)
        return 2
    if args.check_config is not None:
        path = args.check_config or args.config
        print(f"{path}: OK ({len(config.rooms)} rooms, {len(config.accounts)} accounts, data_dir {config.data_dir})")
        return 0
    setup_logging(config.log_level, config.log_format)
    from bridge.app import BridgeApp

    try:
        # A reload (SIGHUP, POST /v2/admin/reload) reads the same file with the same overrides.
        run_loop(BridgeApp(config, load=lambda: resolve_config(args)).run())
    except (OSError, ConfigError) as err:     # ConfigError: e.g. cluster.redis_url unreachable
        print(f"tutti-bridge: cannot start: {err}", file=sys.stderr)
        return 1
    return 0
