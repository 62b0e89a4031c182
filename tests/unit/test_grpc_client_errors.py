"""Every exception a gRPC call can raise becomes an ApiError from gateway.errors' one table.

The grpc library fails some calls itself, with no status from any server (ExecuteBatchError for
metadata it refuses, UsageError on a closed channel); those must not escape as unexpected errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from gateway.backends import DBClient
from gateway.errors import ApiError, from_grpc_error
from protos import db_service_pb2 as pb
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
        (grpc.StatusCode.CANCELLED, 500, "INTERNAL_SERVER_ERROR"),
        # the two a backend being away makes, with the table's own words
        (grpc.StatusCode.UNAVAILABLE, 503, "UNAVAILABLE"),
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
