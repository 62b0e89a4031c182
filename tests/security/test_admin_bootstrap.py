"""The admin from ADMIN_SID / ADMIN_USERNAME / ADMIN_PASSWORD never takes over another account.

db_service is started beside the session stack, on its database, with an admin configuration
that collides with an existing customer: it must refuse to start with one clear line, and leave
the customer as it was (no crash loop with a traceback, no silent promotion).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable

import asyncpg
import httpx
import pytest

from scripts.processes import free_port
from tests.conftest import ADMIN, ROOT, Stack, wait_until
from tests.factories import Account, make_user
from tests.ownstack import grpc_status

# (case, ADMIN_SID and ADMIN_USERNAME given a customer, the variable the refusal names)
COLLISIONS: list[tuple[str, Callable[[Account], tuple[str, str]], str]] = [
    ("ADMIN_SID of a customer", lambda c: (c.sid, f"{c.username}_boss"), "ADMIN_SID"),
    ("ADMIN_USERNAME of a customer", lambda c: ("B" + c.sid[1:], c.username), "ADMIN_USERNAME"),
    ("both of one customer", lambda c: (c.sid, c.username), "ADMIN_SID"),
    # the admin's email is made from ADMIN_USERNAME: <username>@admin.invalid
    (
        "ADMIN_USERNAME making a customer's email",
        lambda c: ("B" + c.sid[1:], c.email.partition("@")[0]),
        "ADMIN_USERNAME",
    ),
]
ADMIN_VARIABLES = ("ADMIN_SID", "ADMIN_USERNAME", "ADMIN_PASSWORD")
BOOTSTRAP_PASSWORD = "bootstrap-password-1"


def _start_db_service(
    stack: Stack,
    sid: str,
    username: str,
    password: str = BOOTSTRAP_PASSWORD,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """Run db_service until it exits by itself, or for 15 s (then it is killed)."""
    port = free_port()
    env = dict(
        stack.env,
        DB_SERVICE_LISTEN=f"127.0.0.1:{port}",
        ADMIN_SID=sid,
        ADMIN_USERNAME=username,
        ADMIN_PASSWORD=password,
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


def _refusal(result: subprocess.CompletedProcess[str]) -> str:
    """db_service's one line refusing to start, after checking it exited at once with it."""
    assert result.returncode not in (0, -9), "db_service started (or hung) instead of refusing"
    assert "Traceback" not in result.stderr + result.stdout
    refusals = [line for line in result.stderr.splitlines() if "refusing to start" in line]
    assert len(refusals) == 1, result.stderr
    return refusals[0]


def _names_only(refusal: str, variable: str) -> bool:
    """Whether `refusal` names `variable` as the one to change, and no other admin variable."""
    others = [v for v in ADMIN_VARIABLES if v != variable]
    return f"refusing to start: {variable}: " in refusal and not any(v in refusal for v in others)


@pytest.mark.parametrize(
    ("case", "collide", "variable"), COLLISIONS, ids=[c[0] for c in COLLISIONS]
)
async def test_an_admin_configuration_naming_a_customer_refuses_to_start(
    client: httpx.AsyncClient,
    stack: Stack,
    case: str,
    collide: Callable[[Account], tuple[str, str]],
    variable: str,
) -> None:
    # given a customer (with an email the admin's could be), and an admin configuration naming
    # its sid, its username or its email
    name = f"boss_{uuid.uuid4().hex[:12]}"
    customer = await make_user(client, email=f"{name}@admin.invalid")
    sid, username = collide(customer)

    # when db_service starts with it
    result = _start_db_service(stack, sid, username)

    # then it exits at once with one clear line naming the variable to change, and the
    # customer is still a customer
    refusal = _refusal(result)
    assert "customer" in refusal or "another account" in refusal
    assert _names_only(refusal, variable), refusal
    assert "bootstrap-password-1" not in result.stderr + result.stdout
    assert await _role(stack.database_url, customer.sid) == "customer"
    relogin = await client.post(
        "/api/v1/users/login", json={"username": customer.username, "password": customer.password}
    )
    assert relogin.status_code == 200
    assert relogin.json()["user"]["role"] == "customer"


# (case, ADMIN_SID, ADMIN_USERNAME, ADMIN_PASSWORD, the variable the refusal names)
INVALID_ADMINS = [
    ("ADMIN_SID not letters and digits", "B-1", "bootstrap_boss", "bootstrap-password-1",
     "ADMIN_SID"),
    ("ADMIN_USERNAME with a space", "B1", "bootstrap boss", "bootstrap-password-1",
     "ADMIN_USERNAME"),
    ("ADMIN_PASSWORD too short", "B1", "bootstrap_boss", "sh0rt-x", "ADMIN_PASSWORD"),
    ("ADMIN_PASSWORD too long", "B1", "bootstrap_boss", "p" * 1025, "ADMIN_PASSWORD"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "sid", "username", "password", "variable"),
    INVALID_ADMINS,
    ids=[c[0] for c in INVALID_ADMINS],
)
async def test_an_invalid_admin_configuration_names_its_variable(
    stack: Stack, case: str, sid: str, username: str, password: str, variable: str
) -> None:
    # given an admin configuration with one value the account rules refuse
    # when db_service starts with it
    result = _start_db_service(stack, sid, username, password)

    # then its one line names that variable alone (not another the operator would change for
    # nothing), and no account was made
    refusal = _refusal(result)
    assert _names_only(refusal, variable), refusal
    assert password not in result.stderr + result.stdout
    assert await _role(stack.database_url, sid) is None


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
