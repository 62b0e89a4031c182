"""A document sent again runs on the fast path, and answers exactly as the full path did."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

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
    moved = {p: after.get(p, 0) - before.get(p, 0) for p in ("fast", "full")}
    return first, second, moved


async def test_a_query_sent_again_runs_fast_and_answers_the_same(
    client: httpx.AsyncClient,
) -> None:
    product = await make_product(client, await admin_token(client), stock=3)
    query = _fresh("query One($id: Int!) { product(id: $id) { id name price stock } }")
    for variables in ({"id": product["id"]}, {"id": 2_000_000_000}):
        first, second, moved = await _twice(client, {"query": query, "variables": variables})
        assert moved == {"fast": 1, "full": 0}
        assert (second.status_code, second.headers["content-type"]) == (200, "application/json")
        assert second.json() == first.json()
    assert first.json() == {"data": {"product": None}}


async def test_errors_on_the_fast_path_carry_the_same_codes(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    query = _fresh("{ users(first: 2) { edges { node { sid } } } }")
    first, second, moved = await _twice(client, {"query": query}, user.auth)
    assert moved == {"fast": 1, "full": 0}
    assert second.json() == first.json()
    assert second.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_mutation_runs_fast_and_keeps_its_rules(client: httpx.AsyncClient) -> None:
    product = await make_product(client, await admin_token(client), stock=1)
    user = await make_user(client)
    body = {
        "query": _fresh("mutation($p: Int!) { placeOrder(productId: $p, quantity: 1) { status } }"),
        "variables": {"p": product["id"]},
    }
    first, second, moved = await _twice(client, body, user.auth)
    assert moved == {"fast": 1, "full": 0}
    assert first.json() == {"data": {"placeOrder": {"status": "PLACED"}}}
    assert second.json()["errors"][0]["extensions"]["code"] == "OUT_OF_STOCK"


async def test_what_the_fast_path_cannot_answer_takes_the_full_path(
    client: httpx.AsyncClient,
) -> None:
    # Over a limit with this request's `first`: refused, as on the first sight of a document.
    pages = _fresh("query($n: Int) { products(first: $n) { edges { node { id name } } } }")
    ok = await client.post("/graphql", json={"query": pages, "variables": {"n": 5}})
    assert "errors" not in ok.json()
    _, over, moved = await _twice(client, {"query": pages, "variables": {"n": 100_000}})
    assert moved == {"fast": 0, "full": 1}
    assert over.json()["errors"][0]["extensions"]["limit"] == "cost"

    # Variables that fail coercion: the full path's BAD_USER_INPUT, not an internal error.
    one = _fresh("query($id: Int!) { product(id: $id) { id } }")
    await client.post("/graphql", json={"query": one, "variables": {"id": 1}})
    _, bad, moved = await _twice(client, {"query": one, "variables": {"id": "x"}})
    assert moved == {"fast": 0, "full": 1}
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    # Two operations and no name: Strawberry runs the first one; the fast path leaves it so.
    two = _fresh("query A { welcome } query B { products(first: 1) { edges { cursor } } }")
    named = await client.post("/graphql", json={"query": two, "operationName": "A"})
    assert named.json() == {"data": {"welcome": named.json()["data"]["welcome"]}}
    _, unnamed, moved = await _twice(client, {"query": two})
    assert moved == {"fast": 0, "full": 1}
    assert unnamed.json() == named.json()
    _, other, moved = await _twice(client, {"query": two, "operationName": "B"})
    assert moved == {"fast": 1, "full": 0}
    assert "errors" not in other.json()


async def test_fast_path_calls_are_recorded_like_any_other(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    query = _fresh("{ welcome }")
    await client.post("/graphql", json={"query": query})
    rid = f"test-{uuid.uuid4().hex}"
    before = await _paths(client)
    await client.post("/graphql", json={"query": query}, headers={"X-Request-ID": rid})
    assert (await _paths(client))["fast"] == before["fast"] + 1
    groups = await wait_for_records(
        stack.kafka_bootstrap,
        [rid],
        lambda g: any(r["operation"] == "Query.welcome" for r in g[rid]),
    )
    (record,) = groups[rid]
    assert (record["service"], record["kind"], record["outcome"]) == ("gateway", "graphql", "ok")
