"""Every exception a gRPC call can raise becomes an ApiError from gateway.errors' one table.

The grpc library fails some calls itself, with no status from any server (ExecuteBatchError for
metadata it refuses, UsageError on a closed channel); those must not escape as unexpected errors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from gateway.backends import CHANNEL_OPTIONS, DBClient
from gateway.errors import ApiError, from_grpc_error
from protos import db_service_pb2 as pb
from protos import db_service_pb2_grpc
from scripts.processes import free_port


@pytest.fixture
async def db() -> AsyncIterator[tuple[DBClient, grpc.aio.Channel]]:
    # Nothing listens there: the calls below fail in the client before any connection matters.
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}")
    try:
        yield DBClient(channel, timeout_s=2.0), channel
    finally:
        await channel.close()


async def test_metadata_grpc_refuses_is_an_internal_error(
    db: tuple[DBClient, grpc.aio.Channel],
) -> None:
    # given a call whose metadata grpc refuses to send (a tab in a value)
    client, _ = db

    # when it is made
    with pytest.raises(ApiError) as raised:
        await client.call(
            client.stub.GetProduct,
            pb.GetProductRequest(id=1),
            authorization=None,
            request_id="a\tb",
        )

    # then it is the table's masked internal error
    assert (raised.value.http_status, raised.value.code) == (500, "INTERNAL_SERVER_ERROR")
    assert raised.value.message == "internal error"


async def test_a_call_on_a_closed_channel_is_unavailable(
    db: tuple[DBClient, grpc.aio.Channel],
) -> None:
    # given a channel closed under the client, as during the gateway's shutdown
    client, channel = db
    await channel.close()

    # when a call is made
    with pytest.raises(ApiError) as raised:
        await client.call(
            client.stub.GetProduct, pb.GetProductRequest(id=1), authorization=None, request_id="r"
        )

    # then the caller is told to retry later
    assert (raised.value.http_status, raised.value.code) == (503, "UNAVAILABLE")


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (grpc.aio.UsageError("Channel is closed."), 503, "UNAVAILABLE"),
        (grpc.aio.InternalError("failed execute_batch"), 500, "INTERNAL_SERVER_ERROR"),
        (grpc.aio.AbortError("abort"), 500, "INTERNAL_SERVER_ERROR"),
        (grpc.aio.BaseError("any other"), 500, "INTERNAL_SERVER_ERROR"),
        (grpc.RpcError(), 500, "INTERNAL_SERVER_ERROR"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_client_exception_has_its_row(exc: Exception, status: int, code: str) -> None:
    # when a client-side failure is translated; then it gets its status, with no details
    error = from_grpc_error(exc)

    assert (error.http_status, error.code) == (status, code)
    assert str(exc) not in error.message or not str(exc)


@pytest.mark.parametrize(
    ("status", "http_status", "code"),
    [
        # statuses the gRPC library makes itself: no domain code, details not for a client
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 500, "INTERNAL_SERVER_ERROR"),
        (grpc.StatusCode.INVALID_ARGUMENT, 500, "INTERNAL_SERVER_ERROR"),
        # those a backend being away or stopping makes, with the table's own words
        (grpc.StatusCode.UNAVAILABLE, 503, "UNAVAILABLE"),
        (grpc.StatusCode.CANCELLED, 503, "UNAVAILABLE"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "DEADLINE_EXCEEDED"),
    ],
)
def test_a_status_without_a_domain_code_tells_the_client_nothing_of_grpc(
    status: grpc.StatusCode, http_status: int, code: str
) -> None:
    # given a failed call whose status db_service did not give (no code in its trailers)
    details = "Stream removed (received metadata size exceeds hard limit (value length 20017))"
    failed = grpc.aio.AioRpcError(status, grpc.aio.Metadata(), grpc.aio.Metadata(), details)

    # when it is translated
    error = from_grpc_error(failed)

    # then it is never a domain answer (a 429 RATE_LIMITED, a 400), and says nothing of gRPC
    assert (error.http_status, error.code) == (http_status, code)
    assert "metadata" not in error.message


class _Held(db_service_pb2_grpc.DBServiceServicer):
    """A db_service stand-in whose GetProduct waits until its server stops under it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def GetProduct(self, request: pb.GetProductRequest, context: object) -> pb.Product:
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable: the server cancels the call")


class _CancelledOnce(db_service_pb2_grpc.DBServiceServicer):
    """Cancels each RPC's first call, as a worker that stops before starting it does; then
    answers."""

    def __init__(self) -> None:
        self.calls = 0

    async def _once(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.calls += 1
        if self.calls == 1:
            await context.abort(grpc.StatusCode.CANCELLED, "server is shutting down")

    async def GetProduct(
        self, request: pb.GetProductRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Product:
        await self._once(context)
        return pb.Product(id=request.id, name="Hoodie")

    async def PlaceOrder(
        self, request: pb.PlaceOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Order:
        await self._once(context)
        return pb.Order(id=7, product_id=request.product_id)


@contextlib.asynccontextmanager
async def _serving(
    servicer: db_service_pb2_grpc.DBServiceServicer,
) -> AsyncIterator[tuple[grpc.aio.Server, DBClient]]:
    server = grpc.aio.server()
    db_service_pb2_grpc.add_DBServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
    try:
        yield server, DBClient(channel, timeout_s=5.0)
    finally:
        await channel.close()
        await server.stop(None)


async def test_calls_a_stopping_backend_had_received_are_unavailable() -> None:
    # given calls db_service has received, one of them started, none answered
    held = _Held()
    async with _serving(held) as (server, client):
        calls = [
            asyncio.create_task(
                client.call(
                    client.stub.GetProduct,
                    pb.GetProductRequest(id=1),
                    authorization=None,
                    request_id=f"r{i}",
                )
            )
            for i in range(10)
        ]
        await asyncio.wait_for(held.entered.wait(), 5)

        # when db_service stops (SIGTERM): grpc cancels the calls it had not started yet
        # (CANCELLED) and, at the end of the grace period, those still running (UNAVAILABLE)
        await server.stop(None)
        outcomes = await asyncio.gather(*calls, return_exceptions=True)

    # then every client is told the backend is away, as for any backend down, none "internal"
    assert {(e.http_status, e.code) for e in outcomes if isinstance(e, ApiError)} == {
        (503, "UNAVAILABLE")
    }
    assert all(isinstance(e, ApiError) for e in outcomes)


@pytest.mark.parametrize("rpc", ["GetProduct", "PlaceOrder"])
async def test_a_call_a_stopping_backend_cancelled_is_retried_when_safe(rpc: str) -> None:
    # given a backend that cancels the first call, as a stopping worker does, then answers
    servicer = _CancelledOnce()
    async with _serving(servicer) as (_, client):
        # when a read, or an order with an idempotency key, is made
        if rpc == "GetProduct":
            reply: Message = await client.call(
                client.stub.GetProduct,
                pb.GetProductRequest(id=3),
                authorization=None,
                request_id="r",
            )
        else:
            reply = await client.call(
                client.stub.PlaceOrder,
                pb.PlaceOrderRequest(product_id=3, quantity=1, idempotency_key="k"),
                authorization="Bearer t",
                request_id="r",
                idempotent_write=True,
            )

    # then it is repeated (safe: a read changes nothing, the key places one order) and answered
    assert servicer.calls == 2
    assert reply.id in (3, 7)
