"""The scenarios: what each sends, and what a right answer looks like.

To add one, write a `_build` function returning a Probe per request variant (wrk rotates
through them, the check samples them) and append a Scenario to SCENARIOS. A scenario that
needs the gateway to do something first (register a persisted query) gives a `prepare`
that raises Skip while the gateway cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from bench import persisted
from bench.probes import (
    KEY_MARK,
    HttpRequest,
    Probe,
    bearer,
    graphql_data,
    post_json,
    product_problem,
)


@dataclass(frozen=True)
class ProductRow:
    id: int
    name: str
    price: str


@dataclass(frozen=True)
class OrderRow:
    id: int
    product_name: str
    username: str


@dataclass(frozen=True)
class BenchData:
    """What the scenarios are built from: rows from the database and tokens from the API."""

    products: tuple[ProductRow, ...]
    first_orders: tuple[OrderRow, ...]
    order_product_id: int
    admin_token: str
    user_tokens: tuple[str, ...]


class Skip(Exception):
    """The scenario cannot be measured against this gateway (yet); the message says why."""


Prepare = Callable[[httpx.Client, str, BenchData], None]


@dataclass(frozen=True)
class Scenario:
    """One timed workload."""

    key: str
    title: str
    target: Literal["gateway", "baseline"]
    build: Callable[[BenchData], list[Probe]]
    graphql: bool = False
    logging_off: bool = False  # also timed on the logging twins (on, off, sync)
    places_orders: bool = False
    prepare: Prepare | None = None


PRODUCT_FIELDS = "id name description category price slogan stock createdAt"
PRODUCT_BY_ID = f"query ProductById($id: Int!) {{ product(id: $id) {{ {PRODUCT_FIELDS} }} }}"
PRODUCTS_PAGE = (
    "query ProductsPage { products(first: 20) { edges { cursor node { id name price stock } }"
    " pageInfo { hasNextPage endCursor } } }"
)
ORDERS_PAGE = (
    "query OrdersPage { orders(first: 50) { edges { node { id quantity totalPrice status"
    " createdAt product { id name price } user { sid username } } }"
    " pageInfo { hasNextPage endCursor } } }"
)
PLACE_ORDER = (
    "mutation PlaceOrder($productId: Int!, $quantity: Int!, $key: String) {"
    " placeOrder(productId: $productId, quantity: $quantity, idempotencyKey: $key) {"
    " id status quantity unitPrice totalPrice createdAt } }"
)


def _graphql_product(p: ProductRow) -> Callable[[int, Any], str | None]:
    def expect(status: int, body: Any) -> str | None:
        got, problem = graphql_data(status, body, "product")
        return problem or product_problem(got, p.id, p.name, p.price)

    return expect


def _rest_product(p: ProductRow) -> Callable[[int, Any], str | None]:
    def expect(status: int, body: Any) -> str | None:
        if status != 200:
            return f"HTTP {status}: {str(body)[:200]}"
        return product_problem(body, p.id, p.name, p.price)

    return expect


def _product_variable(data: BenchData) -> list[Probe]:
    return [
        Probe(post_json("/graphql", {"query": PRODUCT_BY_ID, "variables": {"id": p.id}}), e)
        for p in data.products
        for e in [_graphql_product(p)]
    ]


def _product_literal(data: BenchData) -> list[Probe]:
    return [
        Probe(
            post_json("/graphql", {"query": f"{{ product(id: {p.id}) {{ {PRODUCT_FIELDS} }} }}"}), e
        )
        for p in data.products
        for e in [_graphql_product(p)]
    ]


def _product_persisted(data: BenchData) -> list[Probe]:
    return [
        Probe(post_json("/graphql", persisted.payload(PRODUCT_BY_ID, {"id": p.id})), e)
        for p in data.products
        for e in [_graphql_product(p)]
    ]


def _prepare_persisted(client: httpx.Client, url: str, data: BenchData) -> None:
    probe = _product_persisted(data)[0]
    reason = persisted.register(client, url, PRODUCT_BY_ID, probe)
    if reason is not None:
        raise Skip(reason)


def _products_page(data: BenchData) -> list[Probe]:
    first = sorted(data.products, key=lambda p: p.id)[:20]

    def expect(status: int, body: Any) -> str | None:
        page, problem = graphql_data(status, body, "products")
        if problem:
            return problem
        nodes = [edge["node"] for edge in page.get("edges") or []]
        if len(nodes) != len(first):
            return f"expected {len(first)} products, got {len(nodes)}"
        for node, want in zip(nodes, first, strict=True):
            if (node.get("id"), node.get("name")) != (want.id, want.name):
                return f"expected product {want.id} {want.name!r}, got {node}"
        return None

    return [Probe(post_json("/graphql", {"query": PRODUCTS_PAGE}), expect)]


def _orders_judge(data: BenchData) -> Callable[[int, Any], str | None]:
    def expect(status: int, body: Any) -> str | None:
        page, problem = graphql_data(status, body, "orders")
        if problem:
            return problem
        nodes = [edge["node"] for edge in page.get("edges") or []]
        if len(nodes) != len(data.first_orders):
            return f"expected {len(data.first_orders)} orders, got {len(nodes)}"
        for node, want in zip(nodes, data.first_orders, strict=True):
            product, user = node.get("product") or {}, node.get("user") or {}
            got = (node.get("id"), product.get("name"), user.get("username"))
            if got != (want.id, want.product_name, want.username):
                return f"order {want.id}: expected {want}, got {got}"
        return None

    return expect


def _orders_page(data: BenchData) -> list[Probe]:
    auth = bearer(data.admin_token)
    return [Probe(post_json("/graphql", {"query": ORDERS_PAGE}, auth), _orders_judge(data))]


def _place_order(data: BenchData) -> list[Probe]:
    def expect(status: int, body: Any) -> str | None:
        order, problem = graphql_data(status, body, "placeOrder")
        if problem:
            return problem
        if not isinstance(order.get("id"), int) or order.get("status") != "PLACED":
            return f"expected a placed order, got {order}"
        return None

    variables = {"productId": data.order_product_id, "quantity": 1, "key": KEY_MARK}
    payload = {"query": PLACE_ORDER, "variables": variables}
    return [Probe(post_json("/graphql", payload, bearer(t)), expect) for t in data.user_tokens]


def _rest_product_get(data: BenchData) -> list[Probe]:
    return [
        Probe(HttpRequest("GET", f"/api/v1/products/{p.id}"), _rest_product(p))
        for p in data.products
    ]


def _rest_order_post(data: BenchData) -> list[Probe]:
    def expect(status: int, body: Any) -> str | None:
        if status != 201:
            return f"HTTP {status}: {str(body)[:200]}"
        if body.get("product_id") != data.order_product_id or body.get("status") != "placed":
            return f"expected a placed order of product {data.order_product_id}, got {body}"
        return None

    payload = {"product_id": data.order_product_id, "quantity": 1}
    return [
        Probe(
            post_json("/api/v1/orders", payload, {**bearer(t), "Idempotency-Key": KEY_MARK}), expect
        )
        for t in data.user_tokens
    ]


def _baseline(data: BenchData) -> list[Probe]:
    return [Probe(HttpRequest("GET", f"/products/{p.id}"), _rest_product(p)) for p in data.products]


def _baseline_orders(data: BenchData) -> list[Probe]:
    # The same JSON as gql_orders' answer, so the same judge checks it.
    return [Probe(HttpRequest("GET", "/orders?first=50"), _orders_judge(data))]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("baseline", "baseline: Starlette + asyncpg, 1 SELECT", "baseline", _baseline),
    Scenario(
        "baseline_orders",
        "list baseline: 50 orders +product +user, 1 SELECT",
        "baseline",
        _baseline_orders,
    ),
    Scenario(
        "gql_product_var",
        "GraphQL product(id), $id variable",
        "gateway",
        _product_variable,
        graphql=True,
        logging_off=True,
    ),
    Scenario(
        "gql_product_literal",
        "GraphQL product(id), literal id",
        "gateway",
        _product_literal,
        graphql=True,
    ),
    Scenario(
        "gql_product_persisted",
        "GraphQL product(id), persisted",
        "gateway",
        _product_persisted,
        graphql=True,
        prepare=_prepare_persisted,
    ),
    Scenario(
        "gql_products", "GraphQL products(first: 20)", "gateway", _products_page, graphql=True
    ),
    Scenario(
        "gql_orders",
        "GraphQL orders(first: 50) +product +user",
        "gateway",
        _orders_page,
        graphql=True,
    ),
    Scenario(
        "gql_place_order",
        "GraphQL placeOrder",
        "gateway",
        _place_order,
        graphql=True,
        logging_off=True,
        places_orders=True,
    ),
    Scenario(
        "rest_product_get",
        "REST GET /api/v1/products/{id}",
        "gateway",
        _rest_product_get,
        logging_off=True,
    ),
    Scenario(
        "rest_order_post",
        "REST POST /api/v1/orders",
        "gateway",
        _rest_order_post,
        places_orders=True,
    ),
)


LIST_BASELINE = "baseline_orders"
# The scenarios whose req/s is also divided by the list baseline's, and timed at concurrency 1.
LIST_SCENARIOS = ("gql_orders",)


def select(keys: Sequence[str] | None) -> list[Scenario]:
    """The scenarios named by `keys` (all when None), always with the baseline first."""
    by_key = {s.key: s for s in SCENARIOS}
    if keys is None:
        return list(SCENARIOS)
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}; known: {', '.join(by_key)}")
    wanted = {"baseline", *keys}
    if "gql_orders" in keys:
        wanted.add(LIST_BASELINE)
    return [s for s in SCENARIOS if s.key in wanted]
