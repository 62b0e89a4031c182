"""The stack under test, started the way `make run` and the test fixtures start it.

PostgreSQL (its own data directory under .merch/bench), the Tansu broker, logging_service,
db_service and the gateway, each a child process on a free port, plus two extras:

- three twin pairs of gateway and db_service for the logging overhead, each idle while another
  is measured, so all are timed in the same interleaved rounds: logging on in the default mode
  ("batch"), LOG_SHIPPING=false ("off") and LOG_DURABILITY=sync ("sync"). They serve the same
  requests, so they differ in their logging alone: the logging-on pair "on" serves every
  scenario, and its heap and caches (114 MB against the twins' 76 MB on 2026-12-07) cost CPU
  that would count as logging;
- the baseline app (bench/baseline.py): one uvicorn worker, one SELECT, no gRPC hop.

The children's output goes to .merch/bench/logs/<name>.log; every child is started with
die_with_parent, so not even a SIGKILL of the bench leaves one behind.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

from bench.options import REPO, BenchError, BenchOptions
from scripts.infra import EmbeddedPostgres, ManagedProcess, TansuBroker, free_port
from scripts.processes import answers_ready

HOST = "127.0.0.1"
ADMIN_SID = "A0000001"
ADMIN_USERNAME = "bench_admin"
ADMIN_PASSWORD = "bench-admin-password-0123"  # noqa: S105 - a throwaway database's admin
# The order scenarios place hundreds of orders a second for a handful of users: far over the
# per-user limit meant for shoppers. The limiter still runs (its UPSERT is part of the cost
# measured); it just never refuses.
DB_SERVICE_BENCH_ENV = {"ORDER_RATE_LIMIT": "1000000000", "CLIENT_AUTH_LIMIT": "1000000000"}
READY_TIMEOUT_S = 120.0
# The gateway of --workers N processes, beside the one-process gateway "on".
WORKERS_TARGET = "workers"
# The twins timed for the logging overhead: the default mode, logging off, and sync mode.
LOGGING_TWINS = ("batch", "off", "sync")
_STOP_TIMEOUT_S = 10.0
# Variables of the developer's shell that would point a child at the wrong place.
_SCRUBBED_PREFIXES = (
    "ADMIN_",
    "DB_",
    "KAFKA_",
    "DATABASE_",
    "GATEWAY_",
    "LOGGING_",
    "LOG_",
    "MERCH_",
    "JWT_",
)


@dataclass(frozen=True)
class Target:
    """Something wrk drives: its base URL and the processes whose CPU time it costs."""

    name: str
    url: str
    pids: Mapping[str, int]
    gateway_metrics: bool

    @property
    def metrics_url(self) -> str | None:
        return f"{self.url}/metrics" if self.gateway_metrics else None


@dataclass
class BenchStack:
    """Starts, watches and stops every process of a bench run."""

    options: BenchOptions
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    dsn: str = ""
    logging_metrics_url: str = ""
    _pg: EmbeddedPostgres | None = None
    _broker: TansuBroker | None = None
    _services: dict[str, ManagedProcess] = field(default_factory=dict)
    _urls: dict[str, str] = field(default_factory=dict)
    _gateway_env: dict[str, dict[str, str]] = field(default_factory=dict)
    _variants: set[str] = field(default_factory=set)
    _logs: list[TextIO] = field(default_factory=list)

    def start_infra(self) -> str:
        """Start PostgreSQL and the broker; return the bench database's DSN."""
        self.options.log_dir.mkdir(parents=True, exist_ok=True)
        self._pg = EmbeddedPostgres(
            self.options.data_dir / "pgdata",
            free_port(),
            output=self._log("postgres"),
            die_with_parent=True,
        )
        self._pg.start(timeout=60)
        self.dsn = self._pg.ensure_database("merch_bench")
        self._broker = TansuBroker(free_port(), output=self._log("tansu"), die_with_parent=True)
        self._broker.start(timeout=30)
        return self.dsn

    def start_services(self) -> None:
        """Start the services, the logging twins (if asked for) and the baseline."""
        assert self._broker is not None
        log_addr = f"{HOST}:{free_port()}"
        metrics_port = free_port()
        self.logging_metrics_url = f"http://{HOST}:{metrics_port}/metrics"
        self._spawn(
            "logging_service",
            self._module("logging_service"),
            {
                "KAFKA_BOOTSTRAP_SERVERS": self._broker.bootstrap_servers,
                "LOGGING_SERVICE_LISTEN": log_addr,
                "LOGGING_SERVICE_ADDR": log_addr,
                "LOGGING_METRICS_PORT": str(metrics_port),
            },
        )
        admin = {
            "ADMIN_SID": ADMIN_SID,
            "ADMIN_USERNAME": ADMIN_USERNAME,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        self._start_pair("on", log_addr, shipping=True, extra_db_env=admin)
        if self.options.workers > 1:
            self._start_gateway(
                "gateway_workers",
                WORKERS_TARGET,
                {**self._gateway_env["on"], "GATEWAY_WORKERS": str(self.options.workers)},
            )
        if self.options.logging_off_run:
            # No ADMIN_*: two db_services creating the same admin at once would race.
            for twin in LOGGING_TWINS:
                self._start_pair(twin, log_addr, shipping=twin != "off", extra_db_env={})
        port = free_port()
        self._urls["baseline"] = f"http://{HOST}:{port}"
        argv = [sys.executable, "-m", "bench.baseline", "--dsn", self.dsn]
        self._spawn("baseline", [*argv, "--host", HOST, "--port", str(port)], {})

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until every gateway and the baseline are ready (`answers_ready`)."""
        deadline = time.monotonic() + timeout_s
        pending = dict(self._urls)
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while pending:
                self.raise_if_exited()
                for name, url in list(pending.items()):
                    try:
                        if answers_ready(client.get(f"{url}/readyz")):
                            del pending[name]
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    names = ", ".join(sorted(pending))
                    raise BenchError(
                        f"not ready within {timeout_s:g} s: {names}; see {self._where}"
                    )
                time.sleep(0.2)

    def raise_if_exited(self) -> None:
        """BenchError naming a service that has died, with the end of its output."""
        for name, process in self._services.items():
            if process.returncode is not None:
                tail = "\n".join(f"    {line}" for line in process.tail()[-12:])
                raise BenchError(f"{name} exited ({process.returncode}); its last output:\n{tail}")

    def target(self, name: str) -> Target:
        """The logging-on stack ("on"), a logging twin (LOGGING_TWINS), a variant
        (add_variant), or the baseline."""
        assert self._pg is not None
        assert self._broker is not None
        common = {"postgres": self._pg.pid, "broker": self._broker.pid}
        if name == "baseline":
            pids = {"gateway": self._services["baseline"].pid, **common}
            return Target("baseline", self._urls["baseline"], pids, gateway_metrics=False)
        if name in self._variants:  # a gateway in front of the logging-on db_service
            gateway, suffix = f"gateway_{name}", ""
        else:
            suffix = "" if name in ("on", WORKERS_TARGET) else f"_{name}"
            gateway = "gateway_workers" if name == WORKERS_TARGET else f"gateway{suffix}"
        pids = {
            # The supervisor: its CPU time includes its workers' (bench.procstats reads the tree).
            "gateway": self._services[gateway].pid,
            "db_service": self._services[f"db_service{suffix}"].pid,
            "logging_service": self._services["logging_service"].pid,
            **common,
        }
        return Target(name, self._urls[name], pids, gateway_metrics=True)

    @property
    def has_logging_twins(self) -> bool:
        return all(twin in self._urls for twin in LOGGING_TWINS)

    @property
    def has_workers(self) -> bool:
        return WORKERS_TARGET in self._urls

    @property
    def shipping_gateways(self) -> list[str]:
        """The targets whose gateway ships log records ("on", its --workers twin, the "batch"
        and "sync" twins, the variants): what the report counts the log pipeline over."""
        return [
            name for name, env in self._gateway_env.items() if env.get("LOG_SHIPPING") != "false"
        ]

    def stop(self) -> None:
        """Stop everything, newest first; each child gets its graceful signal, then SIGKILL."""
        for process in reversed(list(self._services.values())):
            process.stop(_STOP_TIMEOUT_S)
        self._services.clear()
        for server in (self._broker, self._pg):
            if server is not None:
                server.stop(_STOP_TIMEOUT_S)
        self._broker = self._pg = None
        for log in self._logs:
            log.close()
        self._logs.clear()

    def add_variant(self, name: str, overrides: Mapping[str, str]) -> None:
        """Start a gateway like the logging-on one but for `overrides` in its environment, in
        front of the same db_service (bench.sidebyside); call before wait_ready."""
        if name in self._urls or not name.isidentifier():
            raise BenchError(f"cannot add a gateway named {name!r}")
        env = dict(self._gateway_env["on"])
        env["LOG_SPOOL_DIR"] = f"{env['LOG_SPOOL_DIR']}-{name}"
        self._variants.add(name)
        self._start_gateway(f"gateway_{name}", name, {**env, **overrides})

    def _start_pair(
        self, name: str, log_addr: str, *, shipping: bool, extra_db_env: Mapping[str, str]
    ) -> None:
        suffix = "" if name == "on" else f"_{name}"
        shipping_env = {
            "LOG_SHIPPING": "true" if shipping else "false",
            "LOG_DURABILITY": "sync" if name == "sync" else "batch",
        }
        db_addr = f"{HOST}:{free_port()}"
        spool = self.options.data_dir / "spool"
        db_env = {
            "DATABASE_URL": self.dsn,
            "DB_SERVICE_LISTEN": db_addr,
            "LOGGING_SERVICE_ADDR": log_addr,
            "LOG_SPOOL_DIR": str(spool / f"db_service{suffix}"),
        }
        self._spawn(
            f"db_service{suffix}",
            self._module("db_service"),
            {**db_env, **shipping_env, **extra_db_env, **DB_SERVICE_BENCH_ENV},
        )
        gateway_env = {
            "DB_SERVICE_ADDR": db_addr,
            "LOGGING_SERVICE_ADDR": log_addr,
            "LOG_SPOOL_DIR": str(spool / f"gateway{suffix}"),
        }
        self._start_gateway(f"gateway{suffix}", name, {**gateway_env, **shipping_env})

    def _start_gateway(self, process: str, target: str, env: Mapping[str, str]) -> None:
        port = free_port()
        self._gateway_env[target] = dict(env)
        listen = {"GATEWAY_HOST": HOST, "GATEWAY_PORT": str(port)}
        self._spawn(process, self._module("gateway"), {**env, **listen})
        self._urls[target] = f"http://{HOST}:{port}"

    @staticmethod
    def _module(module: str) -> list[str]:
        return [sys.executable, "-m", module]

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        child_env.update(PYTHONUNBUFFERED="1", MERCH_ENV="development", JWT_SECRET=self.jwt_secret)
        child_env.update(env)
        process = ManagedProcess(
            name,
            argv,
            env=child_env,
            cwd=REPO,
            output=self._log(name),
            die_with_parent=True,
        )
        self._services[name] = process
        process.start()

    def _log(self, name: str) -> TextIO:
        log = (self.options.log_dir / f"{name}.log").open("w", encoding="utf-8")
        self._logs.append(log)
        return log

    @property
    def _where(self) -> Path:
        return self.options.log_dir
