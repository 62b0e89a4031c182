"""db_service's pool connections: no reset round trip on release, still no transaction leak."""

from __future__ import annotations

import asyncpg

from db_service.server import PooledConnection
from tests.conftest import Stack


async def test_release_skips_the_reset_query_but_not_the_rollback(stack: Stack) -> None:
    pool = await asyncpg.create_pool(
        stack.database_url, min_size=1, max_size=1, connection_class=PooledConnection
    )
    try:
        async with pool.acquire() as conn:
            assert conn.get_reset_query() == ""
            # Session state survives a release (nothing in db_service sets any)…
            await conn.execute("SET application_name = 'kept'")
            # …but a transaction left open does not.
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE leaked (x int)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.leaked')") is None
            assert await conn.fetchval("SHOW application_name") == "kept"
    finally:
        await pool.close()
