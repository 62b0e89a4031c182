"""Matrix, production settings and configured limits, on a db_service and gateway of their own.

The pair runs with MERCH_ENV=production (GraphiQL, introspection and field suggestions off),
an 8 KiB request limit and an order rate limit of 3 per 3 s, beside the session stack and on
its database, so each setting is shown to be honoured where it is configured.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.factories import make_user
from tests.ownstack import OwnStack, own_services
from tests.security.conftest import Actors, assert_safe, graphql_codes, stock_of, unchanged

LIMIT_BYTES = 8192
ORDERS_PER_WINDOW, WINDOW_S = 3, 3


@pytest.fixture(scope="module")
def production(stack: Stack) -> Iterator[OwnStack]:
    with own_services(
        stack,
        ("db_service", "gateway"),
        MERCH_ENV="production",
        REQUEST_MAX_BYTES=str(LIMIT_BYTES),
        ORDER_RATE_LIMIT=str(ORDERS_PER_WINDOW),
        ORDER_RATE_WINDOW_S=str(WINDOW_S),
    ) as own:
        yield own


@pytest.fixture
async def prod(production: OwnStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=production.gateway_url, timeout=30) as c:
        yield c


# (case, query, expected code or None for success, text that must not appear in the message)
PRODUCTION_DOCUMENTS: list[tuple[str, str, str | None, str | None]] = [
    ("introspection of the schema", "{ __schema { types { name } } }",
     "GRAPHQL_VALIDATION_FAILED", None),
    ("introspection of a type", '{ __type(name: "User") { fields { name } } }',
     "GRAPHQL_VALIDATION_FAILED", None),
    ("__typename still answers", "{ __typename }", None, None),
    ("no field suggestions", "{ welcom }", "GRAPHQL_VALIDATION_FAILED", "Did you mean"),
    ("no argument suggestions", "{ product(idd: 1) { id } }", "GRAPHQL_VALIDATION_FAILED",
     "Did you mean"),
    ("no type suggestions", "query($i: RegisterInputs) { welcome }",
     "GRAPHQL_VALIDATION_FAILED", "Did you mean"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "query", "code", "hidden"),
    PRODUCTION_DOCUMENTS,
    ids=[row[0] for row in PRODUCTION_DOCUMENTS],
)
async def test_production_hides_the_schema(
    prod: httpx.AsyncClient, case: str, query: str, code: str | None, hidden: str | None
) -> None:
    # given a production gateway; when the document is posted
    response = await prod.post("/graphql", json={"query": query})

    # then introspection is refused and no message spells out the schema
    assert_safe(response)
    assert response.status_code == 200
    if code is None:
        assert response.json()["data"] == {"__typename": "Query"}
    else:
        assert set(graphql_codes(response)) == {code}
    if hidden is not None:
        assert hidden not in response.text


@pytest.mark.parametrize(
    ("case", "path", "headers"),
    [
        ("GraphiQL page", "/graphql", {"Accept": "text/html"}),
        ("GraphiQL assets", "/graphiql-static/graphiql.min.js", {}),
    ],
)
async def test_production_serves_no_graphiql(
    prod: httpx.AsyncClient, case: str, path: str, headers: dict[str, str]
) -> None:
    # given a production gateway; when a browser asks for GraphiQL
    response = await prod.get(path, headers=headers)

    # then there is none
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()


# (case, method, path, request arguments, expected status, expected code)
SIZES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    ("GraphQL body over the configured limit", "POST", "/graphql",
     {"json": {"query": "{ welcome }" + " " * LIMIT_BYTES}}, 413, "PAYLOAD_TOO_LARGE"),
    ("GraphQL query string over the configured limit", "GET", "/graphql",
     {"params": {"query": "{ welcome }" + " " * LIMIT_BYTES}}, 414, "URI_TOO_LONG"),
    ("REST body over the configured limit", "POST", "/api/v1/users/login",
     {"json": {"username": "x" * LIMIT_BYTES, "password": "y"}}, 413, "PAYLOAD_TOO_LARGE"),
    ("GraphQL body under the configured limit", "POST", "/graphql",
     {"json": {"query": "{ welcome }" + " " * (LIMIT_BYTES - 100)}}, 200, ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "method", "path", "arguments", "status", "code"), SIZES, ids=[r[0] for r in SIZES]
)
async def test_request_size_limit_is_the_configured_one(
    prod: httpx.AsyncClient,
    case: str,
    method: str,
    path: str,
    arguments: dict[str, Any],
    status: int,
    code: str,
) -> None:
    # given REQUEST_MAX_BYTES=8192; when a request around that size is sent
    response = await prod.request(method, path, **arguments)

    # then it is refused above the limit (in each API's error shape) and served below it
    assert_safe(response)
    assert response.status_code == status, response.text[:200]
    if path == "/graphql" and code:
        assert graphql_codes(response) == [code]
    elif code:
        assert response.json()["error"]["code"] == code


PLACE = "mutation($p: Int!) { placeOrder(productId: $p, quantity: 1) { id } }"


async def test_orders_over_the_rate_limit_are_429_with_retry_after(
    prod: httpx.AsyncClient, stack: Stack, actors: Actors
) -> None:
    # given a shopper who has placed the 3 orders a window allows
    user = await make_user(prod)
    product_id = actors.product["id"]
    key = uuid.uuid4().hex
    order = {"product_id": product_id, "quantity": 1}
    first = await prod.post(
        "/api/v1/orders", json=order, headers={**user.auth, "Idempotency-Key": key}
    )
    for _ in range(ORDERS_PER_WINDOW - 1):
        assert (await prod.post("/api/v1/orders", json=order, headers=user.auth)).status_code == 201
    assert first.status_code == 201
    stock = await stock_of(prod, product_id)

    # when a 4th (REST) and a 5th (GraphQL) order are attempted in the same window
    async with unchanged(stack):
        rest = await prod.post("/api/v1/orders", json=order, headers=user.auth)
        graphql = await prod.post(
            "/graphql", json={"query": PLACE, "variables": {"p": product_id}}, headers=user.auth
        )
        # and the first order is retried with its key (a replay places nothing)
        replay = await prod.post(
            "/api/v1/orders", json=order, headers={**user.auth, "Idempotency-Key": key}
        )

    # then both are refused with when to come back, the replay answers, and stock is untouched
    assert rest.status_code == 429
    assert rest.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(rest.headers["retry-after"]) <= WINDOW_S
    error = graphql.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= error["extensions"]["retryAfter"] <= WINDOW_S
    assert replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert await stock_of(prod, product_id) == stock


async def test_the_rate_limit_window_passes(prod: httpx.AsyncClient, actors: Actors) -> None:
    # given a shopper refused for ordering too often
    user = await make_user(prod)
    order = {"product_id": actors.product["id"], "quantity": 1}
    statuses = [
        (await prod.post("/api/v1/orders", json=order, headers=user.auth)).status_code
        for _ in range(ORDERS_PER_WINDOW + 1)
    ]
    assert statuses == [201] * ORDERS_PER_WINDOW + [429]

    # when the window has passed (polled, with a deadline)
    deadline = time.monotonic() + WINDOW_S + 5
    while True:
        again = await prod.post("/api/v1/orders", json=order, headers=user.auth)
        if again.status_code != 429 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)  # the polling interval of a wait bounded by the deadline

    # then ordering works again
    assert again.status_code == 201
