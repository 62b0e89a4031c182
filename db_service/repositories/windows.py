"""Fixed-window counters in PostgreSQL (login throttling, order rate limits).

They live in the database so every db_service replica sees the same counts (DESIGN.md §10).
"""

from __future__ import annotations

from typing import Literal

import asyncpg

# table → its key column; names come from this table only, never from a caller.
_KEYS = {"login_attempts": "username_key", "order_rate_windows": "user_id"}


async def count_attempt(
    pool: asyncpg.Pool,
    table: Literal["login_attempts", "order_rate_windows"],
    key: str | int,
    *,
    window_s: int,
) -> tuple[int, int]:
    """Count one attempt in `key`'s window: (attempts so far, seconds until the window ends).

    One atomic upsert; the window restarts once `window_s` has passed. Attempts racing each
    other are all counted, whichever replica serves them.
    """
    column = _KEYS[table]
    row = await pool.fetchrow(
        f"""
        INSERT INTO {table} AS w ({column}, attempts, window_start)
        VALUES ($1, 1, now())
        ON CONFLICT ({column}) DO UPDATE SET
            attempts = CASE WHEN w.window_start <= now() - make_interval(secs => $2)
                            THEN 1 ELSE w.attempts + 1 END,
            window_start = CASE WHEN w.window_start <= now() - make_interval(secs => $2)
                                THEN now() ELSE w.window_start END
        RETURNING attempts,
            ceil(extract(epoch FROM
                window_start + make_interval(secs => $2) - now()))::int AS retry_after
        """,
        key,
        float(window_s),
    )
    assert row is not None
    return row["attempts"], max(1, row["retry_after"])
