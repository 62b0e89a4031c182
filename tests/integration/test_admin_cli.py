"""`python -m db_service create-admin` creates an admin, and resets its password and role."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest

from scripts.processes import free_port
from tests.conftest import ROOT, Stack
from tests.factories import login, make_user


def _admin_cli(
    stack: Stack, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`create-admin` with `args` (and `stdin` piped in), as a script would run it."""
    return subprocess.run(
        [sys.executable, "-m", "db_service", "create-admin", *args],
        input=stdin,
        env={**stack.env, "ADMIN_SID": "", "ADMIN_USERNAME": "", "ADMIN_PASSWORD": ""},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _create_admin(stack: Stack, password: str) -> subprocess.CompletedProcess[str]:
    args = ("--sid", "ADMIN2", "--username", "second_admin", "--password", password)
    return _admin_cli(stack, *args)


async def test_create_admin_then_reset_its_password(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    created = _create_admin(stack, "first-admin-password")
    token = await login(client, "second_admin", "first-admin-password")
    listed = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    reset = _create_admin(stack, "second-admin-password")
    old = await client.post(
        "/api/v1/users/login",
        json={"username": "second_admin", "password": "first-admin-password"},
    )
    new = await login(client, "second_admin", "second-admin-password")

    assert created.returncode == 0, created.stderr
    assert "admin ADMIN2 (second_admin) is ready" in created.stdout
    assert listed.status_code == 200
    assert reset.returncode == 0, reset.stderr
    assert old.status_code == 401
    assert new
    assert "first-admin-password" not in created.stdout + created.stderr


def test_create_admin_refuses_a_short_password(stack: Stack) -> None:
    refused = _create_admin(stack, "short")

    assert refused.returncode == 1
    assert "password must be 8 to 1024 characters" in refused.stderr


async def test_create_admin_says_a_taken_email_comes_from_the_username(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer whose email is what an admin named `name` would get: name@admin.invalid
    name = f"boss_{uuid.uuid4().hex[:12]}"
    await make_user(client, email=f"{name}@admin.invalid")

    # when create-admin makes a new admin of that name
    refused = _admin_cli(stack, "--sid", "ADMIN5", "--username", name, "--password", "x" * 12)

    # then it is refused saying where the email comes from: the --username it was given (it
    # was given no email)
    assert refused.returncode == 1
    made = f"email '{name}@admin.invalid', made from its username, belongs to another account"
    assert made in refused.stderr


async def test_create_admin_again_unchanged_keeps_its_tokens(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    _create_admin(stack, "third-admin-password")
    token = await login(client, "second_admin", "third-admin-password")

    again = _create_admin(stack, "third-admin-password")
    still = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})

    assert again.returncode == 0
    assert still.status_code == 200


async def test_create_admin_reads_the_password_from_stdin_for_scripts(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a script that pipes the password in, so that it never shows in the process list
    args = ("--sid", "ADMIN3", "--username", "third_admin", "--password-stdin")
    piped = _admin_cli(stack, *args, stdin="piped-admin-password\n")

    # then the admin logs in with it (the line's end is not part of it)
    assert piped.returncode == 0, piped.stderr
    assert await login(client, "third_admin", "piped-admin-password")
    assert "piped-admin-password" not in piped.stdout + piped.stderr


def test_create_admin_takes_one_source_of_password(stack: Stack) -> None:
    args = ("--sid", "ADMIN4", "--username", "fourth_admin", "--password", "x" * 12)
    both = _admin_cli(stack, *args, "--password-stdin", stdin="y" * 12 + "\n")

    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr


@pytest.mark.parametrize(
    "database_url",
    [
        "postgresql://postgres@127.0.0.1:{port}/merch",
        # ':' and '@' in the password not percent-encoded: asyncpg's error quoted part of it
        "postgresql://postgres:p@ss:w0rd-secret@127.0.0.1:{port}/merch",
    ],
    ids=["not running", "password not encoded"],
)
def test_create_admin_without_a_database_says_so_in_one_line(
    stack: Stack, database_url: str
) -> None:
    # given DATABASE_URL naming a PostgreSQL that is not running (the usual slip: `make run`
    # is not up, or the URL is another machine's), or one it cannot read; when create-admin runs
    env = {**stack.env, "DATABASE_URL": database_url.format(port=free_port())}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "db_service",
            "create-admin",
            "--sid",
            "A9",
            "--username",
            "boss9",
            "--password-stdin",
        ],
        input="boss9-password-1\n",
        env={**env, "ADMIN_SID": "", "ADMIN_USERNAME": "", "ADMIN_PASSWORD": ""},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # then it fails with one line naming the variable to check, not asyncpg's traceback
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "DATABASE_URL" in line
    assert "Traceback" not in result.stderr
    assert "w0rd-secret" not in result.stderr
