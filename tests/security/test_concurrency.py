"""Matrix, concurrency and abuse: races and bursts keep every invariant and the service responsive.

Login attempts are counted atomically (a burst checks at most LOGIN_MAX_FAILURES passwords),
Argon2 runs off the event loop (a registration burst does not stall reads), the last unit of
stock is sold once, an order is cancelled once, an email is registered once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from tests.factories import make_product, make_user, user_data
from tests.security.conftest import Actors, assert_safe, stock_of

MAX_LOGIN_FAILURES = 5
PLACE = "mutation($p: Int!) { placeOrder(productId: $p, quantity: 1) { id } }"


async def test_a_burst_of_wrong_logins_checks_at_most_the_allowed_passwords(
    client: httpx.AsyncClient,
) -> None:
    # given a customer; when 20 logins with wrong passwords arrive at once
    user = await make_user(client)
    wrong = {"username": user.username, "password": "not the password"}
    answers = await asyncio.gather(
        *(client.post("/api/v1/users/login", json=wrong) for _ in range(20))
    )

    # then only the allowed number were checked; the rest were throttled before hashing
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * MAX_LOGIN_FAILURES + [429] * (20 - MAX_LOGIN_FAILURES)
    assert all(r.headers.get("retry-after") for r in answers if r.status_code == 429)


async def _reads_per_second(
    client: httpx.AsyncClient, path: str, *, until: Callable[[], bool]
) -> tuple[float, float]:
    """Read `path` back to back until `until()`: (reads per second, slowest read in seconds)."""
    started = time.monotonic()
    slowest, count = 0.0, 0
    while not until():
        sent = time.monotonic()
        assert (await client.get(path)).status_code == 200
        slowest = max(slowest, time.monotonic() - sent)
        count += 1
    return count / (time.monotonic() - started), slowest


async def test_a_registration_burst_does_not_stall_reads(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given the rate of product reads of a quiet service (db_service reads on its event loop)
    path = f"/api/v1/products/{actors.product['id']}"
    quiet_until = time.monotonic() + 0.5
    quiet_rate, _ = await _reads_per_second(
        client, path, until=lambda: time.monotonic() > quiet_until
    )

    # when 8 registrations (an Argon2 hash of ~0.1 s CPU each) arrive at once
    burst = asyncio.gather(
        *(client.post("/api/v1/users/create", json=user_data()) for _ in range(8))
    )
    busy_rate, slowest = await _reads_per_second(client, path, until=burst.done)
    created = await burst

    # then they all succeed while reads keep flowing: hashing runs beside the event loop (with
    # it on the loop, each read would wait out a hash: a few percent of the quiet rate)
    assert [r.status_code for r in created] == [201] * 8
    assert busy_rate > quiet_rate / 10, (busy_rate, quiet_rate)
    assert slowest < 1.0


async def test_the_last_unit_is_sold_once_through_both_apis(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given a product with one unit left and 30 shoppers' requests racing for it
    product = await make_product(client, actors.admin, stock=1)
    shoppers = [actors.alice, actors.bob]

    async def attempt(i: int) -> str:
        user = shoppers[i % 2]
        if i % 3:
            r = await client.post(
                "/api/v1/orders",
                json={"product_id": product["id"], "quantity": 1},
                headers=user.auth,
            )
            assert_safe(r)
            return "ok" if r.status_code == 201 else r.json()["error"]["code"]
        g = await client.post(
            "/graphql", json={"query": PLACE, "variables": {"p": product["id"]}}, headers=user.auth
        )
        assert_safe(g)
        errors = g.json().get("errors")
        return errors[0]["extensions"]["code"] if errors else "ok"

    # when they all arrive at once
    outcomes = await asyncio.gather(*(attempt(i) for i in range(30)))

    # then exactly one order was placed and the stock is 0, never below
    assert outcomes.count("ok") == 1
    assert set(outcomes) == {"ok", "OUT_OF_STOCK"}
    assert await stock_of(client, product["id"]) == 0


async def test_an_order_cancelled_by_owner_and_admin_at_once_restores_stock_once(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given an order of 3 units of a product of stock 10
    product = await make_product(client, actors.admin, stock=10)
    placed = await client.post(
        "/api/v1/orders",
        json={"product_id": product["id"], "quantity": 3},
        headers=actors.alice.auth,
    )
    order_id = placed.json()["id"]

    # when its owner and an admin cancel it together, twice each
    answers = await asyncio.gather(
        *(
            client.delete(f"/api/v1/orders/{order_id}", headers=actors.headers(who))
            for who in ("alice", "admin", "alice", "admin")
        )
    )

    # then one cancel won, the others were told it was already cancelled; stock is whole again
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 409, 409, 409]
    assert await stock_of(client, product["id"]) == 10


async def test_one_email_in_two_cases_registers_once(client: httpx.AsyncClient) -> None:
    # given 10 registrations racing for one address written in different cases
    base = user_data()
    bodies = [user_data(email=base["email"].upper() if i % 2 else base["email"]) for i in range(10)]

    # when they arrive at once
    answers = await asyncio.gather(
        *(client.post("/api/v1/users/create", json=body) for body in bodies)
    )

    # then one account exists; the others are conflicts naming the field
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 9
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {"CONFLICT"}
