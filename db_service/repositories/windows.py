"""Fixed-window counters in PostgreSQL (login throttling, per-client limits, order rate limits).

They live in the database so every db_service replica sees the same counts (DESIGN.md §10).
An expired window counts exactly like no row at all, so expired rows are deleted
(`delete_expired`, run by db_service.sweeper) instead of piling up for keys never seen again.
"""

from __future__ import annotations

from typing import Literal

import asyncpg

Table = Literal["login_attempts", "client_auth_windows", "order_rate_windows"]

# table → its key columns; names come from this table only, never from a caller.
_KEYS: dict[str, tuple[str, ...]] = {
    "login_attempts": ("username_key", "client_key"),
    "client_auth_windows": ("client_key",),
    "order_rate_windows": ("user_id",),
}


def upsert(table: Table, rows: str, window: str) -> str:
    """The counting upsert of `table` for `rows` (an INSERT's source: the key columns, the
    attempts to count, now()), with `window` (a parameter like "$2") in seconds: returns the
    key columns, `attempts` (with these) and `retry_after` (seconds until the window ends).
    A statement may embed it as a CTE; rows of several keys lock their windows in the order
    the source gives them."""
    names = ", ".join(_KEYS[table])
    return f"""
        INSERT INTO {table} AS w ({names}, attempts, window_start)
        {rows}
        ON CONFLICT ({names}) DO UPDATE SET
            attempts = CASE WHEN w.window_start <= now() - make_interval(secs => {window})
                            THEN excluded.attempts ELSE w.attempts + excluded.attempts END,
            window_start = CASE WHEN w.window_start <= now() - make_interval(secs => {window})
                                THEN now() ELSE w.window_start END
        RETURNING {names}, attempts,
            ceil(extract(epoch FROM
                window_start + make_interval(secs => {window}) - now()))::int AS retry_after
        """


async def count_attempt(
    pool: asyncpg.Pool, table: Table, *key: str | int, window_s: int
) -> tuple[int, int]:
    """Count one attempt in `key`'s window: (attempts so far, seconds until the window ends).

    One atomic upsert; the window restarts once `window_s` has passed. Attempts racing each
    other are all counted, whichever replica serves them.
    """
    columns = _KEYS[table]
    assert len(key) == len(columns), f"{table} is keyed by {columns}"
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    row = await pool.fetchrow(
        upsert(table, f"VALUES ({values}, 1, now())", f"${len(columns) + 1}"),
        *key,
        float(window_s),
    )
    assert row is not None
    return row["attempts"], max(1, row["retry_after"])


async def clear(pool: asyncpg.Pool, table: Table, *key: str | int) -> None:
    """Forget `key`'s window (a successful login starts its account's count afresh)."""
    columns = _KEYS[table]
    assert len(key) == len(columns), f"{table} is keyed by {columns}"
    condition = " AND ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=1))
    await pool.execute(f"DELETE FROM {table} WHERE {condition}", *key)


async def delete_expired(pool: asyncpg.Pool, table: Table, *, window_s: int, limit: int) -> int:
    """Delete at most `limit` windows of `table` that ended; returns how many were deleted.

    A window that a racing attempt restarts in the meantime is not deleted: the condition is
    checked again on the row the attempt wrote. A window another transaction holds is skipped,
    never waited for (it is in use, so not expired for long; the next round has it): a batch of
    orders locks its users' windows in user id order, this delete would take them in table
    order, and a wait on each side was a deadlock whose loser was the batch's every order.
    """
    status = await pool.execute(
        f"""
        DELETE FROM {table} WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM {table}
            WHERE window_start <= now() - make_interval(secs => $1)
            ORDER BY window_start LIMIT $2
            FOR UPDATE SKIP LOCKED
        )) AND window_start <= now() - make_interval(secs => $1)
        """,
        float(window_s),
        limit,
    )
    # asyncpg returns the command tag, "DELETE <count>".
    return int(status.rsplit(" ", 1)[1])
