"""Orders: exact totals, ownership, cancellation, validation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import Account, admin_token, error_codes, gql, make_product, make_user

PLACE = """mutation($p: Int!, $q: Int!, $k: String) {
  placeOrder(productId: $p, quantity: $q, idempotencyKey: $k) {
    id quantity unitPrice totalPrice status cancelledAt product { id name } user { sid }
  }
}"""


async def _stock(client: httpx.AsyncClient, product_id: int) -> int:
    stock: int = (await client.get(f"/api/v1/products/{product_id}")).json()["stock"]
    return stock


async def _order(client: httpx.AsyncClient, user: Account, product_id: int, qty: int = 1) -> Any:
    response = await client.post(
        "/api/v1/orders", json={"product_id": product_id, "quantity": qty}, headers=user.auth
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_place_order_computes_exact_totals_and_takes_stock(
    client: httpx.AsyncClient,
) -> None:
    product = await make_product(client, await admin_token(client), price="19.99", stock=10)
    user = await make_user(client)

    body = await gql(client, PLACE, {"p": product["id"], "q": 3}, token=user.token)

    order = body["data"]["placeOrder"]
    assert order["unitPrice"] == "19.99"
    assert order["totalPrice"] == "59.97"
    assert order["status"] == "PLACED"
    assert order["cancelledAt"] is None
    assert order["product"] == {"id": product["id"], "name": product["name"]}
    assert order["user"] == {"sid": user.sid}
    assert await _stock(client, product["id"]) == 7


async def test_the_highest_price_still_fits_an_order_of_three(client: httpx.AsyncClient) -> None:
    # given a product at the highest price a product may have, and two buyers
    product = await make_product(client, await admin_token(client), price="33333333.33", stock=9)
    one, three = await make_user(client), await make_user(client)

    # when one buys a single item and the other three
    single = await gql(client, PLACE, {"p": product["id"], "q": 1}, token=one.token)
    triple = await gql(client, PLACE, {"p": product["id"], "q": 3}, token=three.token)

    # then both are placed, the larger at the most an order's total can hold
    assert single["data"]["placeOrder"]["totalPrice"] == "33333333.33"
    assert triple["data"]["placeOrder"]["totalPrice"] == "99999999.99"
    assert await _stock(client, product["id"]) == 5


async def test_rest_order_round_trip_and_cancel(client: httpx.AsyncClient) -> None:
    product = await make_product(client, await admin_token(client), price="9.99", stock=5)
    user = await make_user(client)

    placed = await _order(client, user, product["id"], 2)
    fetched = await client.get(f"/api/v1/orders/{placed['id']}", headers=user.auth)
    listed = await client.get("/api/v1/orders", headers=user.auth)
    by_user = await client.get(f"/api/v1/orders/user/{user.sid}", headers=user.auth)
    cancelled = await client.delete(f"/api/v1/orders/{placed['id']}", headers=user.auth)
    again = await client.delete(f"/api/v1/orders/{placed['id']}", headers=user.auth)

    assert placed["total_price"] == 19.98
    assert '"total_price":19.98' in fetched.text.replace(" ", "")
    assert placed["user_sid"] == user.sid
    assert fetched.json() == placed
    assert [o["id"] for o in listed.json()] == [placed["id"]]
    assert [o["id"] for o in by_user.json()] == [placed["id"]]
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelled_at"] is not None
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "FAILED_PRECONDITION"
    assert await _stock(client, product["id"]) == 5


async def test_money_has_two_decimals_in_rest(client: httpx.AsyncClient) -> None:
    product = await make_product(client, await admin_token(client), price="10.00", stock=5)
    user = await make_user(client)

    response = await client.post(
        "/api/v1/orders", json={"product_id": product["id"], "quantity": 3}, headers=user.auth
    )

    text = response.text.replace(" ", "")
    assert '"unit_price":10.00' in text
    assert '"total_price":30.00' in text


async def test_someone_elses_order_is_indistinguishable_from_a_missing_one(
    client: httpx.AsyncClient,
) -> None:
    product = await make_product(client, await admin_token(client), stock=5)
    owner, other = await make_user(client), await make_user(client)
    order = await _order(client, owner, product["id"])

    responses = [
        await client.get(f"/api/v1/orders/{order['id']}", headers=other.auth),
        await client.delete(f"/api/v1/orders/{order['id']}", headers=other.auth),
    ]
    missing = [
        await client.get("/api/v1/orders/99999999", headers=other.auth),
        await client.delete("/api/v1/orders/99999999", headers=other.auth),
    ]
    listed = await client.get("/api/v1/orders", headers=other.auth)
    by_owner = await client.get(f"/api/v1/orders/user/{owner.sid}", headers=other.auth)
    graphql = await gql(
        client, "query($i: Int!) { order(id: $i) { id } }", {"i": order["id"]}, token=other.token
    )
    graphql_cancel = await gql(
        client,
        "mutation($i: Int!) { cancelOrder(id: $i) { id } }",
        {"i": order["id"]},
        token=other.token,
    )
    still = await client.get(f"/api/v1/orders/{order['id']}", headers=owner.auth)

    for response, twin in zip(responses, missing, strict=True):
        assert response.status_code == twin.status_code == 404
        assert response.json()["error"]["code"] == twin.json()["error"]["code"] == "NOT_FOUND"
    assert listed.json() == []
    assert by_owner.status_code == 403
    assert graphql["data"] == {"order": None}
    assert error_codes(graphql) == ["NOT_FOUND"]
    assert error_codes(graphql_cancel) == ["NOT_FOUND"]
    assert still.json()["status"] == "placed"
    assert await _stock(client, product["id"]) == 4


async def test_admin_sees_and_cancels_any_order(client: httpx.AsyncClient) -> None:
    token = await admin_token(client)
    product = await make_product(client, token, stock=5)
    user = await make_user(client)
    order = await _order(client, user, product["id"])
    admin = {"Authorization": f"Bearer {token}"}

    by_user = await client.get(f"/api/v1/orders/user/{user.sid}", headers=admin)
    cancelled = await client.delete(f"/api/v1/orders/{order['id']}", headers=admin)
    everyone = await gql(client, "{ orders(first: 100) { edges { node { id } } } }", token=token)

    assert [o["id"] for o in by_user.json()] == [order["id"]]
    assert cancelled.json()["status"] == "cancelled"
    assert everyone["data"]["orders"]["edges"]
    assert await _stock(client, product["id"]) == 5


async def test_user_orders_field_lists_own_orders(client: httpx.AsyncClient) -> None:
    product = await make_product(client, await admin_token(client), stock=5)
    user = await make_user(client)
    first, second = (
        await _order(client, user, product["id"]),
        await _order(client, user, product["id"]),
    )

    body = await gql(
        client,
        "{ me { orders(first: 10) { edges { node { id product { name } } } } } }",
        token=user.token,
    )

    edges = body["data"]["me"]["orders"]["edges"]
    assert [e["node"]["id"] for e in edges] == [first["id"], second["id"]]
    assert {e["node"]["product"]["name"] for e in edges} == {product["name"]}


@pytest.mark.parametrize(
    ("quantity", "code"),
    [
        (0, "BAD_USER_INPUT"),
        (4, "BAD_USER_INPUT"),
        (-1, "BAD_USER_INPUT"),
        (2**31, "BAD_USER_INPUT"),
    ],
)
async def test_bad_quantities_are_refused_and_change_nothing(
    client: httpx.AsyncClient, quantity: int, code: str
) -> None:
    product = await make_product(client, await admin_token(client), stock=5)
    user = await make_user(client)

    rest = await client.post(
        "/api/v1/orders",
        json={"product_id": product["id"], "quantity": quantity},
        headers=user.auth,
    )
    graphql = await gql(client, PLACE, {"p": product["id"], "q": quantity}, token=user.token)

    assert rest.status_code == 400
    assert rest.json()["error"]["code"] == code
    assert error_codes(graphql) == [code]
    assert await _stock(client, product["id"]) == 5
    assert (await client.get("/api/v1/orders", headers=user.auth)).json() == []


@pytest.mark.parametrize("product_id", [99999999, 0, -5])
async def test_unknown_product_is_not_found(client: httpx.AsyncClient, product_id: int) -> None:
    user = await make_user(client)

    rest = await client.post(
        "/api/v1/orders", json={"product_id": product_id, "quantity": 1}, headers=user.auth
    )
    graphql = await gql(client, PLACE, {"p": product_id, "q": 1}, token=user.token)

    assert rest.status_code == 404
    assert error_codes(graphql) == ["NOT_FOUND"]


async def test_out_of_stock_is_409_with_its_own_code(client: httpx.AsyncClient) -> None:
    product = await make_product(client, await admin_token(client), stock=1)
    user = await make_user(client)

    rest = await client.post(
        "/api/v1/orders", json={"product_id": product["id"], "quantity": 2}, headers=user.auth
    )
    graphql = await gql(client, PLACE, {"p": product["id"], "q": 2}, token=user.token)

    assert rest.status_code == 409
    assert rest.json()["error"]["code"] == "OUT_OF_STOCK"
    assert error_codes(graphql) == ["OUT_OF_STOCK"]
    assert await _stock(client, product["id"]) == 1


async def test_orders_need_a_token(client: httpx.AsyncClient) -> None:
    rest = await client.post("/api/v1/orders", json={"product_id": 1, "quantity": 1})
    graphql = await gql(client, PLACE, {"p": 1, "q": 1})

    assert rest.status_code == 401
    assert error_codes(graphql) == ["UNAUTHENTICATED"]
