"""Listing orders with their product and user costs one gRPC call: ListOrders includes them."""

from __future__ import annotations

import httpx

from tests.factories import admin_token, gql, grpc_calls, make_product, make_user


async def test_100_orders_with_product_and_user_cost_one_list_orders_call(
    client: httpx.AsyncClient,
) -> None:
    admin = await admin_token(client)
    products = [await make_product(client, admin, stock=200) for _ in range(4)]
    users = [await make_user(client) for _ in range(5)]
    for i in range(100):
        user, product = users[i % 5], products[i % 4]
        placed = await client.post(
            "/api/v1/orders", json={"product_id": product["id"], "quantity": 1}, headers=user.auth
        )
        assert placed.status_code == 201
    query = "{ orders(first: 100) { edges { node { id product { name } user { username } } } } }"

    before = await grpc_calls(client)
    body = await gql(client, query, token=admin)
    after = await grpc_calls(client)

    calls = {m: after[m] - before.get(m, 0.0) for m in after if after[m] != before.get(m, 0.0)}
    edges = body["data"]["orders"]["edges"]
    assert len(edges) == 100
    assert all(e["node"]["product"]["name"] and e["node"]["user"]["username"] for e in edges)
    assert calls == {"ListOrders": 1}


async def test_50_order_page_with_product_and_user_costs_exactly_one_list_orders(
    client: httpx.AsyncClient,
) -> None:
    # given 50 orders of 3 customers
    admin = await admin_token(client)
    product = await make_product(client, admin, stock=100)
    users = [await make_user(client) for _ in range(3)]
    for i in range(50):
        placed = await client.post(
            "/api/v1/orders",
            json={"product_id": product["id"], "quantity": 1},
            headers=users[i % 3].auth,
        )
        assert placed.status_code == 201
    query = (
        "{ orders(first: 50) { edges { node { id quantity totalPrice status createdAt"
        " product { id name price } user { sid username } } } } }"
    )

    # when the admin asks for a page of them with product and user
    before = await grpc_calls(client)
    body = await gql(client, query, token=admin)
    after = await grpc_calls(client)

    # then one ListOrders answered all of it, with no product or user read besides
    calls = {m: after[m] - before.get(m, 0.0) for m in after if after[m] != before.get(m, 0.0)}
    nodes = [e["node"] for e in body["data"]["orders"]["edges"]]
    assert len(nodes) == 50
    assert all(n["product"]["name"] and n["user"]["username"] for n in nodes)
    assert calls == {"ListOrders": 1}


async def test_customer_page_with_user_shows_only_themselves(client: httpx.AsyncClient) -> None:
    # given a customer with orders, and another customer with orders
    admin = await admin_token(client)
    product = await make_product(client, admin, stock=10)
    me, other = await make_user(client), await make_user(client)
    for user in (me, other, me):
        placed = await client.post(
            "/api/v1/orders", json={"product_id": product["id"], "quantity": 1}, headers=user.auth
        )
        assert placed.status_code == 201
    query = "{ orders(first: 100) { edges { node { user { username } product { id } } } } }"

    # when the customer lists their orders with each order's user
    body = await gql(client, query, token=me.token)

    # then every order is theirs and names only them
    names = {e["node"]["user"]["username"] for e in body["data"]["orders"]["edges"]}
    assert names == {me.username}


async def test_the_same_page_of_orders_asked_on_every_row_is_one_call(
    client: httpx.AsyncClient,
) -> None:
    # given a customer with 6 orders
    admin = await admin_token(client)
    product = await make_product(client, admin, stock=10)
    me = await make_user(client)
    for _ in range(6):
        placed = await client.post(
            "/api/v1/orders", json={"product_id": product["id"], "quantity": 1}, headers=me.auth
        )
        assert placed.status_code == 201
    # Every row's user is the customer, so every row asks for the same page of their orders;
    # three aliases ask for the outer page three times.
    page = (
        "me { orders(first: 6) { edges { node { id user {"
        " orders(first: 2) { edges { node { id } } } } } } } }"
    )
    query = "{ a: " + page + " b: " + page + " c: " + page + " }"

    # when the customer sends it
    before = await grpc_calls(client)
    body = await gql(client, query, token=me.token)
    after = await grpc_calls(client)

    # then each distinct page cost one ListOrders (it cost 3 + 18 before), and every row has it
    calls = {m: after[m] - before.get(m, 0.0) for m in after if after[m] != before.get(m, 0.0)}
    assert calls["ListOrders"] == 2
    newest = [e["node"]["id"] for e in body["data"]["a"]["orders"]["edges"]]
    assert len(newest) == 6
    for alias in "abc":
        for edge in body["data"][alias]["orders"]["edges"]:
            inner = [e["node"]["id"] for e in edge["node"]["user"]["orders"]["edges"]]
            assert inner == newest[:2]
