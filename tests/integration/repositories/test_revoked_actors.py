"""A write checks its caller's token again where it commits: once a deactivation or a new
password has been answered, no write authenticated before it (a cancel, a product created or
changed) commits after it. The deactivation waits for a write that got there first."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg
import pytest

from db_service.errors import DomainError, ErrorCode
from db_service.models import Order, OrderStatus, Product, Role, User
from db_service.passwords import Passwords
from db_service.repositories.orders import OrderRepository
from db_service.repositories.products import ProductRepository
from db_service.repositories.users import UserRepository
from db_service.services.orders import OrderService
from db_service.services.products import ProductService
from db_service.services.users import LoginPolicy, UserService
from protos.tokens import TokenCodec
from tests.integration.conftest import wait_for

# What the test's own transaction holds so that the write, once under way, waits there.
HOLD = {
    "cancel an order": "SELECT 1 FROM orders WHERE id = $1 FOR UPDATE",
    "update a product": "SELECT 1 FROM products WHERE id = $1 FOR UPDATE",
    "create a product": "LOCK TABLE products IN SHARE MODE",
}


async def _waiting(pool: asyncpg.Pool) -> int:
    """How many statements of this database wait for a lock."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    return count


async def _admin(users: UserRepository, sid: str) -> User:
    return await users.insert(
        sid=sid, username=f"a{sid}", email=f"a{sid}@example.com", password_hash="h",
        role=Role.ADMIN,
    )  # fmt: skip


@pytest.mark.parametrize("write", list(HOLD))
@pytest.mark.parametrize("revocation", ["deactivation", "password change"])
async def test_no_write_commits_after_its_callers_revocation_was_answered(
    pool: asyncpg.Pool, unique: str, write: str, revocation: str
) -> None:
    # given an admin with an order of their own, authenticated for a write
    users, products = UserRepository(pool), ProductRepository(pool)
    orders = OrderService(OrderRepository(pool), products, users)
    catalog = ProductService(products)
    actor, _ = await _admin(users, f"{unique}1"), await _admin(users, f"{unique}2")
    mug = await products.insert(
        name=f"mug {unique}", description="", category="c", price=Decimal("9.50"), slogan="",
        stock=5,
    )  # fmt: skip
    order = await OrderRepository(pool).place(
        user_id=actor.id, user_sid=actor.sid, product_id=mug.id, quantity=2, key=None
    )
    assert order is not None
    writes = {
        "cancel an order": lambda: orders.cancel_order(actor, order.id),
        "update a product": lambda: catalog.update_product(actor, mug.id, price="1.00"),
        "create a product": lambda: catalog.create_product(
            actor, name=f"pen {unique}", description="", category="c", price="1.00",
            slogan="", stock=1,
        ),
    }  # fmt: skip
    async with pool.acquire() as holder:
        hold = holder.transaction()
        await hold.start()
        held = {"cancel an order": [order.id], "update a product": [mug.id]}.get(write, [])
        await holder.execute(HOLD[write], *held)

        # when the write is under way (held by a statement before it, as under load)
        writing = asyncio.create_task(writes[write]())
        await wait_for(lambda: _waiting_is(pool, 1), within=10, message="the write never waited")

        # and the admin's token is revoked meanwhile
        revoking = asyncio.create_task(
            users.update(actor.sid, deactivate=True)
            if revocation == "deactivation"
            else users.update(actor.sid, password_hash="a-new-hash")
        )
        await wait_for(
            lambda: revoking.done() or _waiting_is(pool, 2),
            within=10,
            message="the revocation neither committed nor waited",
        )
        answered_first = revoking.done()
        await hold.rollback()
        outcome = (await asyncio.gather(writing, return_exceptions=True))[0]
        assert await revoking is not None

    # then the write committed before the revocation (which waited for it), or was refused
    # and changed nothing: never written under a token whose revocation was answered
    if isinstance(outcome, DomainError):
        assert outcome.code is ErrorCode.UNAUTHENTICATED
        assert await _unchanged(pool, order, mug, unique)
    else:
        assert isinstance(outcome, Order | Product), outcome
        assert not answered_first, f"{write} committed after the revocation was answered"


async def _waiting_is(pool: asyncpg.Pool, count: int) -> bool:
    return await _waiting(pool) >= count


async def _unchanged(pool: asyncpg.Pool, order: Order, mug: Product, unique: str) -> bool:
    status, stock, price, pens = await pool.fetchrow(
        "SELECT (SELECT status FROM orders WHERE id = $1), p.stock, p.price,"
        " (SELECT count(*) FROM products WHERE name = $3) FROM products p WHERE p.id = $2",
        order.id,
        mug.id,
        f"pen {unique}",
    )
    return (status, stock, price, pens) == (OrderStatus.PLACED.value, 3, mug.price, 0)


@pytest.mark.parametrize(
    "write", ["cancel another's order", "update a product", "create a product", "rename a user"]
)
async def test_an_admin_demoted_after_authenticating_is_forbidden_not_unauthenticated(
    pool: asyncpg.Pool, unique: str, write: str
) -> None:
    # given an admin authenticated for a write, and a customer with an order
    users, products = UserRepository(pool), ProductRepository(pool)
    orders = OrderService(OrderRepository(pool), products, users)
    catalog = ProductService(products)
    accounts = UserService(
        users,
        Passwords(2),
        TokenCodec("a-test-secret-0123456789-0123456789-0123", "merch-store", 600),
        LoginPolicy(max_attempts=5, window_s=60),
    )
    actor, _ = await _admin(users, f"{unique}1"), await _admin(users, f"{unique}2")
    customer = await users.insert(
        sid=f"{unique}3", username=f"c{unique}", email=f"c{unique}@example.com",
        password_hash="h", role=Role.CUSTOMER,
    )  # fmt: skip
    mug = await products.insert(
        name=f"mug {unique}", description="", category="c", price=Decimal("9.50"), slogan="",
        stock=5,
    )  # fmt: skip
    order = await OrderRepository(pool).place(
        user_id=customer.id, user_sid=customer.sid, product_id=mug.id, quantity=2, key=None
    )
    assert order is not None
    writes = {
        "cancel another's order": lambda: orders.cancel_order(actor, order.id),
        "update a product": lambda: catalog.update_product(actor, mug.id, price="1.00"),
        "create a product": lambda: catalog.create_product(
            actor, name=f"pen {unique}", description="", category="c", price="1.00",
            slogan="", stock=1,
        ),
        "rename a user": lambda: accounts.update_user(
            actor, customer.sid, username=f"r{unique}", email=None, password=None,
            current_password=None, client="192.0.2.1",
        ),
    }  # fmt: skip

    # when the admin role is taken away before the write commits (which revokes no token:
    # the next call with it is authenticated, and told it is no admin)
    demoted = await users.update(actor.sid, role=Role.CUSTOMER)
    assert demoted is not None
    assert demoted.token_version == actor.token_version
    with pytest.raises(DomainError) as refused:
        await writes[write]()

    # then the write is refused as that next call would be, not as if the token were revoked
    # (401 tells the client to log in again), and changes nothing
    expected = ErrorCode.NOT_FOUND if write == "cancel another's order" else ErrorCode.FORBIDDEN
    assert refused.value.code is expected
    assert await _unchanged(pool, order, mug, unique)
    assert (await users.get_by_sid(customer.sid)) == customer
