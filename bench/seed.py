"""Seed the bench database fast and idempotently: set-based SQL straight into the migrated schema.

Users, products and orders are inserted with `INSERT ... SELECT generate_series`, so 100k orders
take about a second. A second run finds the counts reached and inserts nothing; a bigger plan
(a full run after a --quick one) only adds what is missing. The orders an earlier run placed (all
of them buy the order target, which no seeded order does) are deleted first, so that every run
starts from the same tables. Every seeded user shares one Argon2
hash of BENCH_PASSWORD, computed once here, so bench users can log in through the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from argon2 import PasswordHasher

from bench.options import SeedPlan
from db_service.migrate import apply_migrations

BENCH_PASSWORD = "bench-password-0123"  # noqa: S105 - a throwaway account in a throwaway database
USER_SID_PREFIX = "B"
PRODUCT_CATEGORY = "Bench"
ORDER_TARGET_NAME = "Bench Order Target"
_ORDER_CHUNK = 25_000
_CONNECT_TIMEOUT_S = 10.0
_STATEMENT_TIMEOUT_MS = 300_000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SeedCounts:
    """What the database holds after seeding."""

    users: int
    products: int
    orders: int
    inserted: int
    removed: int  # orders an earlier run placed
    seconds: float


def bench_username(n: int) -> str:
    """The username of bench user number `n` (1-based)."""
    return f"bench_{n:06d}"


_INSERT_USERS = """
INSERT INTO users (sid, username, email, password_hash, role)
SELECT $4 || lpad(g::text, 8, '0'),
       'bench_' || lpad(g::text, 6, '0'),
       'bench_' || lpad(g::text, 6, '0') || '@bench.invalid',
       $3,
       'customer'
FROM generate_series($1::int, $2::int) AS g
ON CONFLICT DO NOTHING
"""

_INSERT_PRODUCTS = """
INSERT INTO products (name, description, category, price, slogan, stock)
SELECT 'Bench Product ' || lpad(g::text, 5, '0'),
       'A product that exists so that the benchmark reads more than three rows.',
       $3,
       ((g % 100) + 0.99)::numeric(10, 2),
       'Measured with pride!',
       1000
FROM generate_series($1::int, $2::int) AS g
"""

# Orders spread over every bench user and every product but the order target; one in ten is
# cancelled. The multipliers only scatter the picks.
_INSERT_ORDERS = """
WITH u AS (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE sid LIKE $4 || '%'),
     p AS (SELECT array_agg(id ORDER BY id) AS ids, array_agg(price ORDER BY id) AS prices
           FROM products WHERE name <> $3)
INSERT INTO orders (user_id, product_id, quantity, unit_price, total_price, status,
                    created_at, cancelled_at)
SELECT u.ids[1 + (g * 7919) % cardinality(u.ids)],
       p.ids[1 + (g * 31) % cardinality(p.ids)],
       1 + g % 3,
       p.prices[1 + (g * 31) % cardinality(p.ids)],
       p.prices[1 + (g * 31) % cardinality(p.ids)] * (1 + g % 3),
       CASE WHEN g % 10 = 0 THEN 'cancelled' ELSE 'placed' END,
       now() - make_interval(secs => $2 - g),
       CASE WHEN g % 10 = 0 THEN now() ELSE NULL END
FROM generate_series($1::int, $2::int) AS g, u, p
"""


async def seed(dsn: str, plan: SeedPlan, progress: Progress) -> SeedCounts:
    """Apply the migrations, then top the data up to `plan`."""
    started = time.monotonic()
    settings = {"statement_timeout": str(_STATEMENT_TIMEOUT_MS)}
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=1, timeout=_CONNECT_TIMEOUT_S, server_settings=settings
    )
    try:
        await apply_migrations(pool)  # what db_service runs at start; idempotent
    finally:
        await pool.close()
    conn = await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT_S, server_settings=settings)
    try:
        removed = await _remove_placed_orders(conn, progress)
        inserted = await _seed_products(conn, plan.products, progress)
        inserted += await _seed_users(conn, plan.users, progress)
        inserted += await _seed_orders(conn, plan.orders, progress)
        if removed:
            progress("vacuuming the orders table")
            await conn.execute("VACUUM (ANALYZE) orders")
        if inserted:
            progress("analysing the tables")
            await conn.execute("ANALYZE users; ANALYZE products; ANALYZE orders")
        users, products, orders = await _counts(conn)
    finally:
        await conn.close()
    return SeedCounts(users, products, orders, inserted, removed, time.monotonic() - started)


async def _remove_placed_orders(conn: asyncpg.Connection, progress: Progress) -> int:
    """Delete the orders earlier bench runs placed: every one buys the order target."""
    target = await conn.fetchval("SELECT id FROM products WHERE name = $1", ORDER_TARGET_NAME)
    if target is None:
        return 0
    placed = int(await conn.fetchval("SELECT count(*) FROM orders WHERE product_id = $1", target))
    if placed:
        progress(f"deleting the {placed} orders earlier runs placed")
        await conn.execute("DELETE FROM orders WHERE product_id = $1", target)
    return placed


async def _counts(conn: asyncpg.Connection) -> tuple[int, int, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM users) AS users,"
        " (SELECT count(*) FROM products) AS products,"
        " (SELECT count(*) FROM orders) AS orders"
    )
    assert row is not None
    return int(row["users"]), int(row["products"]), int(row["orders"])


async def _seed_products(conn: asyncpg.Connection, wanted: int, progress: Progress) -> int:
    have = await conn.fetchval(
        "SELECT count(*) FROM products WHERE category = $1 AND name <> $2",
        PRODUCT_CATEGORY,
        ORDER_TARGET_NAME,
    )
    inserted = 0
    if have < wanted:
        progress(f"seeding products {have + 1}..{wanted}")
        await conn.execute(_INSERT_PRODUCTS, have + 1, wanted, PRODUCT_CATEGORY)
        inserted += wanted - have
    target = await conn.fetchval("SELECT id FROM products WHERE name = $1", ORDER_TARGET_NAME)
    if target is None:
        await conn.execute(
            "INSERT INTO products (name, description, category, price, slogan, stock)"
            " VALUES ($1, 'Every benchmark order buys this.', $2, 5.00, 'Bought in bulk!', 0)",
            ORDER_TARGET_NAME,
            PRODUCT_CATEGORY,
        )
        inserted += 1
    return inserted


async def _seed_users(conn: asyncpg.Connection, wanted: int, progress: Progress) -> int:
    have = await conn.fetchval(
        "SELECT count(*) FROM users WHERE sid LIKE $1", USER_SID_PREFIX + "%"
    )
    if have >= wanted:
        return 0
    progress(f"seeding users {have + 1}..{wanted} (one Argon2 hash, shared)")
    password_hash = PasswordHasher().hash(BENCH_PASSWORD)
    await conn.execute(_INSERT_USERS, have + 1, wanted, password_hash, USER_SID_PREFIX)
    return int(wanted - have)


async def _seed_orders(conn: asyncpg.Connection, wanted: int, progress: Progress) -> int:
    have = int(await conn.fetchval("SELECT count(*) FROM orders"))
    if have >= wanted:
        return 0
    first = have + 1
    while first <= wanted:
        last = min(first + _ORDER_CHUNK - 1, wanted)
        progress(f"seeding orders {first}..{last} of {wanted}")
        await conn.execute(_INSERT_ORDERS, first, last, ORDER_TARGET_NAME, USER_SID_PREFIX)
        first = last + 1
    return wanted - have
