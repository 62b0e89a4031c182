"""`make run`: PostgreSQL, the broker and the three services, stopped together on Ctrl-C.

    python -m scripts.devstack

Every child runs in its own process group, its output prefixed with its name. On SIGINT,
SIGTERM or SIGHUP the children stop in reverse order within ten seconds; a watchdog process
kills them even if this process is SIGKILLed (scripts/watchdog.py). `DATABASE_URL` or
`KAFKA_BOOTSTRAP_SERVERS` in the environment replace the embedded server with a real one.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import httpx

from plumbing.settings import DEV_JWT_SECRET
from scripts.infra import EmbeddedPostgres, ManagedProcess, ServerStartError, TansuBroker
from scripts.processes import answers_ready, describe_exit, emit, port_is_free

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STOP_BUDGET_S = 10.0
_PROGRESS_EVERY_S = 10.0
_POLL_S = 0.25
_STOP_RESERVE_S = 1.0


class StopRequested(BaseException):
    """A stop signal arrived; a BaseException so that no `except Exception` swallows it."""


class _Stoppable(Protocol):
    def stop(self, timeout: float = ...) -> object: ...


@dataclass(frozen=True)
class DevstackConfig:
    """Where everything listens and lives, read once from the environment."""

    data_dir: Path
    pg_port: int
    kafka_port: int
    db_service_port: int
    logging_service_port: int
    gateway_port: int
    database_url: str | None
    kafka_bootstrap_servers: str | None
    ready_timeout_s: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DevstackConfig:
        """Read the configuration; ValueError names a malformed variable."""

        def port(name: str, default: int) -> int:
            raw = environ.get(name, str(default))
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise ValueError(f"{name} must be a TCP port number, not {raw!r}")
            return int(raw)

        timeout = environ.get("MERCH_READY_TIMEOUT", "90")
        try:
            ready_timeout_s = float(timeout)
        except ValueError:
            ready_timeout_s = math.nan
        # NaN and infinity would wait for ever, zero or less give up before the first check.
        if not (math.isfinite(ready_timeout_s) and ready_timeout_s > 0):
            raise ValueError(f"MERCH_READY_TIMEOUT must be seconds, not {timeout!r}")
        return cls(
            data_dir=Path(environ.get("MERCH_DATA_DIR") or REPO / ".merch"),
            pg_port=port("MERCH_PG_PORT", 55432),
            kafka_port=port("MERCH_KAFKA_PORT", 9092),
            db_service_port=port("DB_SERVICE_PORT", 50051),
            logging_service_port=port("LOGGING_SERVICE_PORT", 50052),
            gateway_port=port("GATEWAY_PORT", 8081),
            database_url=environ.get("DATABASE_URL") or None,
            kafka_bootstrap_servers=environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            ready_timeout_s=ready_timeout_s,
        )

    def ports(self) -> list[tuple[int, str, str]]:
        """Every port the stack will listen on: (port, who, the variable that moves it)."""
        ports = []
        if self.database_url is None:
            ports.append((self.pg_port, "postgres", "MERCH_PG_PORT"))
        if self.kafka_bootstrap_servers is None:
            ports.append((self.kafka_port, "tansu", "MERCH_KAFKA_PORT"))
        ports += [
            (self.db_service_port, "db_service", "DB_SERVICE_PORT"),
            (self.logging_service_port, "logging_service", "LOGGING_SERVICE_PORT"),
            (self.gateway_port, "gateway", "GATEWAY_PORT"),
        ]
        return ports


class Devstack:
    """Starts the stack in order, watches it, and stops it in reverse order."""

    def __init__(self, config: DevstackConfig, environ: Mapping[str, str]) -> None:
        self.config = config
        self.environ = dict(environ)
        self._stoppables: list[_Stoppable] = []
        self._services: list[ManagedProcess] = []
        # The services that ship log records to the logging service (stopped together).
        self._shippers: list[_Stoppable] = []
        self._child_exited = threading.Event()

    def start(self) -> None:
        """Start the servers (unless given) and then the services; return without waiting."""
        config = self.config
        database_url = config.database_url
        if database_url is None:
            pg = EmbeddedPostgres(config.data_dir / "pgdata", config.pg_port, die_with_parent=True)
            self._stoppables.append(pg)
            pg.start()
            database_url = pg.ensure_database("merch")
        bootstrap = config.kafka_bootstrap_servers
        if bootstrap is None:
            broker = TansuBroker(config.kafka_port, die_with_parent=True)
            self._stoppables.append(broker)
            broker.start()
            bootstrap = broker.bootstrap_servers
        db_addr = f"{HOST}:{config.db_service_port}"
        logging_addr = f"{HOST}:{config.logging_service_port}"
        # Before the services that ship to it, so that it stops after them (in reverse order)
        # and still takes the records they ship while stopping.
        self._start_service(
            "logging_service",
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            LOGGING_SERVICE_LISTEN=logging_addr,
        )
        self._start_service(
            "db_service",
            ships_logs=True,
            DATABASE_URL=database_url,
            DB_SERVICE_LISTEN=db_addr,
            LOGGING_SERVICE_ADDR=logging_addr,
            LOG_SPOOL_DIR=str(config.data_dir / "spool" / "db_service"),
        )
        self._start_service(
            "gateway",
            ships_logs=True,
            GATEWAY_HOST=HOST,
            GATEWAY_PORT=str(config.gateway_port),
            DB_SERVICE_ADDR=db_addr,
            LOGGING_SERVICE_ADDR=logging_addr,
            LOG_SPOOL_DIR=str(config.data_dir / "spool" / "gateway"),
        )

    def wait_until_ready(self) -> None:
        """Block until the gateway's /readyz answers 200 with every dependency SERVING (it is
        200 from db_service on, degraded without the logging service); RuntimeError on a death
        or timeout."""
        url = f"http://{HOST}:{self.config.gateway_port}/readyz"
        started = time.monotonic()
        deadline = started + self.config.ready_timeout_s
        next_progress = started + _PROGRESS_EVERY_S
        last = "no answer yet"
        # trust_env=False: a proxy from the environment must not stand between us and localhost.
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                self._raise_if_a_service_exited()
                try:
                    response = client.get(url)
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                else:
                    if answers_ready(response):
                        return
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                now = time.monotonic()
                if now >= deadline:
                    timeout = self.config.ready_timeout_s
                    raise RuntimeError(f"the gateway was not ready within {timeout:g} s ({last})")
                if now >= next_progress:
                    emit(f"devstack: waiting for {url} ({now - started:.0f} s, {last})")
                    next_progress += _PROGRESS_EVERY_S
                self._child_exited.wait(_POLL_S)

    def supervise(self) -> None:
        """Block until a service exits on its own, then raise RuntimeError naming it."""
        while True:
            self._raise_if_a_service_exited()
            self._child_exited.wait(1.0)

    def stop(self, budget_s: float = STOP_BUDGET_S) -> None:
        """Stop everything, newest first, all within about `budget_s` seconds.

        The gateway and db_service stop together: each may spend its grace on flushing its
        log (SHUTDOWN_GRACE_S, 5 s, when the logging service is away), and one after the
        other they would outlast the budget, so that db_service was SIGKILLed mid-stop."""
        deadline = time.monotonic() + budget_s
        stages: list[list[_Stoppable]] = []
        for child in reversed(self._stoppables):
            if stages and child in self._shippers and stages[-1][0] in self._shippers:
                stages[-1].append(child)
            else:
                stages.append([child])
        for index, stage in enumerate(stages):
            # Each stage may take what is left, less a second kept for every stage after it,
            # so a hung gateway cannot rob PostgreSQL of its clean shutdown.
            later = len(stages) - index - 1
            timeout = max(deadline - time.monotonic() - _STOP_RESERVE_S * later, _STOP_RESERVE_S)
            stoppers = [
                threading.Thread(target=child.stop, args=(timeout,), daemon=True) for child in stage
            ]
            for stopper in stoppers:
                stopper.start()
            for stopper in stoppers:
                stopper.join()

    def _start_service(self, module: str, *, ships_logs: bool = False, **env: str) -> None:
        # Development mode and its secret said out loud (the services default to production,
        # which needs a JWT_SECRET): the gateway and db_service must agree on it. A MERCH_ENV or
        # JWT_SECRET of the caller's own still wins. Unbuffered, so that their log lines reach
        # the terminal as they happen.
        child_env = {
            "MERCH_ENV": "development",
            "JWT_SECRET": DEV_JWT_SECRET,
            **self.environ,
            **env,
            "PYTHONUNBUFFERED": "1",
        }
        process = ManagedProcess(
            module,
            [sys.executable, "-m", module],
            env=child_env,
            cwd=REPO,
            die_with_parent=True,
            on_exit=lambda _: self._child_exited.set(),
        )
        self._stoppables.append(process)
        self._services.append(process)
        if ships_logs:
            self._shippers.append(process)
        process.start()

    def _raise_if_a_service_exited(self) -> None:
        for process in self._services:
            code = process.returncode
            if code is not None:
                raise RuntimeError(f"{process.name} {describe_exit(code)}")


class _StopSignals:
    """Turn the first SIGINT, SIGTERM or SIGHUP into StopRequested while `armed`.

    Disarmed once shutdown begins: a second Ctrl-C must not cut the shutdown short.
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.armed = True
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def __enter__(self) -> _StopSignals:
        for signum in self._SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.armed:
            self.armed = False
            raise StopRequested(signum)


def _busy_port_message(config: DevstackConfig) -> str | None:
    """One line naming the first port that is taken (or given twice), else None."""
    seen: dict[int, str] = {}
    for port, _, variable in config.ports():
        if port in seen:
            return f"devstack: {seen[port]} and {variable} are both {port}; give each its own port"
        seen[port] = variable
    for port, who, variable in config.ports():
        if not port_is_free(port, HOST):
            return (
                f"devstack: port {port} is already in use ({who}); "
                f"stop the other process or set {variable}"
            )
    return None


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the stack until a signal (exit 0) or a failure (exit 1)."""
    environ = dict(os.environ if environ is None else environ)
    try:
        config = DevstackConfig.from_env(environ)
    except ValueError as exc:
        emit(f"devstack: {exc}", sys.stderr)
        return 1
    busy = _busy_port_message(config)
    if busy is not None:
        emit(busy, sys.stderr)
        return 1
    stack = Devstack(config, environ)
    with _StopSignals() as signals:
        try:
            code = _run(stack, config)
        except StopRequested:
            emit("devstack: stopping")
            code = 0
        finally:
            signals.armed = False
            stack.stop()
    return code


def _run(stack: Devstack, config: DevstackConfig) -> int:
    """Start, wait for readiness, supervise; return 1 on failure (a signal raises instead)."""
    try:
        stack.start()
        stack.wait_until_ready()
        emit(f"Merch Store is ready: GraphiQL at http://{HOST}:{config.gateway_port}/graphql")
        stack.supervise()
    except ServerStartError as exc:
        emit(f"devstack: {exc.name} {exc.reason}; stopping everything", sys.stderr)
    except (RuntimeError, OSError) as exc:
        emit(f"devstack: {exc}; stopping everything", sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
