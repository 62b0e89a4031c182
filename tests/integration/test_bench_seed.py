"""The bench's seed on real PostgreSQL: a second run inserts nothing, and the orders an earlier
run placed (they all buy the order target) are gone, so every run starts from the same tables."""

from __future__ import annotations

import asyncpg

from bench.options import SeedPlan
from bench.seed import ORDER_TARGET_NAME, SeedCounts, seed
from scripts.infra import EmbeddedPostgres

PLAN = SeedPlan(users=5, orders=40, products=3)


def _quiet(_: str) -> None:
    pass


async def _place_on_target(dsn: str, count: int) -> None:
    """What a bench run leaves behind: orders of the order target."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO orders (user_id, product_id, quantity, unit_price, total_price, status)"
            " SELECT (SELECT min(id) FROM users), p.id, 1, p.price, p.price, 'placed'"
            " FROM products p, generate_series(1, $2) WHERE p.name = $1",
            ORDER_TARGET_NAME,
            count,
        )
    finally:
        await conn.close()


async def _order_ids(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["id"] for r in await conn.fetch("SELECT id FROM orders ORDER BY id")]
    finally:
        await conn.close()


async def test_a_second_seed_deletes_the_orders_a_run_placed_and_keeps_the_seeded_ones(
    postgres: EmbeddedPostgres,
) -> None:
    # given a seeded bench database, and 25 orders a bench run placed on the order target
    dsn = postgres.ensure_database("bench_seed_test")
    first: SeedCounts = await seed(dsn, PLAN, _quiet)
    seeded = await _order_ids(dsn)
    await _place_on_target(dsn, 25)

    # when the next run seeds
    again = await seed(dsn, PLAN, _quiet)

    # then the placed orders are gone, the seeded ones are the same rows, and nothing was added
    assert first.orders == PLAN.orders
    assert again.removed == 25
    assert again.inserted == 0
    assert await _order_ids(dsn) == seeded
