"""Stock and idempotency under concurrency: the rules hold with hundreds of clients at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from decimal import Decimal

import asyncpg
import httpx

from tests.conftest import ADMIN, Stack
from tests.factories import Account, admin_token, error_codes, gql, make_product, make_user
from tests.storm import Answer, Storm, order_events, stock_audit

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


# The refusals README's error table names for each storm request, by its op. Every customer
# stays under ORDER_RATE_LIMIT (at most 26 attempts each), so RATE_LIMITED is none of them; a
# customer whose token was revoked may also get UNAUTHENTICATED, and nothing else may come.
STORM_REFUSALS: dict[str, set[str]] = {
    "place": {"OUT_OF_STOCK", "CONFLICT"},
    "cancel": {"FAILED_PRECONDITION"},
    "admin": set(),
    "account": set(),
}
REST_STATUS = {
    "OUT_OF_STOCK": 409,
    "CONFLICT": 409,
    "FAILED_PRECONDITION": 409,
    "UNAUTHENTICATED": 401,
}
APIS = ("rest", "graphql")


def _refused_as_readme_says(answer: Answer, revoked: dict[str, float]) -> bool:
    allowed = STORM_REFUSALS[answer.op]
    if answer.sid in revoked and answer.op != "admin":
        allowed = allowed | {"UNAUTHENTICATED"}
    if answer.code not in allowed:
        return False
    return answer.api == "graphql" or answer.status == REST_STATUS[answer.code]


async def test_a_storm_of_mixed_requests_keeps_every_money_and_stock_rule(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given three products (one scarce), eight customers with an order each, an audit of stock
    admin = Account(ADMIN["sid"], ADMIN["username"], "", ADMIN["password"])
    admin.token = await admin_token(client)
    storm = Storm(client, admin)
    start = {"10.00": 60, "5.00": 30, "2.50": 6}
    products = [await make_product(client, admin.token, stock=s, price=p) for p, s in start.items()]
    ids = [p["id"] for p in products]
    users = [
        u for _ in range(2) for u in await asyncio.gather(*(make_user(client) for _ in range(4)))
    ]
    earlier = [await storm.place(u, ids[0], 2, None, "rest") for u in users]
    assert [a.code for a in earlier] == ["ok"] * len(users)
    keys = {u.sid: [f"storm-{uuid.uuid4().hex}" for _ in range(2)] for u in users}
    storm.halfway_at = len(storm.answers) + 100

    async def place_then_cancel_twice(user: Account, n: int) -> None:
        placed = await storm.place(user, ids[n % 3], 1, None, APIS[n % 2])
        if placed.code == "ok":
            await asyncio.gather(
                storm.cancel(user, placed.value["id"], "rest"),
                storm.cancel(user if n % 2 else admin, placed.value["id"], "graphql"),
            )

    async def revoke_then_retry(victim: Account, *, deactivate: bool) -> None:
        # then tries its old token every way: a new order, a replay, a new key, a cancel
        await storm.revoke(victim, deactivate=deactivate)
        n = users.index(victim)
        await asyncio.gather(
            storm.place(victim, ids[0], 1, None, "rest"),
            storm.place(victim, ids[n % 2], 1, keys[victim.sid][0], "graphql"),
            storm.place(victim, ids[1], 3, f"storm-{uuid.uuid4().hex}", "rest"),
            storm.cancel(victim, earlier[n].value["id"], "graphql"),
        )

    jobs = [
        # plain orders: fifteen per customer, of each product, in each quantity, through both APIs
        storm.place(users[i % 8], ids[i % 3], 1 + i // 8 % 3, None, APIS[i % 2])
        for i in range(120)
    ]
    for n, user in enumerate(users):
        for j, key in enumerate(keys[user.sid]):
            # a key sent three times with one body (once with spaces around it: the same key)
            # and once with another
            jobs += [
                storm.place(user, ids[(n + j) % 2], 1, key, "rest"),
                storm.place(user, ids[(n + j) % 2], 1, key, "graphql"),
                storm.place(user, ids[(n + j) % 2], 1, f"  {key} ", "graphql"),
                storm.place(user, ids[(n + j) % 2], 2, key, APIS[j]),
            ]
        jobs += [place_then_cancel_twice(user, n), place_then_cancel_twice(user, n + 1)]
        # the earlier order: cancelled twice at once, by the admin, or by its owner and the admin
        jobs += [
            storm.cancel(admin if n % 2 else user, earlier[n].value["id"], "rest"),
            storm.cancel(admin, earlier[n].value["id"], "graphql"),
        ]
    jobs += [
        storm.change_product(ids[0], {"stock": 35}, "rest"),
        storm.change_product(ids[0], {"price": "11.50", "stock": 80}, "graphql"),
        storm.change_product(ids[0], {"price": "9.75"}, "rest"),
        storm.change_product(ids[1], {"price": "6.25"}, "graphql"),
        storm.change_product(ids[1], {"price": "4.10", "stock": 20}, "rest"),
        storm.change_product(ids[2], {"stock": 0}, "graphql"),
        storm.change_product(ids[2], {"stock": 9}, "rest"),
        storm.change_product(ids[2], {"price": "3.00", "stock": 4}, "graphql"),
        revoke_then_retry(users[0], deactivate=True),
        revoke_then_retry(users[1], deactivate=False),
    ]

    # when all of it runs at once (halfway through, one buyer is deactivated and another
    # changes password)
    async with stock_audit(stack.database_url, ids) as audit:
        await asyncio.gather(*jobs)
        conn = await asyncpg.connect(stack.database_url)
        try:
            changes = await conn.fetch(f"SELECT * FROM {audit}")  # noqa: S608 - our name
            stock = dict(await conn.fetch("SELECT id, stock FROM products WHERE id = ANY($1)", ids))
            rows = await conn.fetch(
                "SELECT o.*, u.sid FROM orders o JOIN users u ON u.id = o.user_id"
                " WHERE o.product_id = ANY($1)",
                ids,
            )
        finally:
            await conn.close()
    orders = {o["id"]: o for o in rows}
    answers = storm.answers

    # then no answer is a 5xx or INTERNAL, and each refusal is one README names for its case
    assert set(storm.revoked) == {users[0].sid, users[1].sid}
    assert [
        a for a in answers if a.code != "ok" and not _refused_as_readme_says(a, storm.revoked)
    ] == []

    # and each order answered is the order kept, and no order was kept unanswered
    placed = [a for a in answers if a.op == "place" and a.code == "ok"]
    assert {a.value["id"] for a in placed} == set(orders)
    for a in placed:
        order = orders[a.value["id"]]
        answered = (a.sid, Decimal(a.value["unit_price"]), Decimal(a.value["total_price"]))
        assert answered == (order["sid"], order["unit_price"], order["total_price"])

    # and each order costs its price at placement times its quantity, a price the product had
    prices = {i: {Decimal(p["price"])} for i, p in zip(ids, products, strict=True)}
    for a in answers:
        if a.op == "admin" and "price" in a.value:
            prices[a.asked["id"]].add(Decimal(a.value["price"]))
    assert all(o["total_price"] == o["unit_price"] * o["quantity"] for o in rows)
    assert all(o["unit_price"] in prices[o["product_id"]] for o in rows)

    # and one order per (customer, key): its body's requests answer it, another body conflicts
    per_key = Counter((o["sid"], o["idempotency_key"]) for o in rows if o["idempotency_key"])
    assert set(per_key.values()) == {1}
    by_key = {(o["sid"], o["idempotency_key"]): o for o in rows if o["idempotency_key"]}
    for a in answers:
        if a.op == "place" and a.asked["key"] and a.code in ("ok", "CONFLICT"):
            order = by_key[(a.sid, a.asked["key"])]
            same = (order["product_id"], order["quantity"]) == (
                a.asked["product"],
                a.asked["quantity"],
            )
            assert (a.code, a.value.get("id")) == (
                ("ok", order["id"]) if same else ("CONFLICT", None)
            )

    # and each cancelled order was cancelled by exactly one request, the others by none
    cancels = Counter(a.asked["id"] for a in answers if a.op == "cancel" and a.code == "ok")
    assert {i: cancels[i] for i in orders} == {
        i: int(o["status"] == "cancelled") for i, o in orders.items()
    }

    # and stock never went below zero, and ends at its start plus the admin's changes (each to
    # the stock its answer gave) minus what the live orders hold: each cancel gave back once
    for product_id, initial in zip(ids, start.values(), strict=True):
        audited = [c for c in changes if c["product_id"] == product_id]
        assert {c["slogan"]: c["new_stock"] for c in audited if c["by_admin"]} == {
            a.value["slogan"]: a.value["stock"]
            for a in answers
            if a.op == "admin" and a.asked.get("id") == product_id
        }
        admin_changes = sum(c["new_stock"] - c["old_stock"] for c in audited if c["by_admin"])
        live = sum(
            o["quantity"] for o in rows if o["product_id"] == product_id and o["status"] == "placed"
        )
        assert min([stock[product_id], *(c["new_stock"] for c in audited)]) >= 0
        assert stock[product_id] == initial + admin_changes - live

    # and no token issued before its owner's revocation was answered placed or cancelled
    # anything once it was: every request sent after that answer was refused
    for sid, answered_at in storm.revoked.items():
        later = [a for a in answers if a.sid == sid and a.started > answered_at]
        assert len(later) >= 4
        assert {a.code for a in later} == {"UNAUTHENTICATED"}

    # and log-channel has one Order.placed record per order, one Order.cancelled per cancel
    expected = Counter({(i, "placed"): 1 for i in orders})
    expected.update({(i, "cancelled"): 1 for i, o in orders.items() if o["status"] == "cancelled"})
    deadline = time.monotonic() + 20
    while (events := await order_events(stack.kafka_bootstrap, ids)).keys() < expected.keys():
        assert time.monotonic() < deadline, f"missing: {expected.keys() - events.keys()}"
        await asyncio.sleep(0.2)
    assert events == expected
