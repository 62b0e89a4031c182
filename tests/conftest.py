"""Session fixtures: a real PostgreSQL, a real Kafka-protocol broker, and the three services
started as subprocesses on free ports, the way `make run` starts them."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
import pytest

from scripts.infra import EmbeddedPostgres, TansuBroker
from scripts.processes import ManagedProcess, answers_ready, free_port

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "test-secret-0123456789-0123456789-0123456789"
ADMIN = {"sid": "A0000001", "username": "root_admin", "password": "admin-password-123"}
LOGIN_WINDOW_S = 2
# For the tests' own gRPC servers on a port the kernel picks ("127.0.0.1:0"): without
# SO_REUSEPORT (gRPC's default is on), two servers asking at once cannot be given one port and
# share each other's clients (grpc/grpc#10755), which once made a fake see no call at all.
FAKE_SERVER_OPTIONS = [("grpc.so_reuseport", 0)]


class _StopSignals:
    """Turn SIGTERM (a cancelled CI job, `timeout`) and SIGHUP (a closed terminal) into Ctrl-C.

    By default they end Python at once: no fixture was torn down, and the servers the session
    fixtures had started kept running, spending CPU and holding ports. As a KeyboardInterrupt
    they end the run as Ctrl-C does, teardown included. (Each server is also started with
    die_with_parent, for a SIGKILL.)
    """

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.armed = True

    def handle(self, signum: int, frame: FrameType | None) -> None:
        # Only the first: `timeout` signals its child, then the child's whole process group,
        # and a second interrupt would cut short the teardown the first one started. A handler
        # that does nothing rather than SIG_IGN, which a child started meanwhile would inherit.
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def pytest_configure(config: pytest.Config) -> None:
    stop_signals = _StopSignals()
    previous = {
        signum: signal.signal(signum, stop_signals.handle) for signum in stop_signals.SIGNALS
    }

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    config.add_cleanup(restore)


@dataclass
class Stack:
    """Addresses of the running services, and their processes for fault tests."""

    gateway_url: str
    db_addr: str
    logging_addr: str
    database_url: str
    kafka_bootstrap: str
    env: dict[str, str]
    log_dir: Path
    broker: TansuBroker
    processes: dict[str, ManagedProcess] = field(default_factory=dict)


def wait_until(predicate: object, *, timeout: float, message: str, interval: float = 0.05) -> None:
    """Poll `predicate()` until it is truthy; fail with `message` after `timeout` seconds."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s: {message}")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(
        tmp_path_factory.mktemp("pg") / "data", port=free_port(), die_with_parent=True
    )
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def broker() -> Iterator[TansuBroker]:
    b = TansuBroker(port=free_port(), die_with_parent=True)
    b.start()
    yield b
    b.stop()


# db_service's default Argon2 cost, for a test that needs a hash to take its real time.
PRODUCTION_HASH_COST = {"PASSWORD_HASH_TIME_COST": "3", "PASSWORD_HASH_MEMORY_KIB": "65536"}


def service_env(**overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ADMIN_", "DB_", "KAFKA_", "LOG_SPOOL_", "LOG_DURABILITY"))
    }
    env.update(
        PYTHONUNBUFFERED="1",
        MERCH_ENV="development",
        JWT_SECRET=JWT_SECRET,
        ADMIN_SID=ADMIN["sid"],
        ADMIN_USERNAME=ADMIN["username"],
        ADMIN_PASSWORD=ADMIN["password"],
        LOGIN_WINDOW_S=str(LOGIN_WINDOW_S),
        # Every test client is 127.0.0.1: the per-client limit is shown on a stack of its own
        # (tests/security/test_configured_limits.py), and here a test may act as another
        # client with X-Forwarded-For.
        CLIENT_AUTH_LIMIT="1000000",
        TRUSTED_PROXIES="127.0.0.1",
        WINDOW_SWEEP_INTERVAL_S="0.5",
        # Records in Kafka within 0.2 s rather than the default second: hundreds of tests wait
        # for one. (A stop ships at once whatever the interval: test_logging_shipper.py.)
        LOG_FLUSH_INTERVAL_S="0.2",
        # The suite registers and logs in hundreds of users: at production's cost (3 passes
        # over 64 MiB, ~0.17 s a hash here) that was minutes of the suite. A test that needs
        # the real cost (a hash slow enough to be in flight) asks for PRODUCTION_HASH_COST.
        PASSWORD_HASH_TIME_COST="1",
        PASSWORD_HASH_MEMORY_KIB="256",
    )
    env.update(overrides)
    return env


def start_service(name: str, env: dict[str, str], log_dir: Path) -> ManagedProcess:
    """Start `python -m name`; a service that ships logs gets a fresh spool directory of its own
    unless `env` names one (a test restarting a service on its old spool passes it)."""
    if name != "logging_service" and "LOG_SPOOL_DIR" not in env:
        env = dict(env, LOG_SPOOL_DIR=tempfile.mkdtemp(prefix=f"spool-{name}-", dir=log_dir))
    log_file = (log_dir / f"{name}.log").open("a", encoding="utf-8")
    proc = ManagedProcess(
        name, [sys.executable, "-m", name], env=env, cwd=ROOT, output=log_file, die_with_parent=True
    )
    proc.start()
    return proc


def wait_ready(url: str, procs: dict[str, ManagedProcess], timeout: float = 60) -> None:
    def ready() -> bool:
        for name, proc in procs.items():
            if not proc.running:
                raise AssertionError(f"{name} exited early:\n" + "\n".join(proc.tail()))
        try:
            return answers_ready(httpx.get(f"{url}/readyz", timeout=1))
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=timeout, message=f"{url}/readyz never answered ready")


@pytest.fixture(scope="session")
def stack(
    postgres: EmbeddedPostgres, broker: TansuBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("logs")
    database_url = postgres.ensure_database("merch_test")
    db_port, log_port, gw_port = free_port(), free_port(), free_port()
    env = service_env(
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        DB_SERVICE_LISTEN=f"127.0.0.1:{db_port}",
        DB_SERVICE_ADDR=f"127.0.0.1:{db_port}",
        LOGGING_SERVICE_LISTEN=f"127.0.0.1:{log_port}",
        LOGGING_SERVICE_ADDR=f"127.0.0.1:{log_port}",
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_PORT=str(gw_port),
    )
    s = Stack(
        gateway_url=f"http://127.0.0.1:{gw_port}",
        db_addr=f"127.0.0.1:{db_port}",
        logging_addr=f"127.0.0.1:{log_port}",
        database_url=database_url,
        kafka_bootstrap=broker.bootstrap_servers,
        env=env,
        log_dir=log_dir,
        broker=broker,
    )
    for name in ("logging_service", "db_service", "gateway"):
        s.processes[name] = start_service(name, env, log_dir)
    try:
        wait_ready(s.gateway_url, s.processes)
        yield s
    finally:
        for name in ("gateway", "db_service", "logging_service"):
            s.processes[name].stop(timeout=10)


@pytest.fixture(scope="session")
def gateway_url(stack: Stack) -> str:
    return stack.gateway_url


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as c:
        yield c
