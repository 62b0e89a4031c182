"""Stock and idempotency under concurrency: the rules hold with hundreds of clients at once."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.factories import admin_token, error_codes, gql, make_product, make_user

PLACE = """mutation($p: Int!, $q: Int!, $k: String) {
  placeOrder(productId: $p, quantity: $q, idempotencyKey: $k) { id }
}"""


async def _stock(client: httpx.AsyncClient, product_id: int) -> int:
    stock: int = (await client.get(f"/api/v1/products/{product_id}")).json()["stock"]
    return stock


async def _ordered_quantity(client: httpx.AsyncClient, token: str, sid: str) -> int:
    orders = (
        await client.get(
            f"/api/v1/orders/user/{sid}?limit=100", headers={"Authorization": f"Bearer {token}"}
        )
    ).json()
    return sum(o["quantity"] for o in orders if o["status"] == "placed")


async def test_200_concurrent_orders_for_stock_10_never_oversell(
    client: httpx.AsyncClient,
) -> None:
    admin = await admin_token(client)
    product = await make_product(client, admin, stock=10)
    users = [await make_user(client) for _ in range(20)]

    bodies = await asyncio.gather(
        *(
            gql(client, PLACE, {"p": product["id"], "q": 1}, token=users[i % 20].token)
            for i in range(200)
        )
    )

    succeeded = [b for b in bodies if b.get("data") and b["data"]["placeOrder"]]
    refused = [code for b in bodies for code in error_codes(b)]
    ordered = sum([await _ordered_quantity(client, admin, u.sid) for u in users])
    assert len(succeeded) == 10
    assert refused == ["OUT_OF_STOCK"] * 190
    assert await _stock(client, product["id"]) == 0
    assert ordered + await _stock(client, product["id"]) == 10


async def test_two_concurrent_cancels_restore_stock_once(client: httpx.AsyncClient) -> None:
    product = await make_product(client, await admin_token(client), stock=5)
    user = await make_user(client)
    order = (
        await client.post(
            "/api/v1/orders", json={"product_id": product["id"], "quantity": 3}, headers=user.auth
        )
    ).json()

    cancels = await asyncio.gather(
        *(client.delete(f"/api/v1/orders/{order['id']}", headers=user.auth) for _ in range(10))
    )

    assert sorted(r.status_code for r in cancels) == [200] + [409] * 9
    assert await _stock(client, product["id"]) == 5


async def test_cancel_racing_new_orders_keeps_the_invariant(client: httpx.AsyncClient) -> None:
    admin = await admin_token(client)
    product = await make_product(client, admin, stock=6)
    users = [await make_user(client) for _ in range(5)]
    first = (
        await client.post(
            "/api/v1/orders",
            json={"product_id": product["id"], "quantity": 3},
            headers=users[0].auth,
        )
    ).json()

    await asyncio.gather(
        client.delete(f"/api/v1/orders/{first['id']}", headers=users[0].auth),
        *(
            client.post(
                "/api/v1/orders",
                json={"product_id": product["id"], "quantity": 2},
                headers=u.auth,
            )
            for u in users
            for _ in range(3)
        ),
    )

    stock = await _stock(client, product["id"])
    ordered = sum([await _ordered_quantity(client, admin, u.sid) for u in users])
    assert stock >= 0
    assert stock + ordered == 6


async def test_idempotent_retry_creates_one_order(client: httpx.AsyncClient) -> None:
    product = await make_product(client, await admin_token(client), stock=10)
    user = await make_user(client)
    key = uuid.uuid4().hex
    headers = {**user.auth, "Idempotency-Key": key}
    body = {"product_id": product["id"], "quantity": 2}

    first = await client.post("/api/v1/orders", json=body, headers=headers)
    again = await client.post("/api/v1/orders", json=body, headers=headers)
    graphql = await gql(client, PLACE, {"p": product["id"], "q": 2, "k": key}, token=user.token)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert graphql["data"]["placeOrder"]["id"] == first.json()["id"]
    assert await _stock(client, product["id"]) == 8


async def test_concurrent_retries_with_one_key_create_one_order(
    client: httpx.AsyncClient,
) -> None:
    product = await make_product(client, await admin_token(client), stock=10)
    user = await make_user(client)
    key = uuid.uuid4().hex

    responses = await asyncio.gather(
        *(
            client.post(
                "/api/v1/orders",
                json={"product_id": product["id"], "quantity": 1},
                headers={**user.auth, "Idempotency-Key": key},
            )
            for _ in range(30)
        )
    )

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _stock(client, product["id"]) == 9


async def test_key_reuse_with_another_payload_conflicts(client: httpx.AsyncClient) -> None:
    product = await make_product(client, await admin_token(client), stock=10)
    user = await make_user(client)
    headers = {**user.auth, "Idempotency-Key": uuid.uuid4().hex}

    first = await client.post(
        "/api/v1/orders", json={"product_id": product["id"], "quantity": 1}, headers=headers
    )
    other = await client.post(
        "/api/v1/orders", json={"product_id": product["id"], "quantity": 2}, headers=headers
    )

    assert first.status_code == 201
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "CONFLICT"
    assert await _stock(client, product["id"]) == 9


async def test_keys_are_scoped_per_user(client: httpx.AsyncClient) -> None:
    product = await make_product(client, await admin_token(client), stock=10)
    alice, bob = await make_user(client), await make_user(client)
    key = uuid.uuid4().hex

    a = await client.post(
        "/api/v1/orders",
        json={"product_id": product["id"], "quantity": 1},
        headers={**alice.auth, "Idempotency-Key": key},
    )
    b = await client.post(
        "/api/v1/orders",
        json={"product_id": product["id"], "quantity": 1},
        headers={**bob.auth, "Idempotency-Key": key},
    )

    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
