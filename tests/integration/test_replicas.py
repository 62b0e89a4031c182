"""The rules hold across replicas: two gateways, each over its own db_service, on one PostgreSQL,
one broker and one logging service, with the clients spread over both gateways (DESIGN §10).

Each pair is started the way `make run` starts a service (tests.ownstack), beside the session
stack and on its database; they share nothing but PostgreSQL and Kafka.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.conftest import Stack
from tests.factories import Account, admin_token, error_codes, gql, make_product, make_user
from tests.logtopic import wait_for_records
from tests.ownstack import own_services

PLACE = """mutation($p: Int!, $q: Int!, $k: String) {
  placeOrder(productId: $p, quantity: $q, idempotencyKey: $k) { id }
}"""
ME = "{ me { sid } }"
# Long enough that five failed logins through two gateways fall in one window on a busy machine.
LOGIN_WINDOW_S = "60"
# Above the 10 orders each of the 200 buyers' 20 shoppers sends; below anything slow to reach.
ORDER_RATE_LIMIT = 12


@pytest.fixture(scope="module")
def replica_urls(stack: Stack) -> Iterator[list[str]]:
    with ExitStack() as pairs:
        urls = [
            pairs.enter_context(
                own_services(
                    stack,
                    ("db_service", "gateway"),
                    LOGIN_WINDOW_S=LOGIN_WINDOW_S,
                    ORDER_RATE_LIMIT=str(ORDER_RATE_LIMIT),
                )
            ).gateway_url
            for _ in range(2)
        ]
        yield urls


@pytest.fixture
async def gateways(replica_urls: list[str]) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A client per gateway replica; tests alternate between them."""
    async with (
        httpx.AsyncClient(base_url=replica_urls[0], timeout=60) as a,
        httpx.AsyncClient(base_url=replica_urls[1], timeout=60) as b,
    ):
        yield [a, b]


async def stock_of(client: httpx.AsyncClient, product_id: int) -> int:
    stock: int = (await client.get(f"/api/v1/products/{product_id}")).json()["stock"]
    return stock


async def test_200_buyers_over_two_replicas_buy_exactly_the_stock(
    gateways: list[httpx.AsyncClient],
) -> None:
    # given a stock of 10 and 20 shoppers
    a, b = gateways
    product = await make_product(a, await admin_token(a), stock=10)
    users = [await make_user(gateways[i % 2]) for i in range(20)]

    # when 200 orders race, half through each replica
    bodies = await asyncio.gather(
        *(
            gql(gateways[i % 2], PLACE, {"p": product["id"], "q": 1}, token=users[i % 20].token)
            for i in range(200)
        )
    )

    # then exactly 10 are placed and the other 190 are out of stock
    placed = [body for body in bodies if body.get("data") and body["data"]["placeOrder"]]
    assert len(placed) == 10
    assert [code for body in bodies for code in error_codes(body)] == ["OUT_OF_STOCK"] * 190
    assert await stock_of(b, product["id"]) == 0


async def test_one_key_sent_through_both_replicas_at_once_places_one_order(
    gateways: list[httpx.AsyncClient],
) -> None:
    # given a shopper and one idempotency key
    a, _ = gateways
    product = await make_product(a, await admin_token(a), stock=20)
    user = await make_user(a)
    key = uuid.uuid4().hex

    # when 20 placements with it race, half through each replica
    bodies = await asyncio.gather(
        *(
            gql(gateways[i % 2], PLACE, {"p": product["id"], "q": 1, "k": key}, token=user.token)
            for i in range(20)
        )
    )

    # then every one answers the same order, and one unit of stock is gone
    ids = {body["data"]["placeOrder"]["id"] for body in bodies}
    assert len(ids) == 1, bodies
    assert await stock_of(a, product["id"]) == 19


async def test_login_throttling_counts_attempts_through_both_replicas(
    gateways: list[httpx.AsyncClient],
) -> None:
    # given a user and five wrong passwords, alternating replicas
    user = await make_user(gateways[0])
    wrong = {"username": user.username, "password": "not the password"}
    failures = [await gateways[i % 2].post("/api/v1/users/login", json=wrong) for i in range(5)]

    # when the right password comes through either replica
    right = {"username": user.username, "password": user.password}
    answers = [await client.post("/api/v1/users/login", json=right) for client in gateways]

    # then both refuse it: the window is one, in PostgreSQL
    assert [r.status_code for r in failures] == [401] * 5
    assert [r.status_code for r in answers] == [429, 429]


async def test_order_rate_limit_counts_orders_through_both_replicas(
    gateways: list[httpx.AsyncClient],
) -> None:
    # given a shopper who placed the limit's worth of orders, alternating replicas
    product = await make_product(gateways[0], await admin_token(gateways[0]), stock=50)
    user = await make_user(gateways[0])
    allowed = [
        await gql(gateways[i % 2], PLACE, {"p": product["id"], "q": 1}, token=user.token)
        for i in range(ORDER_RATE_LIMIT)
    ]

    # when one more comes through either replica
    over = [await gql(c, PLACE, {"p": product["id"], "q": 1}, token=user.token) for c in gateways]

    # then it is refused on both
    assert [error_codes(body) for body in allowed] == [[]] * ORDER_RATE_LIMIT
    assert [error_codes(body) for body in over] == [["RATE_LIMITED"]] * 2


async def _change_password(client: httpx.AsyncClient, user: Account, new: str) -> httpx.Response:
    body = {"password": new, "current_password": user.password}
    return await client.put(f"/api/v1/users/{user.sid}", json=body, headers=user.auth)


async def test_a_password_changed_on_one_replica_revokes_the_token_on_the_other(
    gateways: list[httpx.AsyncClient],
) -> None:
    # given a token that both replicas accept
    a, b = gateways
    user = await make_user(a)
    assert error_codes(await gql(b, ME, token=user.token)) == []

    # when the password is changed through the first
    changed = await _change_password(a, user, "a brand new password")
    assert changed.status_code == 200, changed.text

    # then the second refuses the old token at its next call
    assert error_codes(await gql(b, ME, token=user.token)) == ["UNAUTHENTICATED"]


async def test_every_request_through_either_replica_is_in_the_log_topic(
    gateways: list[httpx.AsyncClient], stack: Stack
) -> None:
    # given requests with ids of our own, half through each replica
    rids = [f"replica-{uuid.uuid4().hex[:12]}-{i}" for i in range(10)]
    for i, rid in enumerate(rids):
        response = await gateways[i % 2].get("/api/v1/products", headers={"X-Request-ID": rid})
        assert response.status_code == 200

    # then each request's gateway and db_service records reach log-channel with its id
    def complete(groups: dict[str, list[dict[str, str]]]) -> bool:
        return all(
            {r["service"] for r in records} >= {"gateway", "db_service"}
            for records in groups.values()
        )

    groups = await wait_for_records(stack.kafka_bootstrap, rids, complete)
    assert sorted(groups) == sorted(rids)
