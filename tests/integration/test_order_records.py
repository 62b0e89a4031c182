"""The db_service record of a refused placement names its caller, as an accepted one does:
the statement that places an order authenticates its caller too."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import Stack
from tests.factories import admin_token, make_product, make_user
from tests.logtopic import wait_for_records

DB = "db_service"


async def test_a_refused_placement_is_recorded_under_its_callers_sid(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a shopper and a product with nothing left
    product = await make_product(client, await admin_token(client), stock=0)
    shopper = await make_user(client)
    request_id = f"test-{uuid.uuid4().hex}"

    # when the shopper orders it
    answer = await client.post(
        "/api/v1/orders",
        json={"product_id": product["id"], "quantity": 1},
        headers={**shopper.auth, "X-Request-ID": request_id},
    )

    # then db_service's record of the refusal carries the shopper's sid
    groups = await wait_for_records(
        stack.kafka_bootstrap,
        [request_id],
        lambda g: any(r["service"] == DB for r in g[request_id]),
    )
    [record] = [r for r in groups[request_id] if r["service"] == DB]
    assert answer.status_code == 409
    assert (record["operation"], record["outcome"], record["user"]) == (
        "DBService/PlaceOrder",
        "OUT_OF_STOCK",
        shopper.sid,
    )
