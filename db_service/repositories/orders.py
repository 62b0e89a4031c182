"""SQL for orders: placing and cancelling move stock in the same transaction as the order row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from db_service.models import Order, Product, User
from db_service.outbox import UNBOUNDED, Outbox
from db_service.ports import KeyTaken, PlaceAttempt, Placement
from db_service.repositories import outbox, placing, windows
from db_service.repositories import products as product_sql
from db_service.repositories import users as user_sql
from db_service.repositories.batches import Batcher
from db_service.repositories.failures import DB_REFUSED_VALUE
from db_service.repositories.transactions import transaction

_SELECT = (
    "SELECT o.id, o.user_id, u.sid AS user_sid, o.product_id, o.quantity, o.unit_price,"
    " o.total_price, o.status, o.idempotency_key, o.created_at, o.cancelled_at"
    " FROM orders o JOIN users u ON u.id = o.user_id"
)


_PAGE_WHERE = (
    " WHERE ($1::int IS NULL OR o.user_id = $1) AND o.id > $2 ORDER BY o.id OFFSET $3 LIMIT $4"
)


def _joined_select(*, product: bool, user: bool) -> str:
    """The page query with the product and/or the user of each row as prefixed columns.

    One statement for the page and its includes: the joins are on primary keys, so the
    included rows cost an index lookup each inside the same round trip.
    """
    columns = _SELECT.split(" FROM ")[0]
    joins = ""
    if product:
        columns += "".join(f", p.{c} AS p__{c}" for c in product_sql.COLUMNS)
        joins += " JOIN products p ON p.id = o.product_id"
    if user:
        columns += "".join(f", u.{c} AS u__{c}" for c in user_sql.COLUMNS)
    return f"{columns} FROM orders o JOIN users u ON u.id = o.user_id{joins}{_PAGE_WHERE}"


def _as_caller_select(*, product: bool, user: bool) -> str:
    """The page of the caller's orders (or, for an admin asking for all, everyone's), and the
    caller's own row, in one statement: authentication folded into the read.

    `caller` is empty unless the token's user exists, is active and has the token's version, so
    a deactivation or password change committed before this statement refuses it. No row at
    all means refused; one row whose order columns are NULL is an empty page.
    """
    page = _joined_select(product=product, user=user).split(" WHERE ")[0]
    caller = ", ".join(f"c.{col} AS c__{col}" for col in user_sql.COLUMNS)
    return (
        f"WITH caller AS (SELECT {', '.join(user_sql.COLUMNS)} FROM users"
        " WHERE sid = $1 AND is_active AND token_version = $2),"
        f" page AS ({page}"
        " WHERE (($3 AND (SELECT role FROM caller) = 'admin')"
        " OR o.user_id = (SELECT id FROM caller)) AND o.id > $4"
        " ORDER BY o.id OFFSET $5 LIMIT $6)"
        f" SELECT {caller}, page.* FROM caller c LEFT JOIN page ON true ORDER BY page.id"
    )


# Constant texts, so asyncpg prepares each once per connection.
_JOINED = {
    (product, user): _joined_select(product=product, user=user)
    for product in (False, True)
    for user in (False, True)
}


_AS_CALLER = {
    (product, user): _as_caller_select(product=product, user=user)
    for product in (False, True)
    for user in (False, True)
}


def _order(row: asyncpg.Record | Mapping[str, Any]) -> Order:
    return placing.order_from_row(row, user_sid=row["user_sid"])


_PLACE = """
WITH taken AS (
    UPDATE products SET stock = stock - $3, updated_at = now()
    WHERE id = $2 AND stock >= $3
    RETURNING price
), placed AS (
    INSERT INTO orders (user_id, product_id, quantity, unit_price, total_price, idempotency_key)
    SELECT $1, $2, $3, price, price * $3, $4 FROM taken
    ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, user_id, product_id, quantity, unit_price, total_price, status,
              idempotency_key, created_at, cancelled_at
), logged AS (
    -- The outbox record commits with the order, or not at all (NULL: the outbox is full).
    INSERT INTO log_outbox (record)
    SELECT $5::jsonb || jsonb_build_object('message', format(
        $6::text, placed.id, placed.quantity, placed.product_id, placed.total_price))
    FROM placed WHERE $5::jsonb IS NOT NULL
)
SELECT EXISTS (SELECT 1 FROM taken) AS taken, placed.*
FROM (SELECT 1) AS one LEFT JOIN placed ON true
"""


_PLACED = placing.PLACED_MESSAGE

# The most placements one statement takes; more wait for the next batch.
PLACE_BATCH_MAX = 64

# (product, the most attempts a window allows, the window in seconds): what a batch shares.
_BatchKey = tuple[int, int, int]


def _same_key(request: placing.PlaceRequest) -> tuple[str, str] | None:
    return None if request.key is None else (request.sid, request.key)


class OrderRepository:
    def __init__(self, pool: asyncpg.Pool, outbox: Outbox = UNBOUNDED) -> None:
        self._pool = pool
        self._outbox = outbox
        # A value PostgreSQL refuses (a total beyond numeric(10,2), for a product priced
        # before prices were capped) fails its own request only, not its batch companions.
        self._placing: Batcher[_BatchKey, placing.PlaceRequest, PlaceAttempt | None] = Batcher(
            self._place_batch,
            max_size=PLACE_BATCH_MAX,
            token=_same_key,
            isolate=(DB_REFUSED_VALUE,),
        )

    async def get(self, order_id: int) -> Order | None:
        row = await self._pool.fetchrow(f"{_SELECT} WHERE o.id = $1", order_id)
        return _order(row) if row else None

    async def get_many(self, ids: list[int]) -> list[Order]:
        rows = await self._pool.fetch(f"{_SELECT} WHERE o.id = ANY($1::int[]) ORDER BY o.id", ids)
        return [_order(r) for r in rows]

    async def get_by_key(self, *, user_id: int, key: str) -> Order | None:
        row = await self._pool.fetchrow(
            f"{_SELECT} WHERE o.user_id = $1 AND o.idempotency_key = $2", user_id, key
        )
        return _order(row) if row else None

    async def list_page(
        self, *, user_id: int | None, after_id: int, offset: int, limit: int
    ) -> list[Order]:
        """One page of orders, of one user or (user_id None) of everyone, oldest first."""
        rows = await self._pool.fetch(
            f"{_SELECT}{_PAGE_WHERE}",
            user_id,
            after_id,
            offset,
            limit,
        )
        return [_order(r) for r in rows]

    async def list_page_with(
        self,
        *,
        user_id: int | None,
        after_id: int,
        offset: int,
        limit: int,
        product: bool,
        user: bool,
    ) -> list[tuple[Order, Product | None, User | None]]:
        """`list_page`, each order with its product and/or its owner (None when not asked)."""
        rows = await self._pool.fetch(_JOINED[(product, user)], user_id, after_id, offset, limit)
        return [
            (
                _order(r),
                product_sql.product_from_row(placing.prefixed(r, "p__")) if product else None,
                user_sql.user_from_row(placing.prefixed(r, "u__")) if user else None,
            )
            for r in rows
        ]

    async def list_page_as(
        self,
        *,
        sid: str,
        token_version: int,
        all_users: bool,
        after_id: int,
        offset: int,
        limit: int,
        product: bool,
        user: bool,
    ) -> tuple[User, list[tuple[Order, Product | None, User | None]]] | None:
        """The caller (by its token's sid and version) and its page; None when refused."""
        rows = await self._pool.fetch(
            _AS_CALLER[(product, user)], sid, token_version, all_users, after_id, offset, limit
        )
        if not rows:
            return None
        caller = user_sql.user_from_row(placing.prefixed(rows[0], "c__"))
        return caller, [
            (
                _order(r),
                product_sql.product_from_row(placing.prefixed(r, "p__")) if product else None,
                user_sql.user_from_row(placing.prefixed(r, "u__")) if user else None,
            )
            for r in rows
            if r["id"] is not None
        ]

    async def place(
        self, *, user_id: int, user_sid: str, product_id: int, quantity: int, key: str | None
    ) -> Order | None:
        """Take stock and insert the order atomically; None when stock is short.

        One statement: the conditional UPDATE is the whole oversell guard (it takes the product
        row lock and only succeeds while enough stock is left) and feeds the INSERT. With a key,
        a concurrent request with the same key may win the unique index: then this one raises
        KeyTaken and its transaction rolls back, so its stock comes back. Without a key there is
        nothing to roll back, and the statement alone is atomic.
        """
        event = self._outbox.event("Order.placed", subject=user_sid, message="")
        async with self._pool.acquire() as conn:
            if key is None:
                row = await conn.fetchrow(
                    _PLACE, user_id, product_id, quantity, None, event, _PLACED
                )
            else:
                async with conn.transaction():
                    row = await conn.fetchrow(
                        _PLACE, user_id, product_id, quantity, key, event, _PLACED
                    )
                    if row is not None and row["taken"] and row["id"] is None:
                        raise KeyTaken
        if row is None or not row["taken"]:
            return None
        return _order({**dict(row), "user_sid": user_sid})

    async def place_as(self, placement: Placement) -> PlaceAttempt | None:
        """Authenticate, look up the key's replay, count the attempt and place the order (see
        OrderStore.place_as); None when the token is refused.

        Concurrent placements of one product go as one statement and one commit
        (repositories/placing.py), so that they no longer queue on the product's row lock one
        transaction at a time: the lock is held once per batch, with no round trip inside.
        """
        p = placement
        request = placing.PlaceRequest(
            sid=p.sid,
            token_version=p.token_version,
            quantity=p.quantity,
            key=p.key,
            event=self._outbox.event("Order.placed", subject=p.sid, message=""),
        )
        return await self._placing.submit((p.product_id, p.max_attempts, p.window_s), request)

    async def _place_batch(
        self, key: _BatchKey, requests: list[placing.PlaceRequest]
    ) -> list[PlaceAttempt | None]:
        product_id, max_attempts, window_s = key
        return await placing.place_batch(
            self._pool, product_id, requests, max_attempts=max_attempts, window_s=window_s
        )

    async def cancel(
        self, order_id: int, *, user_id: int | None, actor: User | None = None
    ) -> Order | None:
        """Cancel a placed order and put its stock back, exactly once; None if not placed.

        `user_id` limits the cancel to that owner (None: any owner, for admins); `actor`, the
        caller, is checked again first (raises Revoked, see users.lock_actor).
        """
        async with transaction(self._pool) as conn:
            if actor is not None:
                await user_sql.lock_actor(conn, actor)
            row = await conn.fetchrow(
                "UPDATE orders SET status = 'cancelled', cancelled_at = now()"
                " WHERE id = $1 AND status = 'placed' AND ($2::int IS NULL OR user_id = $2)"
                " RETURNING product_id, quantity",
                order_id,
                user_id,
            )
            if row is None:
                return None
            await conn.execute(
                "UPDATE products SET stock = stock + $2, updated_at = now() WHERE id = $1",
                row["product_id"],
                row["quantity"],
            )
            full = await conn.fetchrow(f"{_SELECT} WHERE o.id = $1", order_id)
            assert full is not None
            message = (
                f"Order {order_id} cancelled: {row['quantity']} x product {row['product_id']}"
                " back in stock"
            )
            await outbox.write(
                conn,
                [self._outbox.event("Order.cancelled", subject=full["user_sid"], message=message)],
            )
        return _order(full)

    async def count_order_attempt(self, user_id: int, *, window_s: int) -> tuple[int, int]:
        """Count one order attempt in the user's window: (attempts so far, seconds left in it)."""
        return await windows.count_attempt(
            self._pool, "order_rate_windows", user_id, window_s=window_s
        )
