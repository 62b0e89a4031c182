"""The baselines: a product read and a page of orders, one SELECT each, no GraphQL, no gRPC hop.

One uvicorn worker with the gateway's event loop and HTTP parser (uvloop + httptools), an
asyncpg pool of the size db_service uses, and the REST product JSON. Every scenario's req/s is
divided by this app's, measured in the same rounds, so machine noise cancels out of the ratio.

    python -m bench.baseline --dsn postgresql://postgres@127.0.0.1:5432/merch_bench --port 8099
    curl http://127.0.0.1:8099/products/1
    curl 'http://127.0.0.1:8099/orders?first=50'

`/orders` is the list shape: the first orders of everyone (as the admin sees them) with each
one's product and user, fetched by ONE statement and written as the very JSON the gateway
answers to `orders(first: 50) { edges { node { id quantity totalPrice status createdAt
product { id name price } user { sid username } } } pageInfo { hasNextPage endCursor } }`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from protos.page_tokens import encode_token

_SELECT = (
    "SELECT id, name, description, category, price::text AS price, slogan, stock, created_at"
    " FROM products WHERE id = $1"
)
# Oldest first, one more row than asked for to know whether a next page exists (as db_service).
_ORDERS = (
    "SELECT o.id, o.quantity, o.total_price::text AS total_price, o.status, o.created_at,"
    " p.id AS product_id, p.name AS product_name, p.price::text AS product_price,"
    " u.sid AS user_sid, u.username"
    " FROM orders o JOIN products p ON p.id = o.product_id JOIN users u ON u.id = o.user_id"
    " ORDER BY o.id LIMIT $1"
)
MAX_PAGE = 100
# db_service's defaults (DB_POOL_MIN, DB_POOL_MAX), so the database side is the same.
POOL_MIN, POOL_MAX = 2, 10


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


def product_json(row: asyncpg.Record) -> dict[str, Any]:
    """The product as the REST API shapes it; the price a JSON number with two decimals."""
    created_at: datetime = row["created_at"]
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "category": row["category"],
        "price": orjson.Fragment(row["price"].encode()),
        "slogan": row["slogan"],
        "stock": row["stock"],
        "created_at": created_at.isoformat(),
    }


def order_node(row: asyncpg.Record) -> dict[str, Any]:
    """One order as the gateway's GraphQL answer shapes it: Decimal strings, enum names."""
    created_at: datetime = row["created_at"]
    return {
        "id": row["id"],
        "quantity": row["quantity"],
        "totalPrice": row["total_price"],
        "status": row["status"].upper(),
        "createdAt": created_at.isoformat(),
        "product": {
            "id": row["product_id"],
            "name": row["product_name"],
            "price": row["product_price"],
        },
        "user": {"sid": row["user_sid"], "username": row["username"]},
    }


def orders_json(rows: list[asyncpg.Record], first: int) -> dict[str, Any]:
    """The GraphQL response body of the orders page, cursors encoded as the gateway does."""
    page = rows[:first]
    end_cursor = encode_token("order", page[-1]["id"]) if page else None
    return {
        "data": {
            "orders": {
                "edges": [{"node": order_node(r)} for r in page],
                "pageInfo": {"hasNextPage": len(rows) > first, "endCursor": end_cursor},
            }
        }
    }


def create_app(dsn: str) -> Starlette:
    """The baseline app; the pool opens in the lifespan."""
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=POOL_MIN, max_size=POOL_MAX, timeout=10)
        try:
            yield
        finally:
            await pool.close()

    async def product(request: Request) -> Response:
        assert pool is not None
        row = await pool.fetchrow(_SELECT, request.path_params["id"])
        if row is None:
            return _json({"error": {"code": "NOT_FOUND", "message": "no such product"}}, 404)
        return _json(product_json(row))

    async def orders(request: Request) -> Response:
        assert pool is not None
        first = int(request.query_params.get("first", "50"))
        if not 1 <= first <= MAX_PAGE:
            return _json({"error": {"code": "BAD_USER_INPUT", "message": "first: 1 to 100"}}, 400)
        return _json(orders_json(await pool.fetch(_ORDERS, first + 1), first))

    async def readyz(request: Request) -> Response:
        assert pool is not None
        await pool.fetchval("SELECT 1")
        return _json({"status": "ready"})

    routes = [
        Route("/products/{id:int}", product, methods=["GET"]),
        Route("/orders", orders, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the baseline until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--dsn", required=True, help="PostgreSQL DSN of the bench database")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.dsn),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
