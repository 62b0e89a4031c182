"""Matrix, idempotency: retried and reused keys place an order once or conflict, never twice.

Each row places orders with idempotency keys through either API and states how many orders
and how much stock they may take.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.factories import Account, gql, make_product, make_user
from tests.security.conftest import Actors, stock_of

PLACE = (
    "mutation($p: Int!, $q: Int!, $k: String) "
    "{ placeOrder(productId: $p, quantity: $q, idempotencyKey: $k) { id } }"
)


async def _place(
    client: httpx.AsyncClient,
    user: Account,
    product_id: int,
    *,
    quantity: int = 1,
    key: str | None,
    api: str = "rest",
) -> tuple[int, Any]:
    """(status or 200, order id or error code) of one placement."""
    if api == "rest":
        headers = dict(user.auth)
        if key is not None:
            headers["Idempotency-Key"] = key
        r = await client.post(
            "/api/v1/orders", json={"product_id": product_id, "quantity": quantity}, headers=headers
        )
        body = r.json()
        return r.status_code, body.get("id") or body["error"]["code"]
    variables = {"p": product_id, "q": quantity, "k": key}
    r = await client.post(
        "/graphql", json={"query": PLACE, "variables": variables}, headers=user.auth
    )
    body = r.json()
    if body.get("errors"):
        return r.status_code, body["errors"][0]["extensions"]["code"]
    return r.status_code, body["data"]["placeOrder"]["id"]


@pytest.fixture
async def fresh(client: httpx.AsyncClient, actors: Actors) -> tuple[Account, int]:
    """A new shopper and a product of their own with stock 20."""
    return await make_user(client), (await make_product(client, actors.admin, stock=20))["id"]


# (case, the second placement as (api, quantity, same key?), expected: "same", "new" or a code,
#  stock taken by both placements together)
SECOND: list[tuple[str, tuple[str, int, bool], str, int]] = [
    ("a retry through REST", ("rest", 1, True), "same", 1),
    ("a retry through GraphQL", ("graphql", 1, True), "same", 1),
    ("the key with another quantity", ("rest", 2, True), "CONFLICT", 1),
    ("the key with another quantity, GraphQL", ("graphql", 3, True), "CONFLICT", 1),
    ("another key", ("rest", 1, False), "new", 2),
]


@pytest.mark.parametrize(
    ("case", "second", "expected", "taken"), SECOND, ids=[r[0] for r in SECOND]
)
async def test_a_second_placement_with_a_key(
    client: httpx.AsyncClient,
    fresh: tuple[Account, int],
    case: str,
    second: tuple[str, int, bool],
    expected: str,
    taken: int,
) -> None:
    # given an order placed with a key
    user, product_id = fresh
    key = uuid.uuid4().hex
    status, first_id = await _place(client, user, product_id, key=key)
    assert status == 201

    # when a second placement follows
    api, quantity, same_key = second
    _, outcome = await _place(
        client,
        user,
        product_id,
        quantity=quantity,
        key=key if same_key else uuid.uuid4().hex,
        api=api,
    )

    # then it is the first order again, a conflict, or a new order; stock moved accordingly
    if expected == "same":
        assert outcome == first_id
    elif expected == "new":
        assert isinstance(outcome, int)
        assert outcome != first_id
    else:
        assert outcome == expected
    assert await stock_of(client, product_id) == 20 - taken


async def test_one_key_of_two_shoppers_places_two_orders(
    client: httpx.AsyncClient, fresh: tuple[Account, int]
) -> None:
    # given two shoppers using the same key
    alice, product_id = fresh
    bob = await make_user(client)
    key = "shared-key-" + uuid.uuid4().hex

    # when both place an order with it
    _, first = await _place(client, alice, product_id, key=key)
    _, second = await _place(client, bob, product_id, key=key)

    # then keys are per shopper: two orders
    assert isinstance(first, int)
    assert isinstance(second, int)
    assert first != second
    assert await stock_of(client, product_id) == 18


async def test_a_key_replayed_after_cancelling_places_nothing(
    client: httpx.AsyncClient, fresh: tuple[Account, int]
) -> None:
    # given an order placed with a key, then cancelled
    user, product_id = fresh
    key = uuid.uuid4().hex
    _, order_id = await _place(client, user, product_id, key=key)
    cancelled = await client.delete(f"/api/v1/orders/{order_id}", headers=user.auth)
    assert cancelled.status_code == 200

    # when the placement is retried with the key
    replay = await client.post(
        "/api/v1/orders",
        json={"product_id": product_id, "quantity": 1},
        headers={**user.auth, "Idempotency-Key": key},
    )

    # then the (cancelled) first order comes back and the stock stays restored
    assert replay.status_code == 201
    assert replay.json()["id"] == order_id
    assert replay.json()["status"] == "cancelled"
    assert await stock_of(client, product_id) == 20


@pytest.mark.parametrize(
    ("case", "key"),
    [("128 characters", "k" * 128), ("unicode", "ключ-🔑-" + uuid.uuid4().hex)],
)
async def test_keys_at_the_edges_are_accepted_once(
    client: httpx.AsyncClient, fresh: tuple[Account, int], case: str, key: str
) -> None:
    # given a key at the edge of what is allowed; when it is used twice (GraphQL)
    user, product_id = fresh
    first = await _place(client, user, product_id, key=key, api="graphql")
    second = await _place(client, user, product_id, key=key, api="graphql")

    # then one order was placed
    assert isinstance(first[1], int)
    assert first == second
    assert await stock_of(client, product_id) == 19


async def test_an_empty_key_is_no_key(
    client: httpx.AsyncClient, fresh: tuple[Account, int]
) -> None:
    # given placements with an empty Idempotency-Key header; when two are sent
    user, product_id = fresh
    _, first = await _place(client, user, product_id, key="")
    _, second = await _place(client, user, product_id, key="")

    # then each is its own order
    assert isinstance(first, int)
    assert isinstance(second, int)
    assert first != second
    assert await stock_of(client, product_id) == 18


async def test_twenty_concurrent_retries_through_both_apis_place_one_order(
    client: httpx.AsyncClient, fresh: tuple[Account, int]
) -> None:
    # given one key; when 20 placements with it race, half through each API
    user, product_id = fresh
    key = uuid.uuid4().hex
    results = await asyncio.gather(
        *(
            _place(client, user, product_id, key=key, api="rest" if i % 2 else "graphql")
            for i in range(20)
        )
    )

    # then all of them answer the one order, and one unit of stock was taken
    assert len({order_id for _, order_id in results}) == 1
    assert isinstance(results[0][1], int)
    assert await stock_of(client, product_id) == 19


async def test_two_keys_on_one_request_are_refused(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given a shopper whose request carries two Idempotency-Key headers (a proxy added one, say)
    shopper = await make_user(client)
    product = actors.product
    before = await stock_of(client, product["id"])
    headers = [*shopper.auth.items(), ("Idempotency-Key", "key-a"), ("Idempotency-Key", "key-b")]

    # when it places an order
    response = await client.post(
        "/api/v1/orders", json={"product_id": product["id"], "quantity": 1}, headers=headers
    )

    # then nothing is placed under either key: which one was meant is not the gateway's guess
    assert response.status_code == 400, response.text
    assert "one Idempotency-Key" in response.json()["error"]["message"]
    assert await stock_of(client, product["id"]) == before


async def test_a_key_that_is_not_ascii_is_the_same_key_in_both_apis(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given a shopper who placed an order through REST under a key written in UTF-8
    shopper = await make_user(client)
    product = actors.product
    key = "заказ-" + uuid.uuid4().hex[:8]
    rest = await client.post(
        "/api/v1/orders",
        json={"product_id": product["id"], "quantity": 1},
        headers=[*shopper.auth.items(), ("Idempotency-Key", key.encode())],
    )
    assert rest.status_code == 201, rest.text
    after_rest = await stock_of(client, product["id"])

    # when the same order is retried through GraphQL with the same key
    retried = await gql(
        client,
        "mutation($p: Int!, $k: String) { placeOrder(productId: $p, quantity: 1,"
        " idempotencyKey: $k) { id } }",
        {"p": product["id"], "k": key},
        token=shopper.token,
    )

    # then it is the first order again: the header's bytes were read as UTF-8, not Latin-1
    assert retried["data"]["placeOrder"]["id"] == rest.json()["id"]
    assert await stock_of(client, product["id"]) == after_rest


async def test_a_key_whose_bytes_are_not_utf8_is_refused(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given a shopper whose key header holds bytes that are no UTF-8 text
    shopper = await make_user(client)
    before = await stock_of(client, actors.product["id"])

    # when an order is placed with it
    response = await client.post(
        "/api/v1/orders",
        json={"product_id": actors.product["id"], "quantity": 1},
        headers=[*shopper.auth.items(), ("Idempotency-Key", b"key-\xff\xfe")],
    )

    # then it is refused, and nothing is placed
    assert response.status_code == 400, response.text
    assert "UTF-8" in response.json()["error"]["message"]
    assert await stock_of(client, actors.product["id"]) == before


async def test_a_key_with_surrounding_spaces_is_the_same_key_in_both_apis(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given a shopper who placed an order through REST under a key; an HTTP server reads a
    # header's value without the spaces around it (RFC 9110 §5.5), so "Idempotency-Key:  k "
    # reaches the gateway as "k"
    shopper = await make_user(client)
    product = actors.product["id"]
    key = f"key-{uuid.uuid4().hex[:8]}"
    first = await _place(client, shopper, product, key=key, api="rest")
    assert first[0] == 201, first
    after_rest = await stock_of(client, product)

    # when the client retries the order through GraphQL with the key as it wrote it
    retried = await _place(client, shopper, product, key=f"  {key} ", api="graphql")

    # then it is the first order again, and no more stock is taken
    assert retried == (200, first[1])
    assert await stock_of(client, product) == after_rest


async def test_a_key_of_spaces_only_is_refused(
    client: httpx.AsyncClient, fresh: tuple[Account, int]
) -> None:
    # given a shopper and a product
    shopper, product = fresh

    # when an order is placed through GraphQL with a key that is nothing but spaces (which
    # REST reads as no key at all, and the gateway would retry as a keyed order)
    status, code = await _place(client, shopper, product, key="   ", api="graphql")

    # then it is refused, and nothing is placed
    assert (status, code) == (200, "BAD_USER_INPUT")
    assert await stock_of(client, product) == 20
