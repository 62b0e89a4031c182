"""SQL for placing a batch of orders of one product: one statement and one commit for all.

Each request is judged as if the batch's requests had come one after another, in order, each
after its own token check: the caller (an active user with the token's sid and version), the
replay of its idempotency key, one attempt counted in its user's order window, and, within the
limit, the order placed while the product's stock lasts (first come, first served: a request
that does not fit does not stop a smaller one after it). A step that refuses stops the steps
after it for that request alone.

Two requests with the same caller and key never share a batch (the Batcher holds the later one
back), so a key's earlier order is always one committed before the statement. A concurrent
statement elsewhere (another replica) may still commit the same key first: the INSERT then
fails on the unique index, the whole statement rolls back (counts, stock, orders, outbox), and
the batch runs again, where that request finds its earlier order and is a replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from db_service.models import Order, OrderStatus
from db_service.ports import PlaceAttempt
from db_service.repositories import users as user_sql
from db_service.repositories import windows


@dataclass(frozen=True, slots=True)
class PlaceRequest:
    """One placement as the batch takes it: the token's claims, the order, its outbox record."""

    sid: str
    token_version: int
    quantity: int
    key: str | None
    event: str | None  # the outbox record's JSON; None when the outbox is full


ORDER_COLUMNS = (
    "id",
    "user_id",
    "product_id",
    "quantity",
    "unit_price",
    "total_price",
    "status",
    "idempotency_key",
    "created_at",
    "cancelled_at",
)
_ORDER = ", ".join(ORDER_COLUMNS)

PLACED_MESSAGE = "Order %s placed: %s x product %s, total %s"

# $1..$5 the requests (sid, token version, quantity, key, outbox record), $6 the product,
# $7 the most attempts a window allows, $8 the window in seconds, $9 the outbox message format.
# Locks are taken in one order by every such statement: the callers' user rows by id, their
# window rows by user id, then the product row; so two batches (of two replicas, or of two
# products with users in common) wait for each other but never deadlock, nor with a
# deactivation, which locks the active admins' rows by id first (repositories.users).
_PLACE_BATCH = f"""
WITH RECURSIVE request AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::jsonb[])
        WITH ORDINALITY AS r (sid, token_version, quantity, key, event, n)
), callers AS (
    -- Share-locked until the orders commit, and read as last committed (a lock that waited
    -- sees the newer row): a token revoked (deactivation, new password) before this statement
    -- locked the row places nothing, and a revocation after it waits for the orders.
    SELECT {", ".join(user_sql.COLUMNS)} FROM users
    WHERE sid IN (SELECT sid FROM request) ORDER BY id FOR SHARE
), caller AS (
    SELECT r.n, r.quantity, r.key, r.event, {", ".join(f"u.{c}" for c in user_sql.COLUMNS)}
    FROM request r
    JOIN callers u ON u.sid = r.sid AND u.is_active AND u.token_version = r.token_version
), earlier AS (
    SELECT c.n, {", ".join(f"o.{c}" for c in ORDER_COLUMNS)}
    FROM caller c JOIN orders o ON o.user_id = c.id AND o.idempotency_key = c.key
), fresh AS (
    -- Every new attempt counts; a replay does not. `nth` of `of_user` in its user's window.
    SELECT c.n, c.id AS user_id, c.quantity, c.key, c.event,
        row_number() OVER (PARTITION BY c.id ORDER BY c.n) AS nth,
        count(*) OVER (PARTITION BY c.id) AS of_user
    FROM caller c WHERE c.n NOT IN (SELECT n FROM earlier)
), counted AS ({
    windows.upsert(
        "order_rate_windows",
        "SELECT user_id, count(*)::int, now() FROM fresh GROUP BY user_id ORDER BY user_id",
        "$8::float8",
    )
}), judged AS (
    SELECT f.*, k.attempts - f.of_user + f.nth AS attempt, k.retry_after
    FROM fresh f JOIN counted k USING (user_id)
), eligible AS (
    SELECT j.n, j.user_id, j.quantity, j.key, j.event, row_number() OVER (ORDER BY j.n) AS k
    FROM judged j WHERE j.attempt <= $7::int
), locked AS (
    -- Only when some request is within its limit. A FOR UPDATE that waited for another
    -- statement reads the row as that one committed it: this stock is exact until our commit.
    SELECT id, price, stock FROM products
    WHERE id = $6::int AND EXISTS (SELECT FROM eligible)
    FOR UPDATE
), stock (k, n, before, after) AS (
    -- First come, first served: each request takes its quantity from what the ones before
    -- it left, or nothing when that is not enough. NULL all along: no such product.
    SELECT 0::bigint, 0::bigint, NULL::int, (SELECT stock FROM locked)
    UNION ALL
    SELECT e.k, e.n, s.after,
        CASE WHEN e.quantity <= s.after THEN s.after - e.quantity ELSE s.after END
    FROM stock s JOIN eligible e ON e.k = s.k + 1
), fitting AS MATERIALIZED (
    -- The ids are drawn here, so each order row is known as its request's.
    SELECT nextval(pg_get_serial_sequence('orders', 'id'))::int AS id,
        e.n, e.user_id, e.quantity, e.key, e.event, l.id AS product_id, l.price
    FROM eligible e JOIN stock s ON s.n = e.n AND e.quantity <= s.before CROSS JOIN locked l
), placed AS (
    -- No ON CONFLICT: a key committed by a concurrent statement fails the whole statement.
    INSERT INTO orders (id, user_id, product_id, quantity, unit_price, total_price, idempotency_key)
    SELECT id, user_id, product_id, quantity, price, price * quantity, key FROM fitting ORDER BY n
    RETURNING {_ORDER}
), taken AS (
    -- From the stock `locked` holds, not `stock - …`: an UPDATE first builds the new row from
    -- the version its snapshot saw and checks stock >= 0 on it, before it finds the newer one
    -- (a restock committed while it waited), so a sale the restock made possible failed there.
    UPDATE products SET stock = (SELECT stock FROM locked) - (SELECT sum(quantity) FROM placed),
        updated_at = now()
    WHERE id = $6::int AND EXISTS (SELECT FROM placed)
), logged AS (
    -- Each outbox record commits with its order, or not at all (NULL: the outbox is full).
    INSERT INTO log_outbox (record)
    SELECT f.event || jsonb_build_object('message', format(
        $9::text, p.id, p.quantity, p.product_id, p.total_price))
    FROM placed p JOIN fitting f USING (id) WHERE f.event IS NOT NULL ORDER BY f.n
)
SELECT r.n,
    {", ".join(f"c.{c} AS c__{c}" for c in user_sql.COLUMNS)},
    {", ".join(f"e.{c} AS e__{c}" for c in ORDER_COLUMNS)},
    j.attempt, j.retry_after, s.before AS stock,
    {", ".join(f"p.{c}" for c in ORDER_COLUMNS)}
FROM request r
LEFT JOIN caller c ON c.n = r.n
LEFT JOIN earlier e ON e.n = r.n
LEFT JOIN judged j ON j.n = r.n
LEFT JOIN stock s ON s.n = r.n AND s.k > 0
LEFT JOIN fitting f ON f.n = r.n
LEFT JOIN placed p ON p.id = f.id
ORDER BY r.n
"""


def order_from_row(row: asyncpg.Record | Mapping[str, Any], *, user_sid: str) -> Order:
    return Order(
        id=row["id"],
        user_id=row["user_id"],
        user_sid=user_sid,
        product_id=row["product_id"],
        quantity=row["quantity"],
        unit_price=row["unit_price"],
        total_price=row["total_price"],
        status=OrderStatus(row["status"]),
        idempotency_key=row["idempotency_key"],
        created_at=row["created_at"],
        cancelled_at=row["cancelled_at"],
    )


def prefixed(row: asyncpg.Record, prefix: str) -> dict[str, Any]:
    """The columns of `row` named `<prefix><column>`, by their column names."""
    return {k[len(prefix) :]: v for k, v in row.items() if k.startswith(prefix)}


def _attempt(row: asyncpg.Record) -> PlaceAttempt | None:
    if row["c__id"] is None:
        return None  # the token is refused
    caller = user_sql.user_from_row(prefixed(row, "c__"))
    earlier = prefixed(row, "e__")
    counted = row["attempt"] is not None
    return PlaceAttempt(
        caller=caller,
        earlier=order_from_row(earlier, user_sid=caller.sid) if earlier["id"] is not None else None,
        attempts=row["attempt"] if counted else 0,
        retry_after_s=max(1, row["retry_after"]) if counted else 0,
        stock=row["stock"],
        order=order_from_row(row, user_sid=caller.sid) if row["id"] is not None else None,
    )


async def place_batch(
    pool: asyncpg.Pool,
    product_id: int,
    requests: list[PlaceRequest],
    *,
    max_attempts: int,
    window_s: int,
) -> list[PlaceAttempt | None]:
    """Judge and place `requests` for `product_id` in one statement (see the module's text);
    one attempt (None: the token is refused) per request, in order."""
    arguments = (
        [r.sid for r in requests],
        [r.token_version for r in requests],
        [r.quantity for r in requests],
        [r.key for r in requests],
        [r.event for r in requests],
        product_id,
        max_attempts,
        float(window_s),
        PLACED_MESSAGE,
    )
    # Each retry follows a key committed elsewhere, which the retry reads as a replay: every
    # round turns at least one request into a replay, so the rounds are bounded.
    for _ in range(len(requests)):
        try:
            rows = await pool.fetch(_PLACE_BATCH, *arguments)
            break
        except asyncpg.UniqueViolationError:
            continue
    else:
        rows = await pool.fetch(_PLACE_BATCH, *arguments)
    return [_attempt(row) for row in rows]
