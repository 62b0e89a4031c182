"""OrderRepository on PostgreSQL: stock never goes below zero, an idempotency key places one
order, and a cancel puts the stock back exactly once."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest

from db_service.models import Product, Role, User
from db_service.ports import KeyTaken
from db_service.repositories.orders import OrderRepository
from db_service.repositories.products import ProductRepository
from db_service.repositories.users import UserRepository


async def _given(pool: asyncpg.Pool, sid: str, *, stock: int) -> tuple[User, Product]:
    user = await UserRepository(pool).insert(
        sid=sid, username=f"u{sid}", email=f"{sid}@example.com", password_hash="h",
        role=Role.CUSTOMER,
    )  # fmt: skip
    product = await ProductRepository(pool).insert(
        name=f"mug {sid}", description="", category="", price=Decimal("9.50"), slogan="",
        stock=stock,
    )  # fmt: skip
    return user, product


async def _stock(pool: asyncpg.Pool, product: Product) -> int:
    found = await ProductRepository(pool).get(product.id)
    assert found is not None
    return found.stock


async def test_an_order_beyond_stock_places_nothing_and_takes_nothing(
    pool: asyncpg.Pool, unique: str
) -> None:
    user, mug = await _given(pool, unique, stock=2)

    placed = await OrderRepository(pool).place(
        user_id=user.id, user_sid=user.sid, product_id=mug.id, quantity=3, key=None
    )

    assert placed is None
    assert await _stock(pool, mug) == 2


async def test_an_order_takes_stock_and_prices_it(pool: asyncpg.Pool, unique: str) -> None:
    user, mug = await _given(pool, unique, stock=5)

    placed = await OrderRepository(pool).place(
        user_id=user.id, user_sid=user.sid, product_id=mug.id, quantity=2, key=None
    )

    assert placed is not None
    assert placed.total_price == Decimal("19.00")
    assert await _stock(pool, mug) == 3


async def test_a_second_order_with_the_same_key_is_key_taken_and_takes_no_stock(
    pool: asyncpg.Pool, unique: str
) -> None:
    user, mug = await _given(pool, unique, stock=5)
    orders = OrderRepository(pool)
    await orders.place(user_id=user.id, user_sid=user.sid, product_id=mug.id, quantity=1, key="k")

    with pytest.raises(KeyTaken):
        await orders.place(
            user_id=user.id, user_sid=user.sid, product_id=mug.id, quantity=1, key="k"
        )

    assert await _stock(pool, mug) == 4


async def test_a_cancel_puts_stock_back_once(pool: asyncpg.Pool, unique: str) -> None:
    user, mug = await _given(pool, unique, stock=5)
    orders = OrderRepository(pool)
    placed = await orders.place(
        user_id=user.id, user_sid=user.sid, product_id=mug.id, quantity=2, key=None
    )
    assert placed is not None

    first = await orders.cancel(placed.id, user_id=user.id)
    second = await orders.cancel(placed.id, user_id=user.id)

    assert first is not None
    assert second is None
    assert await _stock(pool, mug) == 5


async def test_a_cancel_by_another_user_changes_nothing(pool: asyncpg.Pool, unique: str) -> None:
    user, mug = await _given(pool, unique, stock=5)
    orders = OrderRepository(pool)
    placed = await orders.place(
        user_id=user.id, user_sid=user.sid, product_id=mug.id, quantity=2, key=None
    )
    assert placed is not None

    assert await orders.cancel(placed.id, user_id=user.id + 1_000_000) is None
    assert await _stock(pool, mug) == 3
