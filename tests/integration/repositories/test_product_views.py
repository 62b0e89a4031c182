"""A read's fast path (ProductView rows made into messages by convert.product_view) answers
exactly what the reference path (Product records made into messages by convert.product) does,
over every seeded product and hundreds of prices and times, on PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import pytest

from db_service.repositories.products import ProductRepository
from db_service.servicers import convert
from protos import db_service_pb2 as pb

EDGE_PRICES = ["0", "0.01", "0.1", "1", "9.5", "10.00", "49.99", "1000000", "99999999.99"]
EDGE_TIMES = [
    datetime(1, 1, 1, tzinfo=UTC),  # asyncpg writes this as -infinity, and reads it back so
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # one microsecond before the epoch
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 24, 15, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # and this as infinity
]
ROWS = 400


def _prices_and_times(rng: random.Random) -> list[tuple[Decimal, datetime, datetime]]:
    """The edge values, then random ones: prices of 0 to 8 digits and 0 to 2 decimals, times
    anywhere from year 1 to 9999 to the microsecond."""
    span_us = (EDGE_TIMES[-1] - EDGE_TIMES[0]) // timedelta(microseconds=1)

    def when() -> datetime:
        return EDGE_TIMES[0] + timedelta(microseconds=rng.randrange(span_us))

    times = len(EDGE_TIMES)
    cases = [
        (Decimal(p), EDGE_TIMES[i % times], EDGE_TIMES[-1 - i % times])
        for i, p in enumerate(EDGE_PRICES)
    ]
    while len(cases) < ROWS:
        cents = rng.randrange(10 ** rng.randrange(1, 9))
        cases.append((Decimal(cents).scaleb(-rng.choice([0, 1, 2])), when(), when()))
    return cases


@pytest.fixture(scope="module")
async def product_ids(pool: asyncpg.Pool) -> list[int]:
    """Every product in the database: the seeded ones and ROWS more of every price and time."""
    repo = ProductRepository(pool)
    rng = random.Random(17)
    for n, (price, created, updated) in enumerate(_prices_and_times(rng)):
        product = await repo.insert(
            name=f"view {n} ünïcode ✓", description="d" * rng.randrange(300), category="Views",
            price=price, slogan="", stock=rng.randrange(1_000_001),
        )  # fmt: skip
        await pool.execute(
            "UPDATE products SET created_at = $2, updated_at = $3 WHERE id = $1",
            product.id, created, updated,
        )  # fmt: skip
    return [r["id"] for r in await pool.fetch("SELECT id FROM products ORDER BY id")]


async def test_view_many_answers_what_get_many_answers(
    pool: asyncpg.Pool, product_ids: list[int]
) -> None:
    # given every product, and ids that find nothing
    repo = ProductRepository(pool)
    ids = [*product_ids, 2**31 - 1, 0]

    # when both paths read them
    reference = [convert.product(p) for p in await repo.get_many(ids)]
    fast = [convert.product_view(v, pb.Product()) for v in await repo.view_many(ids)]

    # then the messages are equal, field by field and byte by byte
    assert len(reference) == len(product_ids)
    assert fast == reference
    assert [m.SerializeToString() for m in fast] == [m.SerializeToString() for m in reference]


async def test_view_answers_what_get_answers(pool: asyncpg.Pool, product_ids: list[int]) -> None:
    repo = ProductRepository(pool)
    for product_id in product_ids[:: max(1, len(product_ids) // 50)]:
        product, view = await repo.get(product_id), await repo.view(product_id)
        assert product is not None
        assert view is not None
        assert convert.product_view(view, pb.Product()) == convert.product(product)


async def test_view_of_a_missing_product_is_none(pool: asyncpg.Pool) -> None:
    assert await ProductRepository(pool).view(2**31 - 1) is None
