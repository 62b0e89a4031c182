"""Every operation on a WebSocket is a request of its own: its own request id, its own
DataLoaders (a connection may stay open for hours; its operations must not share a cache)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import websockets

from gateway.graphql.websocket import MAX_OPERATIONS
from tests.conftest import Stack
from tests.factories import Account, admin_token, error_codes, gql, make_product, make_user
from tests.graphqlws import GraphQLSocket
from tests.logtopic import read_all

ORDER_WITH_PRODUCT = "query($id: Int!) { order(id: $id) { id product { stock } } }"


async def _records_of(
    stack: Stack, user: str, operation: str, *, count: int, within: float = 30.0
) -> list[dict[str, Any]]:
    """The topic's records of `operation` made by `user`, once there are `count` of them."""
    deadline = time.monotonic() + within
    while True:
        records = [
            r
            for r in await read_all(stack.kafka_bootstrap)
            if r["user"] == user and r["operation"] == operation
        ]
        if len(records) >= count:
            return records
        assert time.monotonic() < deadline, f"{len(records)} of {count} {operation} records"
        await asyncio.sleep(0.2)


async def _customer_with_order(client: httpx.AsyncClient, stock: int) -> tuple[Account, int, int]:
    """A new customer who ordered one unit of a new product: (customer, order id, product id)."""
    product = await make_product(client, await admin_token(client), stock=stock)
    user = await make_user(client)
    placed = await client.post(
        "/api/v1/orders", json={"product_id": product["id"], "quantity": 1}, headers=user.auth
    )
    assert placed.status_code == 201, placed.text
    return user, placed.json()["id"], product["id"]


async def test_each_operation_on_a_socket_gets_its_own_request_id(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer with an order, connected over one WebSocket
    user, order_id, _ = await _customer_with_order(client, stock=10)

    # when two operations run one after the other on that socket
    async with GraphQLSocket.open(stack.gateway_url, user.token) as socket:
        first = await socket.execute("1", ORDER_WITH_PRODUCT, {"id": order_id})
        second = await socket.execute("2", ORDER_WITH_PRODUCT, {"id": order_id})

    # then their log records carry two different request ids, one per operation
    assert "errors" not in first, first
    assert "errors" not in second, second
    records = await _records_of(stack, user.sid, "Query.order", count=2)
    assert len({r["request_id"] for r in records}) == 2


async def test_a_stock_change_between_operations_on_a_socket_is_visible(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer's order of a product with 9 left, read once over the customer's socket
    user, order_id, product_id = await _customer_with_order(client, stock=10)
    admin = {"Authorization": f"Bearer {await admin_token(client)}"}
    async with GraphQLSocket.open(stack.gateway_url, user.token) as socket:
        before = await socket.execute("1", ORDER_WITH_PRODUCT, {"id": order_id})

        # when an admin changes the stock and the customer reads the order again on that socket
        changed = await client.put(
            f"/api/v1/products/{product_id}", json={"stock": 42}, headers=admin
        )
        assert changed.status_code == 200, changed.text
        after = await socket.execute("2", ORDER_WITH_PRODUCT, {"id": order_id})

    # then the second operation sees the new stock, not the first one's DataLoader cache
    assert before["data"]["order"]["product"]["stock"] == 9
    assert after["data"]["order"]["product"]["stock"] == 42


async def test_an_error_over_a_socket_carries_its_code(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer, and what HTTP answers when they ask for someone else's account
    user = await make_user(client)
    query = '{ user(sid: "nobody0000") { sid } }'
    over_http = error_codes(await gql(client, query, token=user.token))

    # when the same operation runs over the customer's WebSocket
    async with GraphQLSocket.open(stack.gateway_url, user.token) as socket:
        result = await socket.execute("1", query)

    # then its error carries the same code
    assert over_http == ["FORBIDDEN"]
    assert [e.get("extensions", {}).get("code") for e in result["errors"]] == over_http


async def test_a_query_refused_as_a_whole_over_a_socket_ends_with_the_error_message(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer, and what HTTP answers when they list the accounts (a non-null root
    # field, so the whole result is null)
    user = await make_user(client)
    query = "{ users(first: 1) { totalCount } }"
    over_http = await gql(client, query, token=user.token)
    assert over_http["data"] is None, over_http

    # when the same query runs over the customer's WebSocket
    async with GraphQLSocket.open(stack.gateway_url, user.token) as socket:
        await socket.subscribe("1", query)
        refused = await socket.receive(within=10)
        after = await socket.execute("2", "{ welcome }")

    # then it ends with the protocol's `error` message and HTTP's errors, as a subscription
    # refused for the caller does (README, `logs`), and the socket goes on
    assert refused == {"id": "1", "type": "error", "payload": over_http["errors"]}
    assert "errors" not in after, after


async def test_a_document_of_two_operations_needs_a_name_over_a_socket_too(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer and a product, and a document whose first operation places an order
    user, _, product_id = await _customer_with_order(client, stock=10)
    document = (
        f"mutation M {{ placeOrder(productId: {product_id}, quantity: 1) {{ id }} }}"
        " query Q { welcome }"
    )

    # when it is sent over the customer's socket without an operationName
    async with GraphQLSocket.open(stack.gateway_url, user.token) as socket:
        await socket.subscribe("1", document)
        refused = await socket.receive(within=10)

    # then it is refused as over HTTP, and no order is placed
    errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["BAD_REQUEST"], refused
    assert errors[0]["message"].startswith("Must provide operation name")
    stock = (await client.get(f"/api/v1/products/{product_id}")).json()["stock"]
    assert stock == 9


async def test_a_document_over_the_token_limit_is_refused_for_its_size_over_a_socket(
    stack: Stack,
) -> None:
    # given an unnamed document of two operations, far over GRAPHQL_MAX_TOKENS (2000)
    document = "query A { welcome } query B { " + "welcome " * 5000 + "}"

    # when it is sent over a socket
    async with GraphQLSocket.open(stack.gateway_url, None) as socket:
        await socket.subscribe("1", document)
        refused = await socket.receive(within=10)

    # then it is refused for its size, as over HTTP: the gateway's operation count parses no
    # more of it than the limit (a whole 64 KiB document held the event loop for ~0.3 s)
    errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["GRAPHQL_PARSE_FAILED"], refused


async def test_a_socket_runs_a_bounded_number_of_operations_at_once(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given an admin's socket running as many `logs` subscriptions as one connection may
    token = await admin_token(client)
    async with GraphQLSocket.open(stack.gateway_url, token) as socket:
        for n in range(1, MAX_OPERATIONS + 1):
            await socket.subscribe(str(n), "subscription { logs { eventId } }")

        # when it subscribes once more
        await socket.subscribe("extra", "subscription { logs { eventId } }")

        # then that one is refused with a code (the others go on: each is a Kafka consumer in
        # logging_service, so a socket must not open them without end)
        deadline = time.monotonic() + 10
        while (message := await socket.receive(within=10))["id"] != "extra":
            assert time.monotonic() < deadline, "no answer to the extra subscription"
    assert message["type"] == "error", message
    assert [e["extensions"]["code"] for e in message["payload"]] == ["RATE_LIMITED"]


async def test_a_subscribe_message_whose_payload_is_not_an_object_closes_as_invalid(
    stack: Stack,
) -> None:
    # given an acknowledged socket
    async with GraphQLSocket.open(stack.gateway_url, None) as socket:
        # when an operation comes with a payload that is not an object
        await socket.send({"id": "1", "type": "subscribe", "payload": ["{ welcome }"]})

        # then the socket is closed as the protocol's invalid message (4400), not cut off by a
        # server error (1006, with a traceback in the gateway's log)
        with pytest.raises(websockets.ConnectionClosed):
            await socket.receive(within=10)
        assert socket.ws.close_code == 4400, socket.ws.close_reason


async def test_an_operation_field_of_the_wrong_type_is_a_bad_request_as_over_http(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given what HTTP answers to `variables` that are not an object
    query = "query Q($id: Int!) { product(id: $id) { id } }"
    over_http = await client.post("/graphql", json={"query": query, "variables": [1]})
    assert over_http.status_code == 400, over_http.text

    # when the same operation is sent over a socket, then a valid one after it
    async with GraphQLSocket.open(stack.gateway_url, None) as socket:
        await socket.subscribe("1", query, [1])  # type: ignore[arg-type]
        refused = await socket.receive(within=10)
        after = await socket.execute("2", "{ welcome }")

    # then it is refused with HTTP's code and message, and the socket goes on
    assert refused["type"] == "error", refused
    assert [(e["extensions"]["code"], e["message"]) for e in refused["payload"]] == [
        (e["extensions"]["code"], e["message"]) for e in over_http.json()["errors"]
    ]
    assert "errors" not in after, after


@pytest.mark.parametrize(
    "frame",
    [
        '{"id": ["1"], "type": "subscribe", "payload": {"query": "{ welcome }"}}',
        '{"id": {"1": 1}, "type": "complete"}',
        '["subscribe", "{ welcome }"]',
        '"ping"',
    ],
    ids=["subscribe with a list id", "complete with an object id", "an array", "a string"],
)
async def test_a_message_that_is_not_an_object_with_a_string_id_closes_as_invalid(
    stack: Stack, frame: str
) -> None:
    # given an acknowledged socket
    async with GraphQLSocket.open(stack.gateway_url, None) as socket:
        # when a message is not an object, or names its operation with an id that is not a
        # string
        await socket.ws.send(frame)

        # then the socket is closed as the protocol's invalid message (4400), not cut off by a
        # server error (1006, with a traceback in the gateway's log)
        with pytest.raises(websockets.ConnectionClosed):
            await socket.receive(within=10)
        assert socket.ws.close_code == 4400, socket.ws.close_reason
