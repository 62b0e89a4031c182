"""Known operations run as compiled plans and answer exactly as the reference executor does
(tests/integration/test_graphql_differential.py compares the two on every document)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.factories import admin_token, make_product, make_user
from tests.logtopic import wait_for_records

_PATHS = re.compile(r'^gateway_graphql_operations_total\{path="(\w+)"\} ([0-9.e+]+)$', re.M)


async def _paths(client: httpx.AsyncClient) -> dict[str, float]:
    return {p: float(v) for p, v in _PATHS.findall((await client.get("/metrics")).text)}


def _fresh(query: str) -> str:
    """The same operation as a document no other test has sent (a comment makes it new)."""
    return f"# {uuid.uuid4().hex}\n{query}"


async def _twice(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[httpx.Response, httpx.Response, dict[str, float]]:
    """Send `body` twice; the second answer, and how each path's count moved."""
    first = await client.post("/graphql", json=body, headers=headers)
    before = await _paths(client)
    second = await client.post("/graphql", json=body, headers=headers)
    after = await _paths(client)
    moved = {p: after.get(p, 0) - before.get(p, 0) for p in ("compiled", "reference")}
    return first, second, moved


async def test_a_query_sent_again_runs_compiled_and_answers_the_same(
    client: httpx.AsyncClient,
) -> None:
    product = await make_product(client, await admin_token(client), stock=3)
    query = _fresh("query One($id: Int!) { product(id: $id) { id name price stock } }")
    for variables in ({"id": product["id"]}, {"id": 2_000_000_000}):
        first, second, moved = await _twice(client, {"query": query, "variables": variables})
        assert moved == {"compiled": 1, "reference": 0}
        assert (second.status_code, second.headers["content-type"]) == (200, "application/json")
        assert second.json() == first.json()
    assert first.json()["data"] == {"product": None}
    assert first.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_errors_of_a_compiled_plan_carry_the_same_codes(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    query = _fresh("{ users(first: 2) { edges { node { sid } } } }")
    first, second, moved = await _twice(client, {"query": query}, user.auth)
    assert moved == {"compiled": 1, "reference": 0}
    assert second.json() == first.json()
    assert second.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_mutation_runs_compiled_and_keeps_its_rules(client: httpx.AsyncClient) -> None:
    product = await make_product(client, await admin_token(client), stock=1)
    user = await make_user(client)
    body = {
        "query": _fresh("mutation($p: Int!) { placeOrder(productId: $p, quantity: 1) { status } }"),
        "variables": {"p": product["id"]},
    }
    first, second, moved = await _twice(client, body, user.auth)
    assert moved == {"compiled": 1, "reference": 0}
    assert first.json() == {"data": {"placeOrder": {"status": "PLACED"}}}
    assert second.json()["errors"][0]["extensions"]["code"] == "OUT_OF_STOCK"


async def test_refusals_run_no_executor(client: httpx.AsyncClient) -> None:
    # Over a limit with this request's `first`: refused, as on the first sight of a document.
    pages = _fresh(
        "query($n: Int) { orders(first: $n) { edges { node { user { orders(first: $n) "
        "{ edges { cursor } } } } } } }"
    )
    ok = await client.post("/graphql", json={"query": pages, "variables": {"n": 5}})
    assert ok.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    _, over, moved = await _twice(client, {"query": pages, "variables": {"n": 100}})
    assert moved == {"compiled": 0, "reference": 0}
    assert over.json()["errors"][0]["extensions"]["limit"] == "cost"

    # Over a limit with the default of a `first` the request leaves out: refused the same way.
    defaulted = pages.replace("query($n: Int)", "query($n: Int = 100)")
    ok = await client.post("/graphql", json={"query": defaulted, "variables": {"n": 5}})
    assert ok.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    _, over, moved = await _twice(client, {"query": defaulted})
    assert moved == {"compiled": 0, "reference": 0}
    assert over.json()["errors"][0]["extensions"]["limit"] == "cost"

    # Another operation of a document that passed: measured for itself.
    costly = (
        "orders(first: 100) { edges { node { user { orders(first: 100) { edges { cursor } } } } } }"
    )
    mixed = _fresh(f"query Cheap {{ welcome }} query Costly {{ {costly} }}")
    cheap = await client.post("/graphql", json={"query": mixed, "operationName": "Cheap"})
    assert "errors" not in cheap.json()
    _, refused, moved = await _twice(client, {"query": mixed, "operationName": "Costly"})
    assert moved == {"compiled": 0, "reference": 0}
    assert refused.json()["errors"][0]["extensions"]["limit"] == "cost"


async def test_variables_that_fail_coercion_are_bad_user_input(
    client: httpx.AsyncClient,
) -> None:
    one = _fresh("query($id: Int!) { product(id: $id) { id } }")
    await client.post("/graphql", json={"query": one, "variables": {"id": 1}})
    _, bad, moved = await _twice(client, {"query": one, "variables": {"id": "x"}})
    assert moved == {"compiled": 1, "reference": 0}
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert bad.json()["data"] is None


async def test_two_operations_run_by_name_only(client: httpx.AsyncClient) -> None:
    two = _fresh("query A { welcome } query B { products(first: 1) { edges { cursor } } }")
    named = await client.post("/graphql", json={"query": two, "operationName": "A"})
    assert named.json() == {"data": {"welcome": named.json()["data"]["welcome"]}}
    _, unnamed, moved = await _twice(client, {"query": two})
    assert moved == {"compiled": 0, "reference": 0}
    assert unnamed.status_code == 400
    assert unnamed.json()["errors"][0]["message"] == (
        "Must provide operation name if query contains multiple operations."
    )
    _, other, moved = await _twice(client, {"query": two, "operationName": "B"})
    assert moved == {"compiled": 1, "reference": 0}
    assert "errors" not in other.json()


@pytest.mark.parametrize(
    "query",
    [
        "{ welcome @include(if: true) }",
        '{ __type(name: "Product") { name } }',
        "query($p: Boolean!) { products(first: 1) { edges { cursor @skip(if: $p) } } }",
    ],
)
async def test_what_the_compiler_does_not_support_runs_on_the_reference_executor(
    client: httpx.AsyncClient, query: str
) -> None:
    body = {"query": _fresh(query), "variables": {"p": False}}
    first, second, moved = await _twice(client, body)
    assert moved == {"compiled": 0, "reference": 1}
    assert second.json() == first.json()
    assert "errors" not in second.json()


async def test_compiled_calls_are_recorded_like_any_other(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    product = await make_product(client, await admin_token(client), stock=5)
    user = await make_user(client)
    placed = await client.post(
        "/api/v1/orders", json={"product_id": product["id"], "quantity": 1}, headers=user.auth
    )
    assert placed.status_code == 201
    query = _fresh(
        "{ __typename welcome me { orders(first: 5) { edges { node { product { name } } } } } }"
    )
    await client.post("/graphql", json={"query": query}, headers=user.auth)
    rid = f"test-{uuid.uuid4().hex}"
    before = await _paths(client)
    answer = await client.post(
        "/graphql", json={"query": query}, headers={**user.auth, "X-Request-ID": rid}
    )
    assert (await _paths(client))["compiled"] == before["compiled"] + 1
    assert answer.json()["data"]["me"]["orders"]["edges"][0]["node"]["product"] == {
        "name": product["name"]
    }
    expected = {"Query.__typename", "Query.welcome", "Query.me", "User.orders", "Order.product"}
    groups = await wait_for_records(
        stack.kafka_bootstrap,
        [rid],
        lambda g: expected <= {r["operation"] for r in g[rid] if r["service"] == "gateway"},
    )
    gateway = [r for r in groups[rid] if r["service"] == "gateway"]
    # Each once: root fields, the backend field and the loader's batch, no plain field.
    assert sorted(r["operation"] for r in gateway) == sorted(expected)
    assert {(r["kind"], r["outcome"], r["user"]) for r in gateway} == {("graphql", "ok", user.sid)}


async def test_an_operation_over_the_account_mutation_limit_never_runs_compiled(
    client: httpx.AsyncClient,
) -> None:
    # given a document whose first operation (one login) passed and was remembered
    login = 'login(username: "nobody_fast", password: "wrong-password") { token }'
    document = _fresh(f"mutation One {{ {login} }} mutation Two {{ a: {login} b: {login} }}")
    one = await client.post("/graphql", json={"query": document, "operationName": "One"})
    assert one.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # when its other operation (two logins) is sent, twice
    first, second, moved = await _twice(client, {"query": document, "operationName": "Two"})

    # then it is refused each time, before any plan or login ran
    assert moved["compiled"] == 0
    for answer in (first, second):
        assert answer.json()["data"] is None
        assert answer.json()["errors"][0]["extensions"]["limit"] == "accountMutations"
