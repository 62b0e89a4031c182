"""Expired rate-limit windows are deleted, a bounded batch at a time, and live ones are kept."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from db_service.repositories.windows import delete_expired
from db_service.sweeper import WindowSweeper
from scripts.infra import EmbeddedPostgres
from tests.conftest import LOGIN_WINDOW_S, Stack
from tests.integration.conftest import database_of_its_own, wait_for


async def _windows_of(database_url: str, username_key: str) -> int:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM login_attempts WHERE username_key = $1", username_key
        )
        return count
    finally:
        await conn.close()


async def test_a_username_that_never_logs_in_leaves_no_window_behind(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a login attempt for a username that will never log in successfully
    ghost = f"ghost_{uuid.uuid4().hex[:12]}"
    wrong = {"username": ghost, "password": "not-a-password"}
    assert (await client.post("/api/v1/users/login", json=wrong)).status_code == 401
    assert await _windows_of(stack.database_url, ghost) == 1

    # when its window has ended; then db_service deletes it (the test stack sweeps every 0.5 s)
    async def gone() -> bool:
        return await _windows_of(stack.database_url, ghost) == 0

    await wait_for(gone, within=LOGIN_WINDOW_S + 15, message=f"the window of {ghost} stayed")


@pytest.fixture
async def pool(postgres: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    """A database of this test's own: no db_service sweeps it behind its back."""
    async with database_of_its_own(postgres, "sweep", max_size=2) as p:
        yield p


async def _add_windows(pool: asyncpg.Pool, *, expired: int, live: int) -> None:
    for n in range(expired):
        await pool.execute(
            "INSERT INTO client_auth_windows (client_key, attempts, window_start)"
            " VALUES ($1, 3, now() - interval '1 hour')",
            f"192.0.2.{n}",
        )
    for n in range(live):
        await pool.execute(
            "INSERT INTO client_auth_windows (client_key, attempts) VALUES ($1, 3)", f"10.0.0.{n}"
        )


async def test_one_delete_is_bounded_by_its_limit(pool: asyncpg.Pool) -> None:
    # given five windows that ended an hour ago and two that are running
    await _add_windows(pool, expired=5, live=2)

    # when expired windows are deleted with a limit of two
    deleted = await delete_expired(pool, "client_auth_windows", window_s=60, limit=2)

    # then two go, and the running ones stay
    assert deleted == 2
    assert await pool.fetchval("SELECT count(*) FROM client_auth_windows") == 5


async def test_a_sweep_deletes_every_expired_window_and_keeps_the_running_ones(
    pool: asyncpg.Pool,
) -> None:
    # given expired and running windows in each table
    await _add_windows(pool, expired=3, live=2)
    await pool.execute(
        "INSERT INTO login_attempts (username_key, client_key, attempts, window_start)"
        " VALUES ('ghost', '192.0.2.1', 4, now() - interval '1 hour'),"
        " ('alive', '192.0.2.1', 1, now())"
    )

    # when the sweeper makes a round
    sweeper = WindowSweeper(
        pool, {"client_auth_windows": 60, "login_attempts": 60}, interval_s=3600
    )
    deleted = await sweeper.sweep()

    # then only the running windows are left
    assert deleted == 4
    assert await pool.fetchval("SELECT count(*) FROM client_auth_windows") == 2
    assert await pool.fetchval("SELECT username_key FROM login_attempts") == "alive"
