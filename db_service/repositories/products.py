"""SQL for the catalog."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from db_service.models import Product, ProductView, User
from db_service.repositories.transactions import transaction
from db_service.repositories.users import lock_actor

COLUMNS = (
    "id",
    "name",
    "description",
    "category",
    "price",
    "slogan",
    "stock",
    "created_at",
    "updated_at",
)
_COLUMNS = "id, name, description, category, price, slogan, stock, created_at, updated_at"


def _epoch_us(column: str) -> str:
    """The timestamptz column in microseconds since the Unix epoch; extract(epoch) is an exact
    numeric (PostgreSQL 14+). ±infinity are clamped to what asyncpg reads them as (datetime.max
    and datetime.min), so both paths agree on them too."""
    bounded = (
        f"least(greatest({column}, timestamptz '0001-01-01 00:00:00+00'),"
        " timestamptz '9999-12-31 23:59:59.999999+00')"
    )
    return f"(extract(epoch FROM {bounded}) * 1000000)::int8"


# A ProductView's columns. price is numeric(10,2), so its text always has two places, as
# f"{price:.2f}" gives.
_VIEW_COLUMNS = (
    "id, name, description, category, price::text, slogan, stock, "
    f"{_epoch_us('created_at')}, {_epoch_us('updated_at')}"
)


def product_from_row(row: asyncpg.Record | Mapping[str, Any]) -> Product:
    return Product(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        category=row["category"],
        price=row["price"],
        slogan=row["slogan"],
        stock=row["stock"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class ProductRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, product_id: int) -> Product | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM products WHERE id = $1", product_id
        )
        return product_from_row(row) if row else None

    async def get_many(self, ids: list[int]) -> list[Product]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM products WHERE id = ANY($1::int[]) ORDER BY id", ids
        )
        return [product_from_row(r) for r in rows]

    async def view(self, product_id: int) -> ProductView | None:
        """The product as a read answers it (`get`, in the form the wire wants)."""
        row: ProductView | None = await self._pool.fetchrow(
            f"SELECT {_VIEW_COLUMNS} FROM products WHERE id = $1", product_id
        )
        return row

    async def view_many(self, ids: list[int]) -> Sequence[ProductView]:
        """The products with these ids, by id, as a read answers them (`get_many`'s fast path)."""
        rows: Sequence[ProductView] = await self._pool.fetch(
            f"SELECT {_VIEW_COLUMNS} FROM products WHERE id = ANY($1::int[]) ORDER BY id", ids
        )
        return rows

    async def list_page(self, *, after_id: int, offset: int, limit: int) -> list[Product]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM products WHERE id > $1 ORDER BY id OFFSET $2 LIMIT $3",
            after_id,
            offset,
            limit,
        )
        return [product_from_row(r) for r in rows]

    async def insert(
        self,
        *,
        name: str,
        description: str,
        category: str,
        price: Decimal,
        slogan: str,
        stock: int,
        actor: User | None = None,
    ) -> Product:
        """A new product; with `actor` (the caller), only while its token still holds
        (raises Revoked, see users.lock_actor)."""
        async with transaction(self._pool) as conn:
            if actor is not None:
                await lock_actor(conn, actor)
            row = await conn.fetchrow(
                "INSERT INTO products (name, description, category, price, slogan, stock)"
                f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
                name,
                description,
                category,
                price,
                slogan,
                stock,
            )
        assert row is not None
        return product_from_row(row)

    async def update(
        self, product_id: int, changes: dict[str, Any], actor: User | None = None
    ) -> Product | None:
        """Set the given columns (names come from the service, never from a client); with
        `actor`, only while its token still holds (raises Revoked, see users.lock_actor)."""
        sets = [f"{column} = ${i}" for i, column in enumerate(changes, start=2)]
        sets.append("updated_at = now()")
        async with transaction(self._pool) as conn:
            if actor is not None:
                await lock_actor(conn, actor)
            row = await conn.fetchrow(
                f"UPDATE products SET {', '.join(sets)} WHERE id = $1 RETURNING {_COLUMNS}",
                product_id,
                *changes.values(),
            )
        return product_from_row(row) if row else None
