"""The log outbox: each change that moves money or identity has one `event` record in
log-channel, written in the change's transaction (none for a change that did not commit), beside
the RPC record of the same call, and relayed once even with two db_service replicas."""

from __future__ import annotations

import asyncio
import collections
import re
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
import httpx

from scripts.infra import EmbeddedPostgres
from tests.conftest import ROOT, Stack
from tests.factories import admin_token, make_product, make_user, user_data
from tests.logtopic import read_all, wait_for_records
from tests.ownstack import own_services

PLACE = "mutation($p: Int!) { placeOrder(productId: $p, quantity: 2) { id } }"
PLACED = re.compile(r"^Order (\d+) placed")


def _rid(name: str) -> str:
    return f"outbox-{name}-{uuid.uuid4().hex}"


def _events(records: list[dict[str, Any]]) -> list[str]:
    return sorted(r["operation"] for r in records if r["kind"] == "event")


async def test_each_change_of_money_or_identity_has_its_event_record(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer, an admin and a product
    admin = {"Authorization": f"Bearer {await admin_token(client)}"}
    product = await make_product(client, admin["Authorization"].split()[1], stock=5)
    data = user_data()
    rid = {n: _rid(n) for n in ("register", "order", "cancel", "password", "deactivate")}

    # when the customer registers and orders, the order is cancelled, and an admin resets the
    # customer's password and deactivates the account
    await client.post("/api/v1/users/create", json=data, headers={"X-Request-ID": rid["register"]})
    token = (
        await client.post(
            "/api/v1/users/login", json={"username": data["username"], "password": data["password"]}
        )
    ).json()["token"]
    placed = await client.post(
        "/graphql",
        json={"query": PLACE, "variables": {"p": product["id"]}},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": rid["order"]},
    )
    order_id = placed.json()["data"]["placeOrder"]["id"]
    await client.delete(
        f"/api/v1/orders/{order_id}", headers={**admin, "X-Request-ID": rid["cancel"]}
    )
    await client.put(
        f"/api/v1/users/{data['sid']}",
        json={"password": "a brand new password"},
        headers={**admin, "X-Request-ID": rid["password"]},
    )
    await client.delete(
        f"/api/v1/users/{data['sid']}", headers={**admin, "X-Request-ID": rid["deactivate"]}
    )
    expected = {
        rid["register"]: ["User.registered"],
        rid["order"]: ["Order.placed"],
        rid["cancel"]: ["Order.cancelled"],
        rid["password"]: ["User.passwordChanged"],
        rid["deactivate"]: ["User.deactivated"],
    }

    # then each call has exactly its event record, beside its RPC record, both from db_service
    groups = await wait_for_records(
        stack.kafka_bootstrap,
        expected,
        # The RPC record travels apart (the service's shipper), so wait for both.
        lambda g: all(
            _events(g[r]) == ops and any(x["kind"] == "rpc" for x in g[r])
            for r, ops in expected.items()
        ),
    )
    for request_id, records in groups.items():
        kinds = collections.Counter((r["service"], r["kind"]) for r in records)
        assert kinds[("db_service", "event")] == 1, request_id
        assert kinds[("db_service", "rpc")] >= 1, request_id
    (order,) = (r for r in groups[rid["order"]] if r["kind"] == "event")
    assert order["message"] == f"Order {order_id} placed: 2 x product {product['id']}, total 25.00"
    assert order["user"] == data["sid"]
    (registered,) = (r for r in groups[rid["register"]] if r["kind"] == "event")
    assert registered["message"] == f"User '{data['username']}' is created (customer)"
    assert data["password"] not in str(groups)


async def test_a_change_that_does_not_commit_has_no_event_record(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a product with one item left and a taken username
    admin = await admin_token(client)
    product = await make_product(client, admin, stock=1)
    taken = await make_user(client)
    shopper = await make_user(client)
    refused, witness = _rid("refused"), _rid("witness")

    # when an order for more than the stock and a duplicate registration are refused, and an
    # order that commits follows them
    out_of_stock = await client.post(
        "/graphql",
        json={"query": PLACE, "variables": {"p": product["id"]}},
        headers={**shopper.auth, "X-Request-ID": refused},
    )
    duplicate = await client.post(
        "/api/v1/users/create",
        json=user_data(username=taken.username),
        headers={"X-Request-ID": refused},
    )
    other = await make_product(client, admin, stock=5)
    await client.post(
        "/graphql",
        json={"query": PLACE, "variables": {"p": other["id"]}},
        headers={**shopper.auth, "X-Request-ID": witness},
    )

    # then, once the committed order's event is there, the refused calls have none
    groups = await wait_for_records(
        stack.kafka_bootstrap,
        [refused, witness],
        lambda g: _events(g[witness]) == ["Order.placed"] and len(g[refused]) >= 4,
    )
    assert out_of_stock.json()["errors"][0]["extensions"]["code"] == "OUT_OF_STOCK"
    assert duplicate.status_code == 409
    assert _events(groups[refused]) == []


async def test_a_role_change_from_the_command_line_is_relayed_by_the_running_service(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer
    user = await make_user(client)

    # when the admin command promotes them, explicitly (it writes the outbox; it does not ship)
    made = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "db_service", "create-admin", "--sid", user.sid,
         "--username", user.username, "--password", "an admin password 1", "--promote"],
        env={**stack.env, "DATABASE_URL": stack.database_url},
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr

    # then the running db_service relays its record
    async def role_changes() -> list[dict[str, Any]]:
        return [
            r
            for r in await read_all(stack.kafka_bootstrap)
            if r["operation"] == "User.roleChanged" and user.username in r.get("message", "")
        ]

    for _ in range(150):
        if found := await role_changes():
            break
        await asyncio.sleep(0.2)  # the polling interval of a wait bounded by the loop
    assert [(r["user"], r["message"]) for r in found] == [
        ("system", f"Role of user '{user.username}' changed from customer to admin")
    ]


async def test_two_replicas_relay_each_record_once(client: httpx.AsyncClient, stack: Stack) -> None:
    # given a second db_service on the same database (both relay the same outbox)
    with own_services(stack, ("db_service",)):
        admin = await admin_token(client)
        product = await make_product(client, admin, stock=100)
        shopper = await make_user(client)

        # when orders are placed
        async def place() -> int:
            r = await client.post(
                "/graphql",
                json={"query": PLACE, "variables": {"p": product["id"]}},
                headers=shopper.auth,
            )
            return int(r.json()["data"]["placeOrder"]["id"])

        ids = set(await asyncio.gather(*(place() for _ in range(20))))

        # then each order has one record in the topic, not one per replica
        async def relayed() -> collections.Counter[int]:
            return collections.Counter(
                int(m[1])
                for r in await read_all(stack.kafka_bootstrap)
                if r["operation"] == "Order.placed"
                and (m := PLACED.match(r.get("message", "")))
                and int(m[1]) in ids
            )

        for _ in range(150):
            counts = await relayed()
            if set(counts) == ids:
                break
            await asyncio.sleep(0.2)  # the polling interval of a wait bounded by the loop
    assert set(counts) == ids
    assert set(counts.values()) == {1}


async def test_with_shipping_off_no_outbox_row_is_written(
    stack: Stack, postgres: EmbeddedPostgres
) -> None:
    # given a db_service and gateway of their own with LOG_SHIPPING=false (which starts no relay)
    database = postgres.ensure_database(f"noship_{uuid.uuid4().hex[:8]}")
    with own_services(
        stack, ("db_service", "gateway"), LOG_SHIPPING="false", DATABASE_URL=database
    ) as own:
        # when a customer registers and changes their password
        async with httpx.AsyncClient(base_url=own.gateway_url, timeout=30) as c:
            user = await make_user(c)
            changed = await c.put(
                f"/api/v1/users/{user.sid}",
                json={"password": "a new password 1", "current_password": user.password},
                headers={"Authorization": f"Bearer {user.token}"},
            )
            assert changed.status_code == 200, changed.text

    # then the changes committed and the outbox stayed empty: nothing would ever empty it
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE sid = $1", user.sid) == 1
        assert await conn.fetchval("SELECT count(*) FROM log_outbox") == 0
    finally:
        await conn.close()
