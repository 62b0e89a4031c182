"""Not found means the same in GraphQL as in REST: `null` for the field and a NOT_FOUND error,
on a document's first run and on its compiled runs alike, recorded with the outcome NOT_FOUND
(the differential test holds the reference executor to the same answers)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Stack
from tests.factories import admin_token, make_product, make_user
from tests.integration.test_graphql_compiled import _fresh, _twice
from tests.logtopic import wait_for_records

MISSING_ID = 99_999_999


def _not_found(field: str, message: str) -> dict[str, Any]:
    """The answer to a lookup of `field` that found nothing (locations left out)."""
    return {
        "data": {field: None},
        "errors": [{"message": message, "path": [field], "extensions": {"code": "NOT_FOUND"}}],
    }


def _without_locations(body: dict[str, Any]) -> dict[str, Any]:
    errors = [{k: v for k, v in e.items() if k != "locations"} for e in body.get("errors", [])]
    return {**body, "errors": errors}


async def test_a_missing_product_is_null_with_not_found_on_both_paths(
    client: httpx.AsyncClient,
) -> None:
    # given a product id that does not exist, asked for by a document sent twice
    body = {"query": _fresh("query($id: Int!) { product(id: $id) { id name } }")}
    body["variables"] = {"id": MISSING_ID}

    # when it runs for the first time, then again
    first, second, moved = await _twice(client, body)

    # then both answer null and NOT_FOUND, as REST answers 404
    assert moved == {"compiled": 1, "reference": 0}
    rest = await client.get(f"/api/v1/products/{MISSING_ID}")
    assert rest.status_code == 404
    expected = _not_found("product", rest.json()["error"]["message"])
    assert _without_locations(first.json()) == expected
    assert second.json() == first.json()


async def test_someone_elses_order_answers_exactly_as_a_missing_one_on_both_paths(
    client: httpx.AsyncClient,
) -> None:
    # given alice's order, and bob, who does not own it
    product = await make_product(client, await admin_token(client), stock=5)
    alice, bob = await make_user(client), await make_user(client)
    placed = await client.post(
        "/api/v1/orders", json={"product_id": product["id"], "quantity": 1}, headers=alice.auth
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    query = _fresh("query($id: Int!) { order(id: $id) { id status } }")

    # when bob asks for it and for an order that does not exist, on both paths
    answers = {}
    for order in (order_id, MISSING_ID):
        body = {"query": query, "variables": {"id": order}}
        first, second, moved = await _twice(client, body, bob.auth)
        assert moved == {"compiled": 1, "reference": 0}
        assert second.json() == first.json()
        answers[order] = _without_locations(first.json())

    # then both are null with NOT_FOUND, and differ in nothing but the id asked for
    assert answers[MISSING_ID] == _not_found("order", f"order {MISSING_ID} not found")
    assert answers[order_id] == _not_found("order", f"order {order_id} not found")


async def test_a_lookup_that_finds_nothing_is_recorded_as_not_found(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer and lookups of a product and an order that do not exist
    user = await make_user(client)
    query = _fresh("query($id: Int!) { product(id: $id) { id } order(id: $id) { id } }")
    body = {"query": query, "variables": {"id": MISSING_ID}}

    # when the document runs for the first time, then again
    ids = [f"test-{uuid.uuid4().hex}" for _ in range(2)]
    for rid in ids:
        response = await client.post(
            "/graphql", json=body, headers={**user.auth, "X-Request-ID": rid}
        )
        assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["NOT_FOUND"] * 2

    # then each call's record says NOT_FOUND, as REST's would
    wanted = {"Query.product", "Query.order"}
    groups = await wait_for_records(
        stack.kafka_bootstrap,
        ids,
        lambda g: all(wanted <= {r["operation"] for r in g[rid]} for rid in ids),
    )
    for rid in ids:
        outcomes = {
            r["operation"]: r["outcome"]
            for r in groups[rid]
            if r["service"] == "gateway" and r["operation"] in wanted
        }
        assert outcomes == {"Query.product": "NOT_FOUND", "Query.order": "NOT_FOUND"}


async def test_an_id_no_row_can_have_is_not_found_in_the_same_words_as_a_missing_one(
    client: httpx.AsyncClient,
) -> None:
    # given ids PostgreSQL cannot hold (answered by the gateway) and one it could (by db_service)
    customer = await make_user(client)
    for path, resource in (("products", "product"), ("orders", "order")):
        answers = {}
        for product_id in (0, -1, 2**31, MISSING_ID):
            response = await client.get(f"/api/v1/{path}/{product_id}", headers=customer.auth)
            answers[product_id] = (response.status_code, response.json()["error"])

        # then each is a 404 naming the resource, whoever answered
        assert answers == {
            product_id: (
                404,
                {"code": "NOT_FOUND", "message": f"{resource} {product_id} not found"},
            )
            for product_id in answers
        }
