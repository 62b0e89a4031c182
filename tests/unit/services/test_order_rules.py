"""Order rules, against in-memory stores: ownership, stock, idempotency, throttling."""

from __future__ import annotations

import pytest

from db_service.errors import DomainError, ErrorCode
from db_service.models import OrderStatus, Role, User
from db_service.services.orders import OrderPageRequest
from protos.tokens import Claims
from tests.unit.services.conftest import ORDER_RATE_LIMIT, World


async def test_an_order_takes_its_quantity_from_stock(world: World) -> None:
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=5)

    order = await world.order_service.place_order(
        buyer, product_id=mug.id, quantity=3, idempotency_key=""
    )

    assert (order.quantity, order.status) == (3, OrderStatus.PLACED)
    assert world.products.rows[mug.id].stock == 2


async def test_an_order_beyond_stock_is_out_of_stock_and_takes_nothing(world: World) -> None:
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=2)

    with pytest.raises(DomainError) as refused:
        await world.order_service.place_order(
            buyer, product_id=mug.id, quantity=3, idempotency_key=""
        )

    assert refused.value.code is ErrorCode.OUT_OF_STOCK
    assert world.products.rows[mug.id].stock == 2


async def test_an_order_of_a_missing_product_is_not_found(world: World) -> None:
    buyer = await world.make_user("11111111")

    with pytest.raises(DomainError) as refused:
        await world.order_service.place_order(buyer, product_id=99, quantity=1, idempotency_key="")

    assert refused.value.code is ErrorCode.NOT_FOUND


async def test_cancelling_puts_the_stock_back_once(world: World) -> None:
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=5)
    order = await world.order_service.place_order(
        buyer, product_id=mug.id, quantity=2, idempotency_key=""
    )

    await world.order_service.cancel_order(buyer, order.id)
    with pytest.raises(DomainError) as again:
        await world.order_service.cancel_order(buyer, order.id)

    assert world.products.rows[mug.id].stock == 5
    assert again.value.code is ErrorCode.FAILED_PRECONDITION


async def test_the_same_key_places_one_order(world: World) -> None:
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=5)

    first = await world.order_service.place_order(
        buyer, product_id=mug.id, quantity=1, idempotency_key="k-1"
    )
    retry = await world.order_service.place_order(
        buyer, product_id=mug.id, quantity=1, idempotency_key="k-1"
    )

    assert retry == first
    assert world.products.rows[mug.id].stock == 4


async def test_a_key_reused_for_another_order_is_a_conflict(world: World) -> None:
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=5)
    await world.order_service.place_order(
        buyer, product_id=mug.id, quantity=1, idempotency_key="k-1"
    )

    with pytest.raises(DomainError) as refused:
        await world.order_service.place_order(
            buyer, product_id=mug.id, quantity=2, idempotency_key="k-1"
        )

    assert refused.value.code is ErrorCode.CONFLICT


async def test_keys_are_per_user(world: World) -> None:
    alice, bob = await world.make_user("11111111"), await world.make_user("22222222")
    mug = await world.make_product(stock=5)

    a = await world.order_service.place_order(
        alice, product_id=mug.id, quantity=1, idempotency_key="same"
    )
    b = await world.order_service.place_order(
        bob, product_id=mug.id, quantity=1, idempotency_key="same"
    )

    assert a.id != b.id


async def test_orders_beyond_the_rate_limit_are_refused_with_a_wait(world: World) -> None:
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=100)
    for _ in range(ORDER_RATE_LIMIT):
        await world.order_service.place_order(
            buyer, product_id=mug.id, quantity=1, idempotency_key=""
        )

    with pytest.raises(DomainError) as refused:
        await world.order_service.place_order(
            buyer, product_id=mug.id, quantity=1, idempotency_key=""
        )

    assert refused.value.code is ErrorCode.RATE_LIMITED
    assert refused.value.retry_after_s is not None


async def test_a_replay_is_not_counted_against_the_rate_limit(world: World) -> None:
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=100)
    await world.order_service.place_order(buyer, product_id=mug.id, quantity=1, idempotency_key="k")

    for _ in range(ORDER_RATE_LIMIT * 2):
        await world.order_service.place_order(
            buyer, product_id=mug.id, quantity=1, idempotency_key="k"
        )

    assert world.orders.windows.counts[("order", buyer.id)] == 1


async def test_another_customers_order_is_not_found(world: World) -> None:
    alice, bob = await world.make_user("11111111"), await world.make_user("22222222")
    mug = await world.make_product(stock=5)
    order = await world.order_service.place_order(
        alice, product_id=mug.id, quantity=1, idempotency_key=""
    )

    for attempt in (world.order_service.get_order, world.order_service.cancel_order):
        with pytest.raises(DomainError) as refused:
            await attempt(bob, order.id)
        assert refused.value.code is ErrorCode.NOT_FOUND
    assert await world.order_service.get_orders_by_ids(bob, [order.id]) == []
    assert world.orders.rows[order.id].status is OrderStatus.PLACED


async def test_an_admin_sees_and_cancels_any_order(world: World) -> None:
    alice = await world.make_user("11111111")
    admin = await world.make_user("A0000001", role=Role.ADMIN)
    mug = await world.make_product(stock=5)
    order = await world.order_service.place_order(
        alice, product_id=mug.id, quantity=1, idempotency_key=""
    )

    assert await world.order_service.get_order(admin, order.id) == order
    cancelled = await world.order_service.cancel_order(admin, order.id)

    assert cancelled.status is OrderStatus.CANCELLED


async def test_a_customer_may_not_list_another_customers_orders(world: World) -> None:
    alice = await world.make_user("11111111")
    await world.make_user("22222222")

    with pytest.raises(DomainError) as refused:
        await world.order_service.list_orders(
            alice, OrderPageRequest(user_sid="22222222", page_size=10)
        )

    assert refused.value.code is ErrorCode.FORBIDDEN


def _claims_of(world: World, user: User) -> Claims:
    token = world.codec.issue(sid=user.sid, role=user.role.value, version=user.token_version)
    return world.auth.claims(f"Bearer {token}")


async def test_a_folded_placement_places_then_replays_and_counts_once(world: World) -> None:
    # given a shopper's token
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=5)
    claims = _claims_of(world, buyer)

    # when an order is placed with a key, then retried
    first = await world.order_service.place_order_as(
        claims, product_id=mug.id, quantity=2, idempotency_key="k"
    )
    retry = await world.order_service.place_order_as(
        claims, product_id=mug.id, quantity=2, idempotency_key="k"
    )

    # then the retry is the first order, for the token's user, and only the first counted
    assert first is not None
    assert retry == first
    assert first[0] == buyer
    assert world.products.rows[mug.id].stock == 3
    assert world.orders.windows.counts[("order", buyer.id)] == 1


async def test_a_folded_placement_refuses_a_revoked_token(world: World) -> None:
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=5)
    claims = _claims_of(world, buyer)
    await world.users.update(buyer.sid, password_hash="hashed:another")

    with pytest.raises(DomainError) as refused:
        await world.order_service.place_order_as(
            claims, product_id=mug.id, quantity=1, idempotency_key=""
        )

    assert refused.value.code is ErrorCode.UNAUTHENTICATED
    assert world.products.rows[mug.id].stock == 5


@pytest.mark.parametrize(("quantity", "key"), [(0, ""), (4, ""), (1, "k" * 129), (1, "a\tb")])
async def test_a_folded_placement_leaves_invalid_input_to_the_general_path(
    world: World, quantity: int, key: str
) -> None:
    # given a shopper's token and an invalid order
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=5)

    # when it is placed on the folded path
    folded = await world.order_service.place_order_as(
        _claims_of(world, buyer), product_id=mug.id, quantity=quantity, idempotency_key=key
    )

    # then that path declines it untouched: the general path authenticates first, then refuses
    assert folded is None
    assert world.orders.windows.counts[("order", buyer.id)] == 0
    with pytest.raises(DomainError) as refused:
        await world.order_service.place_order(
            buyer, product_id=mug.id, quantity=quantity, idempotency_key=key
        )
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT


async def test_a_folded_placement_over_the_limit_is_refused_with_a_wait(world: World) -> None:
    buyer = await world.make_user("11111111")
    mug = await world.make_product(stock=100)
    claims = _claims_of(world, buyer)
    for _ in range(ORDER_RATE_LIMIT):
        await world.order_service.place_order_as(
            claims, product_id=mug.id, quantity=1, idempotency_key=""
        )

    with pytest.raises(DomainError) as refused:
        await world.order_service.place_order_as(
            claims, product_id=mug.id, quantity=1, idempotency_key=""
        )

    assert refused.value.code is ErrorCode.RATE_LIMITED
    assert refused.value.retry_after_s is not None
    assert world.products.rows[mug.id].stock == 100 - ORDER_RATE_LIMIT
