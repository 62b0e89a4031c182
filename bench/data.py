"""What the scenarios need from the running stack: rows to expect, tokens, the order ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import httpx

from bench.options import BenchError
from bench.scenarios import BenchData, OrderRow, ProductRow
from bench.seed import BENCH_PASSWORD, ORDER_TARGET_NAME, bench_username
from bench.stack import ADMIN_PASSWORD, ADMIN_USERNAME

MAX_ROTATION = 2_000  # product ids the read scenarios rotate through
ORDER_USERS = 8  # customers whose tokens the order scenarios rotate through
ORDER_STOCK = 10_000_000  # "stock set high": no order run can sell out
_T = TypeVar("_T")


@dataclass(frozen=True)
class StockLedger:
    """The order target's stock and the quantity of its placed orders; their sum never moves."""

    stock: int
    placed_quantity: int
    placed_orders: int

    @property
    def total(self) -> int:
        return self.stock + self.placed_quantity


def run_db(dsn: str, work: Callable[[asyncpg.Connection], Coroutine[Any, Any, _T]]) -> _T:
    """Run `work` on a fresh connection (the bench process has no event loop of its own)."""

    async def go() -> _T:
        conn = await asyncpg.connect(dsn, timeout=10, command_timeout=60)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def load_data(dsn: str, gateway_url: str) -> BenchData:
    """Rows from the database and fresh tokens from the gateway's REST login."""

    async def rows(
        conn: asyncpg.Connection,
    ) -> tuple[list[asyncpg.Record], list[asyncpg.Record], int]:
        products = await conn.fetch(
            "SELECT id, name, price::text AS price FROM products WHERE name <> $1"
            " ORDER BY id LIMIT $2",
            ORDER_TARGET_NAME,
            MAX_ROTATION,
        )
        orders = await conn.fetch(
            "SELECT o.id, p.name AS product_name, u.username FROM orders o"
            " JOIN products p ON p.id = o.product_id JOIN users u ON u.id = o.user_id"
            " ORDER BY o.id LIMIT 50"
        )
        target = await conn.fetchval("SELECT id FROM products WHERE name = $1", ORDER_TARGET_NAME)
        return products, orders, int(target)

    products, orders, target = run_db(dsn, rows)
    with httpx.Client(base_url=gateway_url, timeout=30, trust_env=False) as client:
        admin = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
        users = tuple(
            login(client, bench_username(n), BENCH_PASSWORD) for n in range(1, ORDER_USERS + 1)
        )
    return BenchData(
        products=tuple(ProductRow(r["id"], r["name"], r["price"]) for r in products),
        first_orders=tuple(OrderRow(r["id"], r["product_name"], r["username"]) for r in orders),
        order_product_id=target,
        admin_token=admin,
        user_tokens=users,
    )


def login(client: httpx.Client, username: str, password: str) -> str:
    """A token for `username`, through POST /api/v1/users/login."""
    response = client.post("/api/v1/users/login", json={"username": username, "password": password})
    if response.status_code != 200:
        raise BenchError(f"login of {username} failed: HTTP {response.status_code} {response.text}")
    token: str = response.json()["token"]
    return token


def set_stock_high(dsn: str, product_id: int) -> StockLedger:
    """Give the order target ORDER_STOCK items; return the ledger to check against at the end."""

    async def work(conn: asyncpg.Connection) -> None:
        await conn.execute("UPDATE products SET stock = $2 WHERE id = $1", product_id, ORDER_STOCK)

    run_db(dsn, work)
    return stock_ledger(dsn, product_id)


def stock_ledger(dsn: str, product_id: int) -> StockLedger:
    """The order target's stock and placed orders now."""

    async def work(conn: asyncpg.Connection) -> StockLedger:
        row = await conn.fetchrow(
            "SELECT p.stock, coalesce(sum(o.quantity), 0) AS quantity, count(o.id) AS orders"
            " FROM products p LEFT JOIN orders o ON o.product_id = p.id AND o.status = 'placed'"
            " WHERE p.id = $1 GROUP BY p.stock",
            product_id,
        )
        assert row is not None
        return StockLedger(int(row["stock"]), int(row["quantity"]), int(row["orders"]))

    return run_db(dsn, work)
