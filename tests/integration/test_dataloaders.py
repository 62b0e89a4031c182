"""Listing orders with their product and user costs a constant number of gRPC calls."""

from __future__ import annotations

import httpx

from tests.factories import admin_token, gql, grpc_calls, make_product, make_user


async def test_100_orders_with_product_and_user_cost_at_most_3_grpc_calls(
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
    assert sum(calls.values()) <= 3, calls
    assert calls == {"ListOrders": 1, "GetProductsByIds": 1, "GetUsersByIds": 1}
