"""Matrix, backend faults (db_service): down → 503 / UNAVAILABLE, hung → 504 / DEADLINE_EXCEEDED,
each within the gateway's deadline, /readyz saying so; reads retried, writes only with a key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest

from gateway.backends import CHANNEL_OPTIONS, KEYED_WRITE_ATTEMPTS, READ_ATTEMPTS, DBClient
from gateway.errors import ApiError
from protos import db_service_pb2 as pb
from scripts.processes import free_port
from tests.conftest import FAKE_SERVER_OPTIONS, Stack
from tests.faults.conftest import GRPC_TIMEOUT_S, REQUESTS, Faulty, customer_token, send
from tests.ownstack import OwnStack, own_services


@pytest.fixture(scope="module")
def orphan(stack: Stack) -> Iterator[OwnStack]:
    """A gateway whose db_service address has nothing listening."""
    with own_services(
        stack,
        ("gateway",),
        DB_SERVICE_ADDR=f"127.0.0.1:{free_port()}",
        GRPC_TIMEOUT_S=str(GRPC_TIMEOUT_S),
        READINESS_TIMEOUT_S="0.5",
    ) as own:
        yield own


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "auth"), REQUESTS, ids=[r[0] for r in REQUESTS]
)
async def test_db_service_down_is_503_within_the_deadline(
    orphan: OwnStack,
    case: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    auth: bool,
) -> None:
    # given a gateway whose db_service is down; when a request needs it
    response, code, took = await send(
        orphan.gateway_url, method, path, body, customer_token() if auth else None
    )

    # then it is UNAVAILABLE (503 in REST), well within the deadline
    assert code == "UNAVAILABLE"
    assert response.status_code == (200 if path == "/graphql" else 503)
    assert took < GRPC_TIMEOUT_S + 1
    assert "Traceback" not in response.text


async def test_readiness_names_a_down_db_service(orphan: OwnStack) -> None:
    # given db_service down; when readiness is asked
    async with httpx.AsyncClient(base_url=orphan.gateway_url, timeout=10) as c:
        ready = await c.get("/readyz")

    # then it is 503, naming the unreachable dependency
    assert ready.status_code == 503
    assert ready.json()["dependencies"]["db_service"] == "UNREACHABLE"


@pytest.fixture
def hung(faulty: Faulty) -> Iterator[Faulty]:
    """db_service frozen (SIGSTOP): connections open, no answers."""
    faulty.own.processes["db_service"].pause()
    try:
        yield faulty
    finally:
        faulty.restore()


READS_AND_LOGIN = [r for r in REQUESTS if not r[4]]


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "auth"), READS_AND_LOGIN, ids=[r[0] for r in READS_AND_LOGIN]
)
async def test_a_hung_db_service_is_504_at_the_deadline(
    hung: Faulty, case: str, method: str, path: str, body: dict[str, Any] | None, auth: bool
) -> None:
    # given a db_service that accepts calls and never answers; when a request needs it
    response, code, took = await send(hung.url, method, path, body, None)

    # then it fails with DEADLINE_EXCEEDED (504 in REST) at the deadline, not later
    assert code == "DEADLINE_EXCEEDED"
    assert response.status_code == (200 if path == "/graphql" else 504)
    assert GRPC_TIMEOUT_S - 0.2 < took < GRPC_TIMEOUT_S + 1.5


async def test_readiness_names_a_hung_db_service(hung: Faulty) -> None:
    # given db_service hung; when readiness is asked
    async with httpx.AsyncClient(base_url=hung.url, timeout=10) as c:
        ready = await c.get("/readyz")

    # then it is 503 within its own timeout, naming db_service
    assert ready.status_code == 503
    assert ready.json()["dependencies"]["db_service"] == "UNREACHABLE"


async def test_a_keyed_order_that_timed_out_is_placed_once_on_retry(faulty: Faulty) -> None:
    # given an order sent with a key while db_service hangs, which the gateway gave up on
    shopper, key = faulty.shopper, uuid.uuid4().hex
    order = {"product_id": faulty.product_id, "quantity": 1}
    headers = {**shopper.auth, "Idempotency-Key": key}
    async with httpx.AsyncClient(base_url=faulty.url, timeout=30) as c:
        before = (await c.get(f"/api/v1/products/{faulty.product_id}")).json()["stock"]
        faulty.own.processes["db_service"].pause()
        try:
            timed_out = await c.post("/api/v1/orders", json=order, headers=headers)
        finally:
            faulty.restore()

        # when the client retries with the same key once db_service is back
        retried = await c.post("/api/v1/orders", json=order, headers=headers)
        again = await c.post("/api/v1/orders", json=order, headers=headers)
        after = (await c.get(f"/api/v1/products/{faulty.product_id}")).json()["stock"]

    # then exactly one order exists for the key, whether or not the first attempt went through
    assert timed_out.status_code == 504
    assert retried.status_code == again.status_code == 201
    assert retried.json()["id"] == again.json()["id"]
    assert after == before - 1


class _Refusing:
    """A fake DBService answering every call with one status, counting the attempts."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code
        self.attempts: dict[str, int] = {}

    def handler(self, method: str, request_type: Any) -> grpc.RpcMethodHandler[Any, Any]:
        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            self.attempts[method] = self.attempts.get(method, 0) + 1
            await context.abort(self.code, "refused by the test")

        return grpc.unary_unary_rpc_method_handler(
            refuse, request_deserializer=request_type.FromString, response_serializer=bytes
        )


@pytest.fixture
async def refusing() -> AsyncIterator[tuple[_Refusing, str]]:
    fake = _Refusing(grpc.StatusCode.UNAVAILABLE)
    server = grpc.aio.server(options=FAKE_SERVER_OPTIONS)
    methods = {
        "ListProducts": pb.ListProductsRequest,
        "PlaceOrder": pb.PlaceOrderRequest,
        "CreateUser": pb.CreateUserRequest,
        "CancelOrder": pb.CancelOrderRequest,
    }
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "merch.v1.DBService", {m: fake.handler(m, t) for m, t in methods.items()}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fake, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


# (case, method, request, whether it carries an idempotency key, attempts expected)
RETRIES: list[tuple[str, str, Any, bool, int]] = [
    ("a read", "ListProducts", pb.ListProductsRequest(), False, READ_ATTEMPTS),
    ("an order without a key", "PlaceOrder", pb.PlaceOrderRequest(product_id=1, quantity=1),
     False, 1),
    ("an order with a key", "PlaceOrder", pb.PlaceOrderRequest(product_id=1, quantity=1,
     idempotency_key="k"), True, KEYED_WRITE_ATTEMPTS),
    ("a registration", "CreateUser", pb.CreateUserRequest(sid="1"), False, 1),
    ("a cancellation", "CancelOrder", pb.CancelOrderRequest(id=1), False, 1),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "method", "request_message", "keyed", "attempts"),
    RETRIES,
    ids=[r[0] for r in RETRIES],
)
async def test_only_reads_and_keyed_writes_are_retried(
    refusing: tuple[_Refusing, str],
    case: str,
    method: str,
    request_message: Any,
    keyed: bool,
    attempts: int,
) -> None:
    # given a db_service that answers UNAVAILABLE to everything, and the gateway's client
    fake, target = refusing
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        client = DBClient(channel, timeout_s=5)

        # when a call is made
        with pytest.raises(ApiError) as failed:
            await client.call(
                getattr(client.stub, method),
                request_message,
                authorization=None,
                request_id="retry-test",
                idempotent_write=keyed,
            )

    # then it was attempted a bounded number of times, once unless it is safe to repeat
    assert failed.value.code == "UNAVAILABLE"
    assert fake.attempts == {method: attempts}
