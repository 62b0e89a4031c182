"""The folded PlaceOrder (OrderService.place_order_as: one statement, batched) against the
reference (Authenticator.caller, then OrderService.place_order) on PostgreSQL: for every case
the same answer, the same stock, the same count in the rate window, the same outbox record."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from db_service.errors import DomainError
from db_service.models import Order, Role
from db_service.repositories.orders import OrderRepository
from db_service.repositories.products import ProductRepository
from db_service.repositories.users import UserRepository
from db_service.services.auth import Authenticator
from db_service.services.orders import OrderRatePolicy, OrderService
from protos.tokens import TokenCodec

RATE_LIMIT = 3
CODEC = TokenCodec("paths-test-secret-0123456789-0123456789", "merch-store", ttl_s=600)


@dataclass(frozen=True)
class Case:
    """The state before one placement, and the placement."""

    stock: int = 5
    earlier_key: str | None = None  # an order of quantity 1 placed before with this key
    attempts_before: int = 0  # attempts already counted in the window
    token: str = "current"  # or "stale" (the password changed since) or "deactivated"
    quantity: int = 1
    key: str = ""
    product: str = "own"  # or "missing", or "zero" (an id no product can have)


CASES = {
    "a new order": (Case(quantity=2), "placed"),
    "a keyed order": (Case(key="k"), "placed"),
    "a retry of a keyed order": (Case(earlier_key="k", key="k"), "replay"),
    "a key reused for another quantity": (Case(earlier_key="k", key="k", quantity=2), "CONFLICT"),
    "an order beyond the stock": (Case(stock=1, quantity=2), "OUT_OF_STOCK"),
    "the last units": (Case(stock=3, quantity=3), "placed"),
    "a missing product": (Case(product="missing"), "NOT_FOUND"),
    "product id 0": (Case(product="zero"), "NOT_FOUND"),
    "an order over the rate limit": (Case(attempts_before=RATE_LIMIT), "RATE_LIMITED"),
    "a retry over the rate limit": (
        Case(earlier_key="k", key="k", attempts_before=RATE_LIMIT),
        "replay",
    ),
    "a stale token": (Case(token="stale"), "UNAUTHENTICATED"),
    "a deactivated user": (Case(token="deactivated"), "UNAUTHENTICATED"),
    "an invalid quantity": (Case(quantity=4), "INVALID_ARGUMENT"),
    "an invalid quantity with a stale token": (
        Case(quantity=0, token="stale"),
        "UNAUTHENTICATED",
    ),
    "a key too long": (Case(key="k" * 129), "INVALID_ARGUMENT"),
}


@dataclass
class World:
    pool: asyncpg.Pool
    users: UserRepository
    orders: OrderRepository
    products: ProductRepository
    service: OrderService
    auth: Authenticator


@pytest.fixture
def world(pool: asyncpg.Pool) -> World:
    users, products = UserRepository(pool), ProductRepository(pool)
    orders = OrderRepository(pool)
    service = OrderService(orders, products, users, OrderRatePolicy(max_orders=RATE_LIMIT))
    return World(pool, users, orders, products, service, Authenticator(CODEC, users))


async def _reference(world: World, authorization: str, **request: Any) -> Order:
    return await world.service.place_order(await world.auth.caller(authorization), **request)


async def _folded(world: World, authorization: str, **request: Any) -> Order:
    """As the PlaceOrder servicer runs it: the folded path, or for invalid input the general."""
    placed = await world.service.place_order_as(world.auth.claims(authorization), **request)
    if placed is None:
        return await _reference(world, authorization, **request)
    return placed[1]


async def _outcome(world: World, case: Case, sid: str, path: str) -> dict[str, Any]:
    """Set the state up for a fresh user and product, place, and say what happened."""
    user = await world.users.insert(
        sid=sid, username=f"u{sid}", email=f"{sid}@example.com", password_hash="h",
        role=Role.CUSTOMER,
    )  # fmt: skip
    product = await world.products.insert(
        name=f"mug {sid}", description="", category="", price=Decimal("9.50"), slogan="",
        stock=case.stock + (1 if case.earlier_key else 0),
    )  # fmt: skip
    earlier = None
    if case.earlier_key is not None:
        earlier = await world.orders.place(
            user_id=user.id, user_sid=sid, product_id=product.id, quantity=1, key=case.earlier_key
        )
    for _ in range(case.attempts_before):
        await world.orders.count_order_attempt(user.id, window_s=60)
    authorization = f"Bearer {CODEC.issue(sid=sid, role='customer', version=1)}"
    if case.token == "stale":
        await world.users.update(sid, password_hash="another")
    elif case.token == "deactivated":
        await world.users.update(sid, deactivate=True)
    product_id = {"own": product.id, "missing": 2**31 - 1, "zero": 0}[case.product]

    run = _reference if path == "reference" else _folded
    try:
        order = await run(
            world,
            authorization,
            product_id=product_id,
            quantity=case.quantity,
            idempotency_key=case.key,
        )
        answer = "replay" if earlier is not None and order == earlier else "placed"
        shape = (
            order.quantity,
            order.unit_price,
            order.total_price,
            order.status,
            order.user_sid == sid,
        )
        records = await world.pool.fetchval(
            "SELECT count(*) FROM log_outbox WHERE record->>'message' LIKE $1",
            f"Order {order.id} placed:%",
        )
    except DomainError as exc:
        answer, shape, records = exc.code.name, None, None
    return {
        "answer": answer,
        "order": shape,
        "stock": (await world.products.get(product.id)).stock,  # type: ignore[union-attr]
        "window": await world.pool.fetchval(
            "SELECT attempts FROM order_rate_windows WHERE user_id = $1", user.id
        ),
        "outbox records": records,
        "key": case.key,
    }


@pytest.mark.parametrize(("case", "expected"), CASES.values(), ids=CASES.keys())
async def test_the_folded_placement_answers_as_the_reference_does(
    world: World, unique: str, case: Case, expected: str
) -> None:
    # given the same state twice, for two users and two products

    # when each path places once
    reference = await _outcome(world, case, f"{unique}1", "reference")
    folded = await _outcome(world, case, f"{unique}2", "folded")

    # then they agree on everything, and the answer is the case's
    assert folded == reference
    assert reference["answer"] == expected


def test_the_cases_cover_every_answer_a_placement_can_give() -> None:
    answers = {expected for _, expected in CASES.values()}
    assert answers == {
        "placed", "replay", "CONFLICT", "OUT_OF_STOCK", "NOT_FOUND", "RATE_LIMITED",
        "UNAUTHENTICATED", "INVALID_ARGUMENT",
    }  # fmt: skip
