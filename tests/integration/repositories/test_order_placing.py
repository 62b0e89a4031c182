"""Placing orders in batches on PostgreSQL (repositories/placing.py): each request of a batch
is judged as if the requests had come one after another, and a key is placed once even when two
replicas race for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import orjson
import pytest

from db_service.models import Product, Role, User
from db_service.ports import PlaceAttempt, Placement
from db_service.repositories.orders import OrderRepository
from db_service.repositories.placing import PlaceRequest, place_batch
from db_service.repositories.products import ProductRepository
from db_service.repositories.users import UserRepository
from db_service.repositories.windows import delete_expired
from scripts.infra import EmbeddedPostgres
from tests.integration.conftest import database_of_its_own, wait_for

NO_LIMIT = 1_000


async def _user(pool: asyncpg.Pool, sid: str) -> User:
    return await UserRepository(pool).insert(
        sid=sid, username=f"u{sid}", email=f"{sid}@example.com", password_hash="h",
        role=Role.CUSTOMER,
    )  # fmt: skip


async def _product(pool: asyncpg.Pool, sid: str, *, stock: int) -> Product:
    return await ProductRepository(pool).insert(
        name=f"mug {sid}", description="", category="", price=Decimal("9.50"), slogan="",
        stock=stock,
    )  # fmt: skip


async def _stock(pool: asyncpg.Pool, product: Product) -> int:
    found = await ProductRepository(pool).get(product.id)
    assert found is not None
    return found.stock


def _request(user: User, quantity: int = 1, key: str | None = None, tag: str = "") -> PlaceRequest:
    event = orjson.dumps({"request_id": tag}).decode() if tag else None
    return PlaceRequest(
        sid=user.sid, token_version=user.token_version, quantity=quantity, key=key, event=event
    )


async def _batch(
    pool: asyncpg.Pool, product: Product, requests: list[PlaceRequest], *, limit: int = NO_LIMIT
) -> list[PlaceAttempt | None]:
    return await place_batch(pool, product.id, requests, max_attempts=limit, window_s=60)


def _placed(attempts: list[PlaceAttempt | None]) -> list[int | None]:
    return [a.order.quantity if a and a.order else None for a in attempts]


async def test_a_batch_serves_the_stock_first_come_first_served(
    pool: asyncpg.Pool, unique: str
) -> None:
    # given a stock of 3 and three shoppers
    mug = await _product(pool, unique, stock=3)
    a, b, c = [await _user(pool, f"{unique}{i}") for i in range(3)]

    # when they ask for 2, 2 and 1 in one batch
    attempts = await _batch(pool, mug, [_request(a, 2), _request(b, 2), _request(c, 1)])

    # then the second does not fit, and does not stop the third
    assert _placed(attempts) == [2, None, 1]
    assert [x.stock for x in attempts if x] == [3, 1, 1]
    assert await _stock(pool, mug) == 0


async def test_a_batch_counts_a_users_attempts_one_after_another(
    pool: asyncpg.Pool, unique: str
) -> None:
    # given a shopper allowed 2 attempts per window
    mug = await _product(pool, unique, stock=10)
    shopper = await _user(pool, unique)

    # when three of their orders go in one batch
    attempts = await _batch(pool, mug, [_request(shopper) for _ in range(3)], limit=2)

    # then they are attempts 1, 2 and 3, and the third is over the limit: nothing taken for it
    assert [x.attempts for x in attempts if x] == [1, 2, 3]
    assert _placed(attempts) == [1, 1, None]
    assert await _stock(pool, mug) == 8


async def test_a_replay_in_a_batch_places_nothing_and_is_not_counted(
    pool: asyncpg.Pool, unique: str
) -> None:
    # given an order placed with key "k"
    mug = await _product(pool, unique, stock=10)
    shopper = await _user(pool, unique)
    [first] = await _batch(pool, mug, [_request(shopper, key="k")])
    assert first
    assert first.order

    # when a batch holds its retry and a new order
    replay, new = await _batch(pool, mug, [_request(shopper, key="k"), _request(shopper)])

    # then the retry is the first order again, uncounted, and only the new one takes stock
    assert replay
    assert (replay.earlier, replay.order, replay.attempts) == (first.order, None, 0)
    assert new
    assert new.order
    assert new.attempts == 2
    assert await _stock(pool, mug) == 8


async def test_a_refused_token_in_a_batch_refuses_only_its_own_request(
    pool: asyncpg.Pool, unique: str
) -> None:
    mug = await _product(pool, unique, stock=10)
    shopper = await _user(pool, unique)
    stale = PlaceRequest(
        sid=shopper.sid, token_version=shopper.token_version + 1, quantity=1, key=None, event=None
    )

    attempts = await _batch(pool, mug, [stale, _request(shopper)])

    assert attempts[0] is None
    assert _placed(attempts) == [None, 1]
    assert await _stock(pool, mug) == 9


async def test_a_missing_product_places_nothing_for_anyone(pool: asyncpg.Pool, unique: str) -> None:
    shopper = await _user(pool, unique)
    missing = Product(
        2**31 - 1, "", "", "", Decimal(0), "", 0, shopper.created_at, shopper.created_at
    )

    attempts = await _batch(pool, missing, [_request(shopper), _request(shopper)])

    assert [(x.attempts, x.stock, x.order) for x in attempts if x] == [
        (1, None, None),
        (2, None, None),
    ]


async def test_each_placed_order_commits_its_own_requests_outbox_record(
    pool: asyncpg.Pool, unique: str
) -> None:
    # given two shoppers whose requests carry outbox records of their own
    mug = await _product(pool, unique, stock=5)
    a, b = await _user(pool, f"{unique}0"), await _user(pool, f"{unique}1")
    tags = [f"{unique}-a", f"{unique}-b", f"{unique}-c"]

    # when they are placed in one batch, the last beyond the stock
    requests = [_request(a, 3, tag=tags[0]), _request(b, 1, tag=tags[1])]
    attempts = await _batch(pool, mug, [*requests, _request(a, 3, tag=tags[2])])

    # then each placed order's record is its own request's, naming that order
    records = {
        r["tag"]: r["message"]
        for r in await pool.fetch(
            "SELECT record->>'request_id' AS tag, record->>'message' AS message FROM log_outbox"
            " WHERE record->>'request_id' = ANY($1::text[])",
            tags,
        )
    }
    expected = {
        tag: f"Order {x.order.id} placed: {x.order.quantity} x product {mug.id},"
        f" total {x.order.total_price}"
        for tag, x in zip(tags, attempts, strict=True)
        if x and x.order
    }
    assert records == expected
    assert list(expected) == tags[:2]


async def test_one_key_raced_by_two_replicas_places_one_order(
    pool: asyncpg.Pool, unique: str
) -> None:
    # given two repositories (as two db_service replicas) and the product row held by a third
    # party, so that both placements with one key are under way before either commits
    mug = await _product(pool, unique, stock=10)
    shopper = await _user(pool, unique)
    replicas = [OrderRepository(pool), OrderRepository(pool)]
    async with pool.acquire() as holder:
        hold = holder.transaction()
        await hold.start()
        await holder.execute("SELECT 1 FROM products WHERE id = $1 FOR UPDATE", mug.id)

        # when both place with the same key at once
        racing = [
            asyncio.create_task(_place(replica, shopper, mug, "same")) for replica in replicas
        ]
        await wait_for(
            lambda: _waiting_placements(pool, 2), within=10, message="both placements waiting"
        )
        await hold.rollback()
        attempts = await asyncio.gather(*racing)

    # then one order is placed, the loser answers it as a replay, and one unit is gone
    orders = [x.order or x.earlier for x in attempts if x]
    assert len(orders) == 2
    assert orders[0] == orders[1]
    assert sorted(x.order is None for x in attempts if x) == [False, True]
    assert await _stock(pool, mug) == 9
    assert await _window(pool, shopper) == 1  # the replay is free, as every replay


async def _place(
    orders: OrderRepository, user: User, product: Product, key: str
) -> PlaceAttempt | None:
    return await orders.place_as(
        Placement(
            sid=user.sid,
            token_version=user.token_version,
            product_id=product.id,
            quantity=1,
            key=key,
            max_attempts=NO_LIMIT,
            window_s=60,
        )
    )


async def _waiting_placements(pool: asyncpg.Pool, count: int) -> bool:
    waiting = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query LIKE '%unnest($1::text[]%'"
    )
    return bool(waiting >= count)


async def _window(pool: asyncpg.Pool, user: User) -> int:
    attempts: int = await pool.fetchval(
        "SELECT attempts FROM order_rate_windows WHERE user_id = $1", user.id
    )
    return attempts


async def test_one_key_sent_twice_at_once_to_one_replica_places_one_order(
    pool: asyncpg.Pool, unique: str
) -> None:
    mug = await _product(pool, unique, stock=10)
    shopper = await _user(pool, unique)
    orders = OrderRepository(pool)

    attempts = await asyncio.gather(*(_place(orders, shopper, mug, "same") for _ in range(5)))

    assert len({(x.order or x.earlier).id for x in attempts if x and (x.order or x.earlier)}) == 1
    assert await _stock(pool, mug) == 9


async def test_a_total_beyond_numeric_10_2_fails_only_its_own_order(
    pool: asyncpg.Pool, unique: str
) -> None:
    # given a product priced before prices were capped (40 000 000.00: three of it overflow an
    # order's total_price), and six shoppers ordering at once, one or three each
    mug = await _product(pool, unique, stock=100)
    await pool.execute("UPDATE products SET price = 40000000.00 WHERE id = $1", mug.id)
    shoppers = [await _user(pool, f"{unique}{i}") for i in range(6)]
    orders = OrderRepository(pool)
    quantities = [1, 3, 1, 3, 1, 1]

    async def place(user: User, quantity: int) -> PlaceAttempt | None:
        return await orders.place_as(
            Placement(
                sid=user.sid, token_version=user.token_version, product_id=mug.id,
                quantity=quantity, key=None, max_attempts=NO_LIMIT, window_s=60,
            )
        )  # fmt: skip

    # when they are placed (the first alone, the others batched behind it)
    results = await asyncio.gather(
        *(place(u, q) for u, q in zip(shoppers, quantities, strict=True)), return_exceptions=True
    )

    # then every single is placed and only each triple fails, on its own value
    for quantity, result in zip(quantities, results, strict=True):
        if quantity == 1:
            assert isinstance(result, PlaceAttempt), result
            assert result.order is not None
            assert result.order.total_price == Decimal("40000000.00")
        else:
            assert isinstance(result, asyncpg.DataError), result
    assert await _stock(pool, mug) == 96


async def _waiting_on_lock(pool: asyncpg.Pool, pattern: str) -> bool:
    """Whether a statement whose text matches `pattern` waits for a lock."""
    waiting = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
        pattern,
    )
    return bool(waiting)


def _placement(user: User, product: Product) -> Placement:
    return Placement(
        sid=user.sid, token_version=user.token_version, product_id=product.id, quantity=1,
        key=None, max_attempts=1000, window_s=60,
    )  # fmt: skip


@pytest.mark.parametrize("revocation", ["deactivation", "password change"])
async def test_no_order_commits_under_a_token_revoked_before_it(
    pool: asyncpg.Pool, unique: str, revocation: str
) -> None:
    # given a shopper, and their product's row held by another statement (under load it
    # rarely is free: another replica's placement, a cancel, an admin's update)
    users, orders = UserRepository(pool), OrderRepository(pool)
    shopper = await users.insert(
        sid=unique, username=f"u{unique}", email=f"{unique}@example.com", password_hash="h",
        role=Role.CUSTOMER,
    )  # fmt: skip
    mug = await ProductRepository(pool).insert(
        name=f"mug {unique}", description="", category="c", price=Decimal("9.50"), slogan="",
        stock=10,
    )  # fmt: skip
    async with pool.acquire() as holder:
        hold = holder.transaction()
        await hold.start()
        await holder.execute("SELECT 1 FROM products WHERE id = $1 FOR UPDATE", mug.id)

        # when the shopper's order is under way with their current token
        placing = asyncio.create_task(orders.place_as(_placement(shopper, mug)))
        await wait_for(
            lambda: _waiting_on_lock(pool, "%unnest($1::text[]%"),
            within=10,
            message="the placement never waited for the product",
        )

        # and the token is revoked meanwhile (an admin's DeactivateUser, a new password)
        revoking = asyncio.create_task(
            users.update(shopper.sid, deactivate=True)
            if revocation == "deactivation"
            else users.update(shopper.sid, password_hash="a-new-hash")
        )
        answered, _ = await asyncio.wait({revoking}, timeout=1.0)
        await hold.rollback()
        attempt = await placing
        revoked = await revoking

    # then the order either commits before the revocation (which waits for it), or is
    # refused: never placed under a token whose revocation was already answered
    assert revoked is not None
    assert revoked.token_version == shopper.token_version + 1
    placed = attempt is not None and attempt.order is not None
    assert not (revoking in answered and placed), attempt


async def test_a_batch_of_two_admins_orders_and_an_admin_deactivation_do_not_deadlock(
    pool: asyncpg.Pool, unique: str
) -> None:
    # given two admins who shop (their rate windows exist already), and a third admin
    users, orders = UserRepository(pool), OrderRepository(pool)
    first, second, third = [
        await users.insert(
            sid=f"{unique}{i}", username=f"a{unique}{i}", email=f"a{unique}{i}@example.com",
            password_hash="h", role=Role.ADMIN,
        )
        for i in range(3)
    ]  # fmt: skip
    mug = await ProductRepository(pool).insert(
        name=f"mug {unique}", description="", category="c", price=Decimal("9.50"), slogan="",
        stock=10,
    )  # fmt: skip
    for admin in (first, second):
        assert await orders.place_as(_placement(admin, mug))

    # and the first admin's row briefly held (a password change of theirs committing)
    async with pool.acquire() as holder:
        hold = holder.transaction()
        await hold.start()
        await holder.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", first.id)
        # when the third admin is deactivated (which locks the active admins' rows in order)
        deactivating = asyncio.create_task(users.update(third.sid, deactivate=True))
        await wait_for(
            lambda: _waiting_on_lock(pool, "%role = 'admin' AND is_active) ORDER BY id FOR UPDATE"),
            within=10,
            message="the deactivation never waited for the admins' rows",
        )
        # and one batch places an order of the second admin, then one of the first
        batch = [
            asyncio.create_task(orders.place_as(_placement(admin, mug)))
            for admin in (second, first)
        ]
        await wait_for(
            lambda: _waiting_on_lock(pool, "%unnest($1::text[]%"),
            within=10,
            message="the batch never waited",
        )
        await hold.rollback()
        results = await asyncio.gather(deactivating, *batch, return_exceptions=True)

    # then all three go through, one after the other: no deadlock (whose loser got INTERNAL)
    assert [r for r in results if isinstance(r, BaseException)] == []


async def test_a_restock_committed_while_a_batch_waits_serves_the_new_stock(
    pool: asyncpg.Pool, unique: str
) -> None:
    # given a mug with 2 left, and an admin's restock to 10 holding its row, not yet committed
    shopper = await _user(pool, unique)
    mug = await _product(pool, unique, stock=2)
    async with pool.acquire() as admin:
        restock = admin.transaction()
        await restock.start()
        await admin.execute("UPDATE products SET stock = 10 WHERE id = $1", mug.id)

        # when a batch orders 3 (more than its snapshot's 2) and the restock commits meanwhile
        placing = asyncio.create_task(_batch(pool, mug, [_request(shopper, 3)]))
        await wait_for(
            lambda: _waiting_on_lock(pool, "%unnest($1::text[]%"),
            within=10,
            message="the batch never waited for the restock",
        )
        await restock.commit()
        attempts = await placing

    # then the order is served from the new stock (it once failed the stock >= 0 check: INTERNAL)
    assert _placed(attempts) == [3]
    assert await _stock(pool, mug) == 7


@pytest.fixture
async def own_pool(postgres: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    """A database of this test's own, whose tables hold rows in the order written."""
    async with database_of_its_own(postgres, "placing", max_size=4) as p:
        yield p


async def test_a_batch_and_the_window_sweeper_do_not_deadlock(
    own_pool: asyncpg.Pool, unique: str
) -> None:
    # given two shoppers whose order windows ended an hour ago, the later one's row first in
    # the table (the sweeper deletes in that order, a batch locks windows by user id)
    pool = own_pool
    orders = OrderRepository(pool)
    first, second = await _user(pool, f"{unique}0"), await _user(pool, f"{unique}1")
    mug = await _product(pool, unique, stock=10)
    for shopper in (second, first):
        assert await orders.place_as(_placement(shopper, mug))
        await pool.execute(
            "UPDATE order_rate_windows SET window_start = now() - interval '1 hour'"
            " WHERE user_id = $1",
            shopper.id,
        )
    assert await pool.fetchval(
        "SELECT (SELECT ctid FROM order_rate_windows WHERE user_id = $1)"
        " < (SELECT ctid FROM order_rate_windows WHERE user_id = $2)",
        second.id,
        first.id,
    )

    # and the first shopper's window briefly held (their own attempt counted elsewhere)
    async with pool.acquire() as holder:
        hold = holder.transaction()
        await hold.start()
        await holder.execute(
            "SELECT 1 FROM order_rate_windows WHERE user_id = $1 FOR UPDATE", first.id
        )
        # when one batch places an order of each, and the sweeper deletes expired windows
        batch = [
            asyncio.create_task(orders.place_as(_placement(shopper, mug)))
            for shopper in (first, second)
        ]
        await wait_for(
            lambda: _waiting_on_lock(pool, "%unnest($1::text[]%"),
            within=10,
            message="the batch never waited",
        )
        sweeping = asyncio.create_task(
            delete_expired(pool, "order_rate_windows", window_s=60, limit=1000)
        )
        await wait_for(
            lambda: sweeping.done() or _waiting_on_lock(pool, "%DELETE FROM order_rate_windows%"),
            within=10,
            message="the sweep neither ended nor waited",
        )
        await hold.rollback()
        results = await asyncio.gather(sweeping, *batch, return_exceptions=True)

    # then both orders are placed and the sweep ends: no deadlock (whose loser got INTERNAL)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert all(isinstance(r, PlaceAttempt) and r.order for r in results[1:])
