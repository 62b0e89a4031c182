"""Matrix, a db_service replica that freezes (a paused VM, a host cut off: its connections stay
open and nothing closes them) in the middle of a transaction: the rows it holds are given back
in bounded time, so the other replicas go on serving them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from scripts.infra import EmbeddedPostgres
from tests.conftest import Stack
from tests.factories import admin_token, make_product, make_user
from tests.ownstack import OwnStack, own_services


@pytest.fixture
def shop(stack: Stack, postgres: EmbeddedPostgres) -> Iterator[OwnStack]:
    """A database, db_service and gateway of the test's own."""
    with own_services(
        stack,
        ("db_service", "gateway"),
        DATABASE_URL=postgres.ensure_database(f"frozen_{uuid.uuid4().hex[:8]}"),
        ORDER_RATE_LIMIT="1000000",
    ) as own:
        yield own


async def _waiting_on_lock(conn: asyncpg.Connection, pattern: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database() AND query LIKE $1",
            pattern,
        )
    )


async def test_a_replica_frozen_mid_cancel_does_not_block_the_product_for_the_others(
    stack: Stack, shop: OwnStack
) -> None:
    # given a shopper's order, being cancelled by a replica that reached the product's row
    # (held a moment by another statement, as under load)
    async with httpx.AsyncClient(base_url=shop.gateway_url, timeout=30) as c:
        shopper = await make_user(c)
        product = await make_product(c, await admin_token(c), stock=10)
        placed = await c.post(
            "/api/v1/orders", json={"product_id": product["id"], "quantity": 1},
            headers=shopper.auth,
        )  # fmt: skip
        assert placed.status_code == 201, placed.text
    frozen = shop.processes["db_service"]
    conn = await asyncpg.connect(shop.env["DATABASE_URL"])
    # pg_stat_activity is read once per transaction: the holder's own would never change
    watch = await asyncpg.connect(shop.env["DATABASE_URL"])
    try:
        hold = conn.transaction()
        await hold.start()
        await conn.execute("SELECT 1 FROM products WHERE id = $1 FOR UPDATE", product["id"])
        async with httpx.AsyncClient(base_url=shop.gateway_url, timeout=30) as c:
            cancelling = asyncio.create_task(
                c.delete(f"/api/v1/orders/{placed.json()['id']}", headers=shopper.auth)
            )
            deadline = time.monotonic() + 20
            while not await _waiting_on_lock(watch, "UPDATE products SET stock = stock +%"):
                assert time.monotonic() < deadline, "the cancel never reached the product"
                await asyncio.sleep(0.05)  # polls pg_stat_activity, bounded by the deadline

            # when that replica freezes there, its transaction open on the product's row
            frozen.pause()
            try:
                await hold.rollback()
                await asyncio.gather(cancelling, return_exceptions=True)

                # then another replica places orders of that product again in bounded time
                with own_services(
                    stack,
                    ("db_service", "gateway"),
                    DATABASE_URL=shop.env["DATABASE_URL"],
                    ORDER_RATE_LIMIT="1000000",
                ) as other:
                    async with httpx.AsyncClient(base_url=other.gateway_url, timeout=30) as o:
                        statuses = []
                        deadline = time.monotonic() + 45
                        while time.monotonic() < deadline:
                            r = await o.post(
                                "/api/v1/orders",
                                json={"product_id": product["id"], "quantity": 1},
                                headers=shopper.auth,
                            )
                            statuses.append(r.status_code)
                            if r.status_code == 201:
                                break
            finally:
                frozen.resume()
    finally:
        await conn.close()
        await watch.close()
    assert statuses[-1] == 201, f"orders of the product while the replica was frozen: {statuses}"
