"""`python -m db_service` serves; `python -m db_service create-admin` sets up an admin."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path

from pydantic import SecretStr

from db_service.settings import Settings
from plumbing.grpcserver import CannotListen, start_metrics_server
from plumbing.settings import host_and_port, read_settings
from plumbing.workers import EXIT_BAD_CONFIG, die_with_supervisor

# The most create-admin reads from standard input (passwords are at most 1,024 characters).
_STDIN_PASSWORD_MAX = 4096


class ReasonInsteadOfTraceback(logging.Filter):
    """Writes a record's exception as its one-line reason instead of a traceback.

    For a library's report of a failure it expects and retries: asyncpg's pool, reconnecting
    while PostgreSQL is away (every 1 to 60 s), logged a 30-line traceback each time, which
    buried the lines saying what was wrong; our logs carry no tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            record.msg = f"{record.getMessage()} ({reason})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def _run(coro: object) -> None:
    try:
        import uvloop

        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]


async def _create_admin(
    settings: Settings, sid: str, username: str, password: str, *, promote: bool
) -> None:
    import asyncpg

    from db_service.migrate import apply_migrations
    from db_service.outbox import Outbox
    from db_service.passwords import Passwords, argon2id
    from db_service.repositories.users import UserRepository
    from db_service.services.users import LoginPolicy, UserService
    from protos.tokens import TokenCodec

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2, timeout=10)
    try:
        await apply_migrations(pool)
        users = UserService(
            # Its records wait in the outbox until a running db_service relays them.
            UserRepository(
                pool, Outbox(max_rows=settings.log_outbox_max_rows, enabled=settings.log_shipping)
            ),
            Passwords(
                1,
                hasher=argon2id(
                    time_cost=settings.password_hash_time_cost,
                    memory_kib=settings.password_hash_memory_kib,
                ),
            ),
            TokenCodec(settings.jwt_secret.get_secret_value(), settings.jwt_issuer, 60),
            LoginPolicy(max_attempts=settings.login_max_failures, window_s=settings.login_window_s),
        )
        user = await users.ensure_admin(
            sid=sid, username=username, password=password, promote=promote
        )
        print(f"admin {user.sid} ({user.username}) is ready")
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    die_with_supervisor()  # a worker: gone with its supervisor, however that ends
    parser = argparse.ArgumentParser(prog="python -m db_service")
    sub = parser.add_subparsers(dest="command")
    admin = sub.add_parser("create-admin", help="create an admin, or update its password and role")
    admin.add_argument("--sid", required=True)
    admin.add_argument("--username", required=True)
    source = admin.add_mutually_exclusive_group()
    source.add_argument(
        "--password",
        help="asked on the terminal when no option gives it; on the command line it is visible"
        " to every local user in the process list, so scripts should use --password-stdin",
    )
    source.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    admin.add_argument(
        "--promote",
        action="store_true",
        help="make the existing customer with this sid an admin (never done without this flag)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncpg.pool").addFilter(ReasonInsteadOfTraceback())
    settings = read_settings(Settings, "db_service")
    if settings is None:
        return 2

    if args.command == "create-admin":
        import asyncpg

        from db_service.errors import DomainError

        if args.password_stdin:
            # Bounded: a line longer than any valid password is refused by the rules anyway.
            line = sys.stdin.readline(_STDIN_PASSWORD_MAX)
            password = line.removesuffix("\n").removesuffix("\r")
        else:
            password = args.password or getpass.getpass("admin password: ")
        try:
            _run(
                _create_admin(
                    settings,
                    args.sid,
                    args.username,
                    SecretStr(password).get_secret_value(),
                    promote=args.promote,
                )
            )
        except DomainError as exc:
            print(f"db_service: {exc.message}", file=sys.stderr)
            return 1
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Not the URL itself: it may hold a password.
            reason = str(exc) or type(exc).__name__
            print(f"db_service: cannot use the database of DATABASE_URL: {reason}", file=sys.stderr)
            return 1
        except ValueError:  # asyncpg could not read the URL; its words would quote part of it
            from db_service.server import UNREADABLE_DATABASE_URL

            print(f"db_service: {UNREADABLE_DATABASE_URL}", file=sys.stderr)
            return 1
        return 0

    if settings.db_service_workers > 1 and settings.worker_index is None:
        if settings.db_service_listen.rpartition(":")[2] == "0":
            # Each worker would pick a port of its own.
            print("db_service: DB_SERVICE_WORKERS > 1 needs a fixed port", file=sys.stderr)
            return 2
        try:
            return _supervise(settings)
        except CannotListen as exc:
            print(f"db_service: refusing to start: {exc}", file=sys.stderr)
            return 1

    from db_service.server import StartupRefused, serve
    from logging_service.client import SpoolInUse

    try:
        _run(serve(settings))
    except StartupRefused as exc:
        print(f"db_service: refusing to start: {exc}", file=sys.stderr)
        # A restart cannot change the configuration: a supervisor stops all its workers on it.
        return EXIT_BAD_CONFIG
    except CannotListen as exc:
        print(f"db_service: refusing to start: {exc}", file=sys.stderr)
        return 1
    except SpoolInUse as exc:
        print(f"db_service refuses to start: {exc}", file=sys.stderr)
        return 2
    return 0


def _supervise(settings: Settings) -> int:
    """Run DB_SERVICE_WORKERS copies of db_service on one port; serve their summed metrics."""
    from plumbing.workermetrics import summing_registry
    from plumbing.workers import WorkerPool

    def serve_metrics(metrics_dir: Path) -> None:
        if settings.db_metrics_port:
            start_metrics_server(
                settings.db_metrics_port,
                variable="DB_METRICS_PORT",
                registry=summing_registry(metrics_dir),
            )

    pool = WorkerPool(
        "db_service",
        [sys.executable, "-m", "db_service"],
        count=settings.db_service_workers,
        env=os.environ,
        grace_s=settings.shutdown_grace_s,
        on_started=serve_metrics,
        address=_listen_address(settings.db_service_listen),
    )
    return pool.run()


def _listen_address(listen: str) -> tuple[str, int]:
    """DB_SERVICE_LISTEN as (host, port): the settings checked that it is one."""
    parts = host_and_port(listen)
    assert parts is not None, "DB_SERVICE_LISTEN is checked as host:port with the settings"
    return parts[0], int(parts[1])


if __name__ == "__main__":
    sys.exit(main())
