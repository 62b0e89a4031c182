"""Matrix, authorization: every route of both APIs, called by someone who may not, changes nothing.

Actors: anonymous, bob (a customer who is not the owner), admin; the target is alice's account
and alice's order. Another user's order is indistinguishable from a missing one (404 /
NOT_FOUND / null), another user's account is FORBIDDEN.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.factories import change_password, make_user
from tests.security.conftest import Actors, assert_safe, graphql_codes, unchanged

NEW_PRODUCT = {"name": "Intruder", "category": "Hacks", "price": "1.00", "stock": 1}

# (who, method, path, JSON body, expected status); {alice}, {order}, {product} are filled in
REST: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
    ("anonymous", "GET", "/api/v1/users", None, 401),
    ("anonymous", "GET", "/api/v1/users/{alice}", None, 401),
    ("anonymous", "PUT", "/api/v1/users/{alice}", {"username": "taken_over"}, 401),
    ("anonymous", "DELETE", "/api/v1/users/{alice}", None, 401),
    ("anonymous", "POST", "/api/v1/products", NEW_PRODUCT, 401),
    ("anonymous", "PUT", "/api/v1/products/{product}", {"stock": 0}, 401),
    ("anonymous", "POST", "/api/v1/orders", {"product_id": 0, "quantity": 1}, 401),
    ("anonymous", "GET", "/api/v1/orders", None, 401),
    ("anonymous", "GET", "/api/v1/orders/{order}", None, 401),
    ("anonymous", "GET", "/api/v1/orders/user/{alice}", None, 401),
    ("anonymous", "DELETE", "/api/v1/orders/{order}", None, 401),
    ("bob", "GET", "/api/v1/users", None, 403),
    ("bob", "GET", "/api/v1/users/{alice}", None, 403),
    ("bob", "PUT", "/api/v1/users/{alice}", {"email": "bob@evil.example"}, 403),
    ("bob", "PUT", "/api/v1/users/{alice}", {"password": "bob-owns-you-now"}, 403),
    ("bob", "DELETE", "/api/v1/users/{alice}", None, 403),
    ("bob", "POST", "/api/v1/products", NEW_PRODUCT, 403),
    ("bob", "PUT", "/api/v1/products/{product}", {"price": "0.01"}, 403),
    ("bob", "GET", "/api/v1/orders/{order}", None, 404),
    ("bob", "GET", "/api/v1/orders/user/{alice}", None, 403),
    ("bob", "DELETE", "/api/v1/orders/{order}", None, 404),
    ("anonymous", "GET", "/api/v1", None, 200),
    ("anonymous", "GET", "/api/v1/products", None, 200),
    ("anonymous", "GET", "/api/v1/products/{product}", None, 200),
    ("admin", "GET", "/api/v1/users/{alice}", None, 200),
    ("admin", "GET", "/api/v1/orders/{order}", None, 200),
    ("admin", "GET", "/api/v1/orders/user/{alice}", None, 200),
]


def _fill(path: str, actors: Actors) -> str:
    return path.format(
        alice=actors.alice.sid, order=actors.alice_order["id"], product=actors.product["id"]
    )


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status"),
    REST,
    ids=[f"{who} {method} {path} -> {status}" for who, method, path, _, status in REST],
)
async def test_rest_routes_refuse_whoever_may_not(
    client: httpx.AsyncClient,
    stack: Stack,
    actors: Actors,
    who: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    # given a route called by `who`; when it is called
    async with unchanged(stack):
        response = await client.request(
            method, _fill(path, actors), json=body, headers=actors.headers(who)
        )

    # then it answers the expected status, in the error shape when refused, changing nothing
    assert_safe(response, secrets=[actors.alice.email] if status >= 400 else [])
    assert response.status_code == status, response.text
    if status == 401:
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    if status == 403:
        assert response.json()["error"]["code"] == "FORBIDDEN"
    if status == 404:
        assert response.json()["error"]["code"] == "NOT_FOUND"


ME = "{ me { sid } }"
USER = "query($s: String!) { user(sid: $s) { sid email } }"
USERS = "{ users { edges { node { sid } } } }"
ORDER = "query($o: Int!) { order(id: $o) { id } }"
ORDERS = "query($s: String) { orders(userSid: $s) { edges { node { id } } } }"
UPDATE_USER = 'mutation($s: String!) { updateUser(sid: $s, input: {username: "pwned"}) { sid } }'
DEACTIVATE = "mutation($s: String!) { deactivateUser(sid: $s) { sid } }"
CREATE_PRODUCT = (
    'mutation { createProduct(input: {name: "Intruder", category: "Hacks", price: "1.00"}) { id } }'
)
UPDATE_PRODUCT = "mutation($p: Int!) { updateProduct(id: $p, input: {stock: 0}) { id } }"
PLACE = "mutation($p: Int!) { placeOrder(productId: $p, quantity: 1) { id } }"
CANCEL = "mutation($o: Int!) { cancelOrder(id: $o) { id } }"

# (who, document, expected code; someone else's order is NOT_FOUND, as a missing one is)
GRAPHQL: list[tuple[str, str, str]] = [
    ("anonymous", ME, "UNAUTHENTICATED"),
    ("anonymous", USER, "UNAUTHENTICATED"),
    ("anonymous", USERS, "UNAUTHENTICATED"),
    ("anonymous", ORDER, "UNAUTHENTICATED"),
    ("anonymous", ORDERS, "UNAUTHENTICATED"),
    ("anonymous", UPDATE_USER, "UNAUTHENTICATED"),
    ("anonymous", DEACTIVATE, "UNAUTHENTICATED"),
    ("anonymous", CREATE_PRODUCT, "UNAUTHENTICATED"),
    ("anonymous", UPDATE_PRODUCT, "UNAUTHENTICATED"),
    ("anonymous", PLACE, "UNAUTHENTICATED"),
    ("anonymous", CANCEL, "UNAUTHENTICATED"),
    ("bob", USER, "FORBIDDEN"),
    ("bob", USERS, "FORBIDDEN"),
    ("bob", ORDERS, "FORBIDDEN"),
    ("bob", UPDATE_USER, "FORBIDDEN"),
    ("bob", DEACTIVATE, "FORBIDDEN"),
    ("bob", CREATE_PRODUCT, "FORBIDDEN"),
    ("bob", UPDATE_PRODUCT, "FORBIDDEN"),
    ("bob", CANCEL, "NOT_FOUND"),
    ("bob", ORDER, "NOT_FOUND"),
]


def _operation(document: str) -> str:
    return document.split("{", 2)[1].split("(")[0].split("{")[0].strip()


@pytest.mark.parametrize(
    ("who", "document", "code"),
    GRAPHQL,
    ids=[f"{who} {_operation(d)} -> {code}" for who, d, code in GRAPHQL],
)
async def test_graphql_operations_refuse_whoever_may_not(
    client: httpx.AsyncClient,
    stack: Stack,
    actors: Actors,
    who: str,
    document: str,
    code: str,
) -> None:
    # given an operation on alice's account, alice's order or the catalog, by `who`
    variables = {
        "s": actors.alice.sid,
        "o": actors.alice_order["id"],
        "p": actors.product["id"],
    }
    used = {name: value for name, value in variables.items() if f"${name}" in document}

    # when it is sent
    async with unchanged(stack):
        response = await client.post(
            "/graphql",
            json={"query": document, "variables": used},
            headers=actors.headers(who),
        )

    # then it is refused with the code (someone else's order answers as a missing one)
    assert_safe(response, secrets=[actors.alice.email])
    assert response.status_code == 200
    assert graphql_codes(response) == [code]
    assert not any((response.json().get("data") or {}).values())


async def test_a_customer_lists_only_their_own_orders(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given orders of alice and bob; when bob lists orders through both APIs
    rest = await client.get("/api/v1/orders", headers=actors.headers("bob"))
    graphql = await client.post(
        "/graphql",
        json={"query": "{ orders(first: 100) { edges { node { id } } } }"},
        headers=actors.headers("bob"),
    )

    # then he sees his and never hers
    rest_ids = {o["id"] for o in rest.json()}
    graphql_ids = {e["node"]["id"] for e in graphql.json()["data"]["orders"]["edges"]}
    assert actors.bob_order["id"] in rest_ids
    assert rest_ids == graphql_ids
    assert actors.alice_order["id"] not in rest_ids


@pytest.mark.parametrize(("who", "code"), [("admin", "NOT_FOUND"), ("bob", "FORBIDDEN")])
async def test_orders_of_an_empty_user_sid_are_nobodys(
    client: httpx.AsyncClient, actors: Actors, who: str, code: str
) -> None:
    # given an empty owner filter, which db_service cannot tell from none (proto3's "")
    # when it is asked for the orders of the user whose sid is ""
    response = await client.post(
        "/graphql", json={"query": ORDERS, "variables": {"s": ""}}, headers=actors.headers(who)
    )

    # then it is answered as any sid that is not the caller's, as user(sid: "") is: nobody's
    # orders, where the filter used to be dropped (an admin got every user's orders)
    assert graphql_codes(response) == [code]
    assert response.json()["data"] is None


async def test_orders_of_an_empty_user_sid_with_a_revoked_token_are_401(
    client: httpx.AsyncClient,
) -> None:
    # given a customer whose token a password change has revoked
    user = await make_user(client)
    revoked = user.auth
    await change_password(client, user)

    # when the revoked token asks for the orders of the user whose sid is ""
    response = await client.post(
        "/graphql", json={"query": ORDERS, "variables": {"s": ""}}, headers=revoked
    )

    # then it is UNAUTHENTICATED, as a revoked token is everywhere, not FORBIDDEN by its claims
    assert graphql_codes(response) == ["UNAUTHENTICATED"]
    assert response.json()["data"] is None
