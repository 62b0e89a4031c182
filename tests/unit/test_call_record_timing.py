"""When db_service's interceptor records a call: after its answer is on its way in the default
mode, before it in sync mode (the record must be on disk first). A real grpc.aio server on a
real port; the response serializer notes when gRPC takes the answer, a fake recorder notes
whether that had happened when it was asked to record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from db_service.interceptors import CallRecordInterceptor
from protos import db_service_pb2 as pb
from tests.conftest import FAKE_SERVER_OPTIONS

METHOD = "/merch.v1.DBService/GetProduct"


@dataclass
class Spy:
    """What happened, in order: "answer" when gRPC serializes the response, "record <ids>"
    when the recorder is asked, "durable" when sync mode waits for the disk."""

    events: list[str] = field(default_factory=list)
    recorded: asyncio.Event = field(default_factory=asyncio.Event)

    def serialize(self, response: pb.Product) -> bytes:
        self.events.append("answer")
        return response.SerializeToString()

    def record_each(
        self,
        request_ids: Sequence[str],
        *,
        kind: str,
        operation: str,
        user: str,
        outcome: str,
        duration_ms: float,
        message: str = "",
    ) -> list[str]:
        self.events.append(f"record {','.join(request_ids)} {operation} {outcome}")
        self.recorded.set()
        return list(request_ids)

    async def durable(self) -> None:
        self.events.append("durable")


async def serve(spy: Spy, durable: Callable[[], Awaitable[None]] | None) -> grpc.aio.Server:
    async def get_product(request: pb.GetProductRequest, context: Any) -> pb.Product:
        return pb.Product(id=request.id, name="Mug")

    handler = grpc.unary_unary_rpc_method_handler(
        get_product,
        request_deserializer=pb.GetProductRequest.FromString,
        response_serializer=spy.serialize,
    )
    server = grpc.aio.server(
        interceptors=[CallRecordInterceptor(spy, durable)], options=FAKE_SERVER_OPTIONS
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("merch.v1.DBService", {"GetProduct": handler}),)
    )
    return server


@pytest.fixture
async def call() -> AsyncIterator[Callable[[Spy, bool], Awaitable[pb.Product]]]:
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []

    async def run(spy: Spy, sync: bool) -> pb.Product:
        server = await serve(spy, spy.durable if sync else None)
        servers.append(server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        get_product = channel.unary_unary(
            METHOD,
            request_serializer=pb.GetProductRequest.SerializeToString,
            response_deserializer=pb.Product.FromString,
        )
        product: pb.Product = await get_product(
            pb.GetProductRequest(id=7), metadata=(("x-request-id", "r1,r2,r3"),), timeout=5
        )
        # Made in the server's next turn: long before the answer came back (the spool's
        # window, LOG_SPOOL_SYNC_MS, is what a record made later than that would overrun).
        assert spy.recorded.is_set()
        return product

    yield run
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)


async def test_in_the_default_mode_the_answer_leaves_before_the_records_are_built(
    call: Callable[[Spy, bool], Awaitable[pb.Product]],
) -> None:
    spy = Spy()

    product = await call(spy, False)

    assert product.name == "Mug"
    assert spy.events == ["answer", "record r1,r2,r3 DBService/GetProduct ok"]


async def test_in_sync_mode_the_records_are_on_disk_before_the_answer_leaves(
    call: Callable[[Spy, bool], Awaitable[pb.Product]],
) -> None:
    spy = Spy()

    await call(spy, True)

    assert spy.events == ["record r1,r2,r3 DBService/GetProduct ok", "durable", "answer"]
