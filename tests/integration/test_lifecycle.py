"""Services stop gracefully on SIGTERM, and readiness tells the truth about dependencies."""

from __future__ import annotations

import os
import signal

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scripts.processes import free_port
from tests.conftest import Stack, start_service, wait_until


def _serving(name: str, port: int) -> bool:
    if name == "gateway":
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.mark.parametrize("name", ["db_service", "logging_service", "gateway"])
def test_service_exits_zero_on_sigterm(stack: Stack, name: str) -> None:
    port = free_port()
    env = dict(
        stack.env,
        DB_SERVICE_LISTEN=f"127.0.0.1:{port}",
        LOGGING_SERVICE_LISTEN=f"127.0.0.1:{port}",
        GATEWAY_PORT=str(port),
        ADMIN_SID="",
        ADMIN_USERNAME="",
        ADMIN_PASSWORD="",
    )
    proc = start_service(name, env, stack.log_dir)
    try:
        wait_until(lambda: _serving(name, port), timeout=30, message=f"{name} never got ready")
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=15)
    finally:
        proc.stop(timeout=5)

    assert code == 0, "\n".join(proc.tail())


def test_the_gateway_prints_its_own_log_lines(stack: Stack) -> None:
    # given a gateway started as `make run` starts it
    port = free_port()
    proc = start_service("gateway", dict(stack.env, GATEWAY_PORT=str(port)), stack.log_dir)
    try:
        # when it has started
        wait_until(lambda: _serving("gateway", port), timeout=30, message="gateway never ready")
    finally:
        proc.stop(timeout=5)
    # then its own INFO lines are printed beside uvicorn's, with their level and logger (until
    # 2026-12-07 only uvicorn's loggers were configured: the spool's recovery, shipping
    # recovered and heap freezes were never seen, warnings came bare)
    assert any("INFO gateway: froze the heap at start" in line for line in proc.tail())


def test_a_second_db_service_on_a_taken_port_refuses_to_start(stack: Stack) -> None:
    # given a db_service (one process, no workers) serving on a port
    port = free_port()
    env = dict(
        stack.env,
        DB_SERVICE_LISTEN=f"127.0.0.1:{port}",
        ADMIN_SID="",
        ADMIN_USERNAME="",
        ADMIN_PASSWORD="",
    )
    first = start_service("db_service", env, stack.log_dir)
    second = None
    try:
        wait_until(lambda: _serving("db_service", port), timeout=30, message="no db_service")

        # when another one is started on the same port
        second = start_service("db_service", env, stack.log_dir)
        code = second.wait(timeout=30)
    finally:
        for proc in (second, first):
            if proc is not None:
                proc.stop(timeout=10)

    # then it exits saying so, instead of silently taking a share of the first one's calls
    assert code == 1
    assert any(f"cannot listen on 127.0.0.1:{port}" in line for line in second.tail())


def test_readiness_is_503_naming_unreachable_dependencies(stack: Stack) -> None:
    port = free_port()
    env = dict(
        stack.env,
        GATEWAY_PORT=str(port),
        DB_SERVICE_ADDR=f"127.0.0.1:{free_port()}",
        LOGGING_SERVICE_ADDR=stack.logging_addr,
    )
    proc = start_service("gateway", env, stack.log_dir)
    try:

        def answered() -> bool:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.HTTPError:
                return False
            return True

        wait_until(answered, timeout=30, message="gateway never answered /healthz")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        live = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        proc.stop(timeout=10)

    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not ready",
        "dependencies": {"db_service": "UNREACHABLE", "logging_service": "SERVING"},
        "log_spool": "ok",
    }


@pytest.mark.parametrize(
    ("name", "variable", "workers"),
    [
        ("db_service", "DB_SERVICE_LISTEN", "1"),
        ("logging_service", "LOGGING_SERVICE_LISTEN", "1"),
        ("db_service", "DB_METRICS_PORT", "1"),
        # served by the supervisor, for the sum over its workers
        ("db_service", "DB_METRICS_PORT", "2"),
        ("logging_service", "LOGGING_METRICS_PORT", "1"),
    ],
)
def test_a_service_told_to_listen_on_a_port_in_use_refuses_to_start(
    stack: Stack, name: str, variable: str, workers: str
) -> None:
    # given the stack serving on its ports: a listen address of the service's own kind (as a
    # forgotten old copy or a second `python -m` would meet), or a metrics port the gateway has
    listen = {"db_service": "DB_SERVICE_LISTEN", "logging_service": "LOGGING_SERVICE_LISTEN"}
    env = dict(
        stack.env,
        **{listen[name]: f"127.0.0.1:{free_port()}"},
        ADMIN_SID="",
        ADMIN_USERNAME="",
        ADMIN_PASSWORD="",
        DB_SERVICE_WORKERS=workers,
    )
    if variable.endswith("_LISTEN"):
        taken = stack.db_addr if name == "db_service" else stack.logging_addr
    else:
        taken = stack.gateway_url.rpartition(":")[2]
    env[variable] = taken

    # when the service starts
    proc = start_service(name, env, stack.log_dir)
    try:
        code = proc.wait(timeout=30)
    finally:
        proc.stop(timeout=5)

    # then it refuses at once with one line naming the variable and the port (as the gateway
    # does), rather than share a gRPC port and take half of the first one's calls, or die
    # with a traceback
    output = "\n".join(proc.tail())
    assert code is not None, f"{name} started with {variable}={taken}, which is in use"
    assert code != 0
    refusal = [line for line in proc.tail() if variable in line]
    assert refusal, output
    assert taken in refusal[0]
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "database_url",
    [
        "postgresql://postgres@{host}/no_such_database",
        "postgresql://no_such_role@{host}/merch_test",
        "mysql://postgres@{host}/merch_test",
        # ':' and '@' in the password not percent-encoded: asyncpg's error quoted part of it
        "postgresql://postgres:p@ss:w0rd-secret@{host}/merch_test",
    ],
    ids=["database", "role", "scheme", "password not encoded"],
)
def test_a_database_url_postgresql_refuses_stops_db_service_in_one_line(
    stack: Stack, database_url: str
) -> None:
    # given a DATABASE_URL the running PostgreSQL answers with a refusal no retry changes
    host = stack.database_url.split("@", 1)[1].split("/", 1)[0]
    env = dict(
        stack.env,
        DB_SERVICE_LISTEN=f"127.0.0.1:{free_port()}",
        DATABASE_URL=database_url.format(host=host),
        ADMIN_SID="",
        ADMIN_USERNAME="",
        ADMIN_PASSWORD="",
    )

    # when db_service starts
    proc = start_service("db_service", env, stack.log_dir)
    try:
        code = proc.wait(timeout=30)
    finally:
        proc.stop(timeout=5)

    # then it refuses with one line naming DATABASE_URL, as for any invalid configuration,
    # not asyncpg's traceback
    output = "\n".join(proc.tail())
    assert code == 2, output
    assert [line for line in proc.tail() if "DATABASE_URL" in line], output
    assert "Traceback" not in output
    assert "w0rd-secret" not in output
