"""`python -m logging_service` serves; `python -m logging_service tail` follows the log topic."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

from logging_service.settings import Settings
from plumbing.settings import read_settings


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m logging_service")
    sub = parser.add_subparsers(dest="command")
    tail_cmd = sub.add_parser("tail", help="print the log topic, one line per record")
    tail_cmd.add_argument("--from-beginning", action="store_true", help="oldest record first")
    tail_cmd.add_argument("--target", help="HOST:PORT of logging_service (LOGGING_SERVICE_ADDR)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiokafka logs every failed reconnect attempt at ERROR, many times a second during an
    # outage; LogProducer reports connection state changes itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    settings = read_settings(Settings, "logging_service")
    if settings is None:
        return 2

    if args.command == "tail":
        from logging_service.console import tail

        target = args.target or settings.logging_service_addr
        try:
            _run(tail(target, from_beginning=args.from_beginning))
        except (KeyboardInterrupt, BrokenPipeError):
            return 0
        return 0

    from logging_service.server import serve
    from plumbing.grpcserver import CannotListen

    try:
        _run(serve(settings))
    except CannotListen as exc:
        print(f"logging_service: refusing to start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
