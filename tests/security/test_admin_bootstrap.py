"""The admin from ADMIN_SID / ADMIN_USERNAME / ADMIN_PASSWORD never takes over another account.

db_service is started beside the session stack, on its database, with an admin configuration
that collides with an existing customer: it must refuse to start with one clear line, and leave
the customer as it was (no crash loop with a traceback, no silent promotion).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import asyncpg
import httpx
import pytest

from scripts.processes import free_port
from tests.conftest import ADMIN, ROOT, Stack, wait_until
from tests.factories import Account, make_user
from tests.ownstack import grpc_status

# (case, ADMIN_SID and ADMIN_USERNAME given a customer)
COLLISIONS: list[tuple[str, Callable[[Account], tuple[str, str]]]] = [
    ("ADMIN_SID of a customer", lambda c: (c.sid, f"{c.username}_boss")),
    ("ADMIN_USERNAME of a customer", lambda c: ("B" + c.sid[1:], c.username)),
    ("both of one customer", lambda c: (c.sid, c.username)),
]


def _start_db_service(
    stack: Stack, sid: str, username: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run db_service until it exits by itself, or for 15 s (then it is killed)."""
    port = free_port()
    env = dict(
        stack.env,
        DB_SERVICE_LISTEN=f"127.0.0.1:{port}",
        ADMIN_SID=sid,
        ADMIN_USERNAME=username,
        ADMIN_PASSWORD="bootstrap-password-1",
        **extra,
    )
    try:
        return subprocess.run(
            [sys.executable, "-m", "db_service"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return subprocess.CompletedProcess(exc.cmd, -9, out, "")


async def _role(database_url: str, sid: str) -> str | None:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        role: str | None = await conn.fetchval("SELECT role FROM users WHERE sid = $1", sid)
        return role
    finally:
        await conn.close()


@pytest.mark.parametrize(("case", "collide"), COLLISIONS, ids=[c[0] for c in COLLISIONS])
async def test_an_admin_configuration_naming_a_customer_refuses_to_start(
    client: httpx.AsyncClient,
    stack: Stack,
    case: str,
    collide: Callable[[Account], tuple[str, str]],
) -> None:
    # given a customer, and an admin configuration naming its sid or its username
    customer = await make_user(client)
    sid, username = collide(customer)

    # when db_service starts with it
    result = _start_db_service(stack, sid, username)

    # then it exits at once with one clear line, and the customer is still a customer
    assert result.returncode not in (0, -9), "db_service started (or hung) instead of refusing"
    assert "Traceback" not in result.stderr + result.stdout
    refusals = [line for line in result.stderr.splitlines() if "refusing to start" in line]
    assert len(refusals) == 1, result.stderr
    assert "customer" in refusals[0] or "another account" in refusals[0]
    assert "bootstrap-password-1" not in result.stderr + result.stdout
    assert await _role(stack.database_url, customer.sid) == "customer"
    relogin = await client.post(
        "/api/v1/users/login", json={"username": customer.username, "password": customer.password}
    )
    assert relogin.status_code == 200
    assert relogin.json()["user"]["role"] == "customer"


def test_the_configured_admin_itself_still_starts(stack: Stack) -> None:
    # given the admin of the session stack, already created at its start
    port = free_port()
    env = dict(stack.env, DB_SERVICE_LISTEN=f"127.0.0.1:{port}", ADMIN_PASSWORD=ADMIN["password"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "db_service"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # when db_service starts with the same ADMIN_SID and ADMIN_USERNAME; then it serves
        wait_until(
            lambda: proc.poll() is not None or grpc_status(f"127.0.0.1:{port}") == "SERVING",
            timeout=30,
            message="db_service never got ready",
        )
        assert proc.poll() is None, "db_service refused its own admin"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def test_workers_refusing_the_admin_configuration_stop_their_supervisor(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given an admin configuration naming a customer's sid, which no restart can change
    customer = await make_user(client)

    # when db_service starts it with two workers
    result = _start_db_service(
        stack, customer.sid, f"{customer.username}_boss", DB_SERVICE_WORKERS="2"
    )

    # then the workers' refusal stops the supervisor too (README: "a worker that rejects its
    # configuration stops them all"), rather than restarting them with a backoff for ever
    assert result.returncode not in (0, -9), "the supervisor kept restarting refusing workers"
    assert "refusing to start" in result.stderr
    assert await _role(stack.database_url, customer.sid) == "customer"
