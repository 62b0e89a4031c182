"""SQL for the log outbox (migrations/005_log_outbox.sql)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

# A connection in a transaction, as the pool hands it out or as opened alone.
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

# Inside a change's transaction: its records, in order. NULLs (an outbox full) are skipped.
INSERT = (
    "INSERT INTO log_outbox (record)"
    " SELECT r FROM unnest($1::jsonb[]) WITH ORDINALITY AS e(r, n) WHERE r IS NOT NULL ORDER BY n"
)
# One relay at a time across replicas: a transaction-level lock (no session state is kept).
_RELAY_LOCK_ID = 0x6C6F6773  # "logs"


async def write(conn: Conn, records: list[str | None]) -> None:
    """Write `records` (JSON) in the transaction `conn` is in."""
    if any(records):
        await conn.execute(INSERT, records)


class OutboxRepository:
    """The relay's side: take the oldest rows under a lock, delete them once delivered."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def any(self) -> bool:
        return bool(await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM log_outbox)"))

    async def count(self, *, at_most: int) -> int:
        """Rows waiting, counted up to `at_most` (a bounded scan however large it grows)."""
        value = await self._pool.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM log_outbox LIMIT $1) AS waiting", at_most
        )
        return int(value or 0)

    async def lock(self, conn: Conn, *, hold_max_s: float) -> bool:
        """Take the relay lock for this transaction; False when another replica holds it.

        The transaction waits on logging_service with the lock and its rows held; PostgreSQL
        ends it (and its session) should it sit idle longer than `hold_max_s`: a replica that
        froze or lost its network there (nothing closes its connection) would otherwise stop
        every replica's relay for as long as TCP takes to notice, hours by default."""
        return bool(
            await conn.fetchval(
                "SELECT set_config('idle_in_transaction_session_timeout', $2, true) IS NOT NULL"
                " AND pg_try_advisory_xact_lock($1)",
                _RELAY_LOCK_ID,
                f"{round(hold_max_s * 1000)}ms",
            )
        )

    async def oldest(self, conn: Conn, limit: int) -> list[tuple[int, str]]:
        rows = await conn.fetch(
            "SELECT id, record::text AS record FROM log_outbox ORDER BY id LIMIT $1"
            " FOR UPDATE SKIP LOCKED",
            limit,
        )
        return [(r["id"], r["record"]) for r in rows]

    async def delete(self, conn: Conn, ids: list[int]) -> None:
        await conn.execute("DELETE FROM log_outbox WHERE id = ANY($1::bigint[])", ids)
