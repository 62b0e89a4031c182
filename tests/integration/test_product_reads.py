"""Concurrent product reads share backend calls, and every request keeps its answer and records."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.conftest import Stack
from tests.factories import admin_token, grpc_calls, make_product
from tests.logtopic import wait_for_records

QUERY = "query($id: Int!) { product(id: $id) { id name stock } }"
MISSING = 2_000_000_000
READS_PER_ROUND = 48


async def _read(client: httpx.AsyncClient, product_id: int, rid: str, rest: bool) -> Any:
    """(HTTP status, the product's name or None) of one read, through REST or GraphQL."""
    headers = {"X-Request-ID": rid}
    if rest:
        response = await client.get(f"/api/v1/products/{product_id}", headers=headers)
        body = response.json()
        if response.status_code == 404:
            assert body["error"]["code"] == "NOT_FOUND"
        return response.status_code, body.get("name")
    response = await client.post(
        "/graphql", json={"query": QUERY, "variables": {"id": product_id}}, headers=headers
    )
    body = response.json()
    product = body["data"]["product"]  # null, with NOT_FOUND, when there is no such product
    codes = [e["extensions"]["code"] for e in body.get("errors", [])]
    assert codes == ([] if product else ["NOT_FOUND"])
    return response.status_code, product and product["name"]


async def test_concurrent_reads_coalesce_and_each_gets_its_own_answer(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    admin = await admin_token(client)
    products = [await make_product(client, admin, stock=5) for _ in range(4)]
    ids = [p["id"] for p in products] + [MISSING]
    expected = {p["id"]: p["name"] for p in products}

    coalesced: list[str] = []
    for _ in range(20):  # until one round of concurrent reads shared a call
        before = await grpc_calls(client)
        rids = [f"test-{uuid.uuid4().hex}" for _ in range(READS_PER_ROUND)]
        wanted = [ids[i % len(ids)] for i in range(READS_PER_ROUND)]
        pairs = enumerate(zip(wanted, rids, strict=True))
        answers = await asyncio.gather(*(_read(client, p, r, i % 2 == 0) for i, (p, r) in pairs))
        after = await grpc_calls(client)
        for pid, answer in zip(wanted, answers, strict=True):
            if pid == MISSING:
                assert answer in {(404, None), (200, None)}  # REST 404; GraphQL null + NOT_FOUND
            else:
                assert answer == (200, expected[pid])
        calls = {m: after.get(m, 0) - before.get(m, 0) for m in ("GetProduct", "GetProductsByIds")}
        assert sum(calls.values()) <= READS_PER_ROUND
        if calls["GetProductsByIds"] and sum(calls.values()) < READS_PER_ROUND:
            coalesced = rids
            break
    assert coalesced, "48 concurrent reads never shared a backend call in 20 rounds"

    # Every request still has db_service's record of the call that answered it.
    reads = {"DBService/GetProduct", "DBService/GetProductsByIds"}
    groups = await wait_for_records(
        stack.kafka_bootstrap,
        coalesced,
        lambda g: all(
            any(r["service"] == "db_service" and r["operation"] in reads for r in g[rid])
            for rid in coalesced
        ),
    )
    shared = [
        rid
        for rid in coalesced
        if any(r["operation"] == "DBService/GetProductsByIds" for r in groups[rid])
    ]
    assert len(shared) >= 2
