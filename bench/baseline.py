"""The baseline: the same product read with one SELECT, no GraphQL and no gRPC hop.

One uvicorn worker with the gateway's event loop and HTTP parser (uvloop + httptools), an
asyncpg pool of the size db_service uses, and the REST product JSON. Every scenario's req/s is
divided by this app's, measured in the same rounds, so machine noise cancels out of the ratio.

    python -m bench.baseline --dsn postgresql://postgres@127.0.0.1:5432/merch_bench --port 8099
    curl http://127.0.0.1:8099/products/1
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

_SELECT = (
    "SELECT id, name, description, category, price::text AS price, slogan, stock, created_at"
    " FROM products WHERE id = $1"
)
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

    async def readyz(request: Request) -> Response:
        assert pool is not None
        await pool.fetchval("SELECT 1")
        return _json({"status": "ready"})

    routes = [
        Route("/products/{id:int}", product, methods=["GET"]),
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
