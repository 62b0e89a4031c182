"""Services of a test's own, beside the session stack, for settings or faults it must not see.

    with own_services(stack, ("db_service", "gateway"), ORDER_RATE_LIMIT="3") as own:
        httpx.get(f"{own.gateway_url}/readyz")
        os.kill(own.processes["db_service"].pid, signal.SIGSTOP)

Each service listens on a fresh port and takes the session stack's environment (database,
broker, logging service) unless overridden; a gateway started with a db_service of its own is
pointed at it. The processes are stopped when the block ends, whatever happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scripts.processes import ManagedProcess, free_port
from tests.conftest import Stack, start_service, wait_until


@dataclass
class OwnStack:
    env: dict[str, str]
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://{self.env.get('GATEWAY_HOST', '127.0.0.1')}:{self.env['GATEWAY_PORT']}"

    @property
    def db_addr(self) -> str:
        return self.env["DB_SERVICE_ADDR"]

    @property
    def logging_addr(self) -> str:
        return self.env["LOGGING_SERVICE_ADDR"]


def own_env(stack: Stack, names: Sequence[str], **overrides: str) -> dict[str, str]:
    """The session's environment with fresh ports for `names`, then `overrides`."""
    env = dict(stack.env)
    if "db_service" in names:
        db = f"127.0.0.1:{free_port()}"
        env.update(DB_SERVICE_LISTEN=db, DB_SERVICE_ADDR=db)
    if "logging_service" in names:
        logs = f"127.0.0.1:{free_port()}"
        env.update(LOGGING_SERVICE_LISTEN=logs, LOGGING_SERVICE_ADDR=logs)
    env["GATEWAY_PORT"] = str(free_port())
    env.update(overrides)
    return env


def grpc_status(target: str, timeout: float = 1.0) -> str:
    """The health answer of a gRPC server: SERVING, NOT_SERVING, … or UNREACHABLE."""
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
        except grpc.RpcError:
            return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def gateway_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_started(own: OwnStack, *, timeout: float = 30) -> None:
    """Until each started service answers: gRPC health SERVING, the gateway /healthz 200."""

    def up() -> bool:
        for name, proc in own.processes.items():
            if not proc.running:
                raise AssertionError(f"{name} exited early:\n" + "\n".join(proc.tail()))
        checks = {
            "db_service": lambda: grpc_status(own.db_addr) == "SERVING",
            "logging_service": lambda: grpc_status(own.logging_addr) == "SERVING",
            "gateway": lambda: gateway_answers(own.gateway_url),
        }
        return all(checks[name]() for name in own.processes)

    wait_until(up, timeout=timeout, message=f"{sorted(own.processes)} never got ready")


@contextlib.contextmanager
def own_services(stack: Stack, names: Sequence[str], **overrides: str) -> Iterator[OwnStack]:
    """Start `names` (in order) with the session's environment and `overrides`; stop them after."""
    own = OwnStack(env=own_env(stack, names, **overrides))
    try:
        for name in names:
            own.processes[name] = start_service(name, own.env, stack.log_dir)
        wait_started(own)
        yield own
    finally:
        for name in reversed(list(own.processes)):
            own.processes[name].stop(timeout=10)
