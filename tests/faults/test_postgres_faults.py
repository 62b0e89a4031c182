"""Matrix, backend faults (PostgreSQL): stopped or frozen under a running db_service.

While PostgreSQL is away every request is UNAVAILABLE (503), never INTERNAL and never a wrong
answer such as a 401 for a good password; db_service's health is NOT_SERVING and /readyz says
so; when PostgreSQL returns, everything recovers by itself, with nothing changed meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.faults.conftest import GRPC_TIMEOUT_S, REQUESTS, Faulty, send


@pytest.fixture(scope="module")
def outage(faulty: Faulty) -> Iterator[Faulty]:
    """PostgreSQL stopped (fast shutdown) under the faulty stack's db_service."""
    faulty.postgres.stop()
    try:
        yield faulty
    finally:
        faulty.restore()


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "auth"), REQUESTS, ids=[r[0] for r in REQUESTS]
)
async def test_postgres_down_is_503_unavailable(
    outage: Faulty,
    case: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    auth: bool,
) -> None:
    # given PostgreSQL down; when a request needs it (a real shopper's token where one is needed)
    if path == "/api/v1/users/login":
        body = {"username": outage.shopper.username, "password": outage.shopper.password}
    response, code, took = await send(
        outage.url, method, path, body, outage.shopper.token if auth else None
    )

    # then it is UNAVAILABLE (503), not INTERNAL and not a wrong answer, within the deadline
    assert code == "UNAVAILABLE", response.text
    assert response.status_code == (200 if path == "/graphql" else 503)
    assert took < GRPC_TIMEOUT_S + 1
    assert "Traceback" not in response.text


def test_db_service_health_is_not_serving_while_postgres_is_down(outage: Faulty) -> None:
    # given PostgreSQL down; then db_service reports itself NOT_SERVING (within its probe period)
    outage.wait_db_status("NOT_SERVING", timeout=5)


async def test_readiness_names_postgres_down_as_db_service_not_serving(outage: Faulty) -> None:
    # given PostgreSQL down; when readiness is asked
    outage.wait_db_status("NOT_SERVING", timeout=5)
    async with httpx.AsyncClient(base_url=outage.url, timeout=10) as c:
        ready = await c.get("/readyz")

    # then the gateway is not ready, and says which dependency is not serving
    assert ready.status_code == 503
    assert ready.json()["dependencies"]["db_service"] == "NOT_SERVING"


async def test_everything_recovers_when_postgres_returns(outage: Faulty) -> None:
    # given orders attempted while PostgreSQL was down (all refused)
    order = {"product_id": outage.product_id, "quantity": 1}
    async with httpx.AsyncClient(base_url=outage.url, timeout=30) as c:
        refused = await c.post("/api/v1/orders", json=order, headers=outage.shopper.auth)

        # when PostgreSQL comes back (db_service is not restarted)
        outage.postgres.start()
        outage.wait_db_status("SERVING")
        ready = await c.get("/readyz")
        stock = (await c.get(f"/api/v1/products/{outage.product_id}")).json()["stock"]
        placed = await c.post("/api/v1/orders", json=order, headers=outage.shopper.auth)
        stock_after = (await c.get(f"/api/v1/products/{outage.product_id}")).json()["stock"]

    # then the service is ready again, the refused order left no trace, and ordering works
    assert refused.status_code == 503
    assert ready.status_code == 200
    assert placed.status_code == 201
    assert stock_after == stock - 1


@pytest.fixture
def frozen(faulty: Faulty) -> Iterator[Faulty]:
    """PostgreSQL frozen (SIGSTOP to all its processes): connections open, nothing answers."""
    faulty.freeze_postgres()
    try:
        yield faulty
    finally:
        faulty.restore()


READS = [r for r in REQUESTS if r[1] == "GET"]


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "auth"), READS, ids=[r[0] for r in READS]
)
async def test_a_frozen_postgres_fails_requests_in_time(
    frozen: Faulty, case: str, method: str, path: str, body: dict[str, Any] | None, auth: bool
) -> None:
    # given PostgreSQL frozen; when a read needs it
    response, code, took = await send(frozen.url, method, path, body, None)

    # then it fails as unavailable or too slow, by the gateway's deadline, never as a bug
    assert (response.status_code, code) in {(503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")}
    assert took < GRPC_TIMEOUT_S + 1


def test_a_frozen_postgres_turns_health_not_serving_and_back(frozen: Faulty) -> None:
    # given PostgreSQL frozen; then db_service's probe times out and health follows
    frozen.wait_db_status("NOT_SERVING", timeout=5)

    # when it thaws; then health comes back by itself
    frozen.thaw_postgres()
    frozen.wait_db_status("SERVING", timeout=10)
