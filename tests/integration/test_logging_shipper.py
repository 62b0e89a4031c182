"""LogShipper against a real logging service and broker: records arrive, outages lose nothing,
overflow is counted and reported once, stop() flushes within its timeout, large batches are
split into messages gRPC accepts."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest

from logging_service.client import LogShipper
from logging_service.kafka import LogProducer
from logging_service.server import LoggingServiceApp
from logging_service.settings import Settings
from scripts.infra import TansuBroker, free_port
from tests.conftest import FAKE_SERVER_OPTIONS
from tests.integration.conftest import event_ids, log_settings, read_topic, wait_for, wait_serving


def record(shipper: LogShipper, n: int, message: str = "") -> str:
    return shipper.record(
        kind="graphql",
        operation="Query.products",
        user="anonymous",
        outcome="ok",
        duration_ms=0.5,
        request_id=f"req-{n}",
        message=message,
    )


class Server:
    """A logging service on a fixed port that a test can stop and start again."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.target = settings.logging_service_listen
        self.app: LoggingServiceApp | None = None

    async def start(self) -> None:
        self.app = LoggingServiceApp(self.settings)
        await self.app.start()
        await wait_serving(self.target)

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.stop(0.5)
            self.app = None


class CallCounter(grpc.aio.ServerInterceptor):
    """Counts the calls a server receives by method name, implemented or not."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        self.calls[handler_call_details.method.rsplit("/", 1)[-1]] += 1
        return await continuation(handler_call_details)


class OlderService:
    """A server at a logging service's address that serves no LoggingService method at all:
    the real Kafka producer behind it, and every method UNIMPLEMENTED."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = LogProducer(settings)
        self.counter = CallCounter()
        self._server: grpc.aio.Server | None = None

    async def start(self) -> str:
        self._server = server = grpc.aio.server(
            interceptors=[self.counter], options=FAKE_SERVER_OPTIONS
        )
        handlers: dict[str, Any] = {}
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("merch.v1.LoggingService", handlers),)
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        await self.producer.start()
        await wait_for(lambda: self.producer.ready, within=15, message="Kafka never ready")
        return f"127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0.5)
        await self.producer.stop()


@pytest.fixture
async def server(broker: TansuBroker) -> AsyncIterator[Server]:
    """Not started: each test decides when the logging service is up."""
    s = Server(log_settings(broker.bootstrap_servers, listen=f"127.0.0.1:{free_port()}"))
    try:
        yield s
    finally:
        await s.stop()


async def read_ids(broker: TansuBroker, server: Server | OlderService, count: int) -> list[str]:
    return event_ids(
        await read_topic(broker.bootstrap_servers, server.settings.kafka_topic, count=count)
    )


async def test_recorded_records_arrive_in_the_topic(server: Server, broker: TansuBroker) -> None:
    await server.start()
    shipper = LogShipper(server.target, service="gateway", flush_interval_s=0.02)
    await shipper.start()

    ids = [record(shipper, n) for n in range(120)]
    await wait_for(lambda: shipper.stats.sent == 120, within=10, message="records not acknowledged")
    await shipper.stop()

    assert await read_ids(broker, server, 120) == ids
    assert shipper.stats.dropped == 0


async def test_records_recorded_while_the_service_is_down_all_arrive(
    server: Server, broker: TansuBroker
) -> None:
    await server.start()
    shipper = LogShipper(server.target, service="db_service", flush_interval_s=0.02)
    await shipper.start()
    before = [record(shipper, n) for n in range(20)]
    await wait_for(lambda: shipper.stats.sent == 20, within=10, message="first records not sent")

    await server.stop()
    during = [record(shipper, n) for n in range(20, 50)]
    await wait_for(lambda: shipper.stats.resent > 0, within=10, message="batch never re-sent")
    await server.start()

    await wait_for(lambda: shipper.stats.sent == 50, within=15, message="records lost in outage")
    await shipper.stop()
    arrived = await read_ids(broker, server, 50)
    assert set(arrived) == set(before + during)
    assert shipper.stats.dropped == 0


async def test_records_recorded_while_kafka_is_down_all_arrive(own_broker: TansuBroker) -> None:
    server = Server(log_settings(own_broker.bootstrap_servers, listen=f"127.0.0.1:{free_port()}"))
    await server.start()
    shipper = LogShipper(server.target, service="gateway", flush_interval_s=0.02)
    await shipper.start()
    try:
        await asyncio.to_thread(own_broker.stop)
        ids = [record(shipper, n) for n in range(40)]
        await wait_for(lambda: shipper.stats.resent > 0, within=10, message="batch never re-sent")

        await asyncio.to_thread(own_broker.start)

        await wait_for(lambda: shipper.stats.sent == 40, within=15, message="records lost")
        await shipper.stop()
        arrived = await read_ids(own_broker, server, 40)
    finally:
        await shipper.stop()
        await server.stop()
    assert set(arrived) == set(ids)


async def test_overflow_is_counted_and_reported_by_exactly_one_record(
    server: Server, broker: TansuBroker
) -> None:
    shipper = LogShipper(server.target, service="gateway", queue_max=10, batch_max=5)
    await shipper.start()

    # The service is down and the sender cannot run in between: 10 fit, 20 are dropped.
    ids = [record(shipper, n) for n in range(30)]
    assert shipper.stats.dropped == 20
    await wait_for(lambda: shipper.stats.resent > 0, within=10, message="batch never re-sent")
    await server.start()

    await wait_for(lambda: shipper.stats.sent == 11, within=15, message="backlog not delivered")
    await shipper.stop()
    values = [
        orjson.loads(m.value)
        for m in await read_topic(broker.bootstrap_servers, server.settings.kafka_topic, count=11)
    ]
    warnings = [v for v in values if v["operation"] == "LogShipper.dropped"]
    assert [(w["kind"], w["outcome"], w["message"]) for w in warnings] == [
        (
            "log",
            "DROPPED",
            "20 log records were dropped: 20 found no room (LOG_QUEUE_MAX or"
            " LOG_SPOOL_MAX_BYTES reached)",
        )
    ]
    assert {v["event_id"] for v in values if v not in warnings} == set(ids[:10])


async def test_stop_flushes_the_queue_within_its_timeout(
    server: Server, broker: TansuBroker
) -> None:
    await server.start()
    # A long flush interval: only stop() can make these records leave.
    shipper = LogShipper(server.target, service="gateway", flush_interval_s=30)
    await shipper.start()
    ids = [record(shipper, n) for n in range(100)]

    started = time.monotonic()
    await shipper.stop(timeout_s=5)

    assert time.monotonic() - started < 5
    assert (shipper.stats.sent, shipper.stats.queued, shipper.stats.dropped) == (100, 0, 0)
    assert await read_ids(broker, server, 100) == ids


async def test_stop_gives_up_at_its_timeout_and_counts_the_loss(server: Server) -> None:
    shipper = LogShipper(server.target, service="gateway", flush_interval_s=0.01)
    await shipper.start()
    for n in range(7):
        record(shipper, n)

    started = time.monotonic()
    await shipper.stop(timeout_s=0.5)

    assert time.monotonic() - started < 2
    assert (shipper.stats.sent, shipper.stats.queued, shipper.stats.dropped) == (0, 0, 7)


async def test_disabled_shipper_records_nothing(server: Server) -> None:
    shipper = LogShipper(server.target, service="gateway", enabled=False)
    await shipper.start()

    assert record(shipper, 1) == ""
    await shipper.stop(timeout_s=1)
    assert shipper.stats == type(shipper.stats)(sent=0, resent=0, dropped=0, queued=0)


async def test_a_batch_too_large_for_one_grpc_message_is_split_and_arrives(
    server: Server, broker: TansuBroker
) -> None:
    await server.start()
    # 600 records of ~8 kB (2 000 four-byte characters each): ~4.9 MB, over gRPC's 4 MiB.
    shipper = LogShipper(server.target, service="gateway", batch_max=600, flush_interval_s=30)
    await shipper.start()
    ids = [record(shipper, n, message="\U0001d11e" * 2000) for n in range(600)]

    await wait_for(lambda: shipper.stats.sent == 600, within=20, message="large batch not sent")
    await shipper.stop()

    # One call, never refused: a refused message would have been re-sent.
    assert (shipper.stats.resent, shipper.stats.dropped) == (0, 0)
    assert await read_ids(broker, server, 600) == ids


async def test_a_service_without_stream_log_batches_gets_the_batch_dropped_for_good(
    broker: TansuBroker,
) -> None:
    stranger = OlderService(log_settings(broker.bootstrap_servers))
    target = await stranger.start()
    shipper = LogShipper(target, service="gateway", flush_interval_s=0.02)
    await shipper.start()
    try:
        for n in range(7):
            record(shipper, n)

        await wait_for(lambda: shipper.stats.dropped == 7, within=10, message="not dropped")
        await shipper.stop()
    finally:
        await shipper.stop()
        await stranger.stop()

    assert (shipper.stats.sent, shipper.stats.resent, shipper.stats.queued) == (0, 0, 0)
    # UNIMPLEMENTED is permanent: no retry, and no other method tried (StreamLogs is not a
    # fallback any more: no logging service without StreamLogBatches ever shipped).
    assert stranger.counter.calls == {"StreamLogBatches": 1}


async def test_a_restarted_shipper_first_resends_what_its_spool_kept(
    server: Server, broker: TansuBroker, tmp_path: Path
) -> None:
    # given a spooling shipper that stops while the logging service is down
    first = LogShipper(server.target, service="gateway", spool_dir=tmp_path, flush_interval_s=0.02)
    await first.start()
    ids = [record(first, n) for n in range(30)]
    await wait_for(lambda: first.stats.resent > 0, within=10, message="batch never re-sent")
    await first.stop(timeout_s=0.5)

    # when the service is back and a new shipper starts on the same spool
    await server.start()
    second = LogShipper(server.target, service="gateway", spool_dir=tmp_path, flush_interval_s=0.02)
    await second.start()
    await wait_for(lambda: second.stats.sent == 30, within=15, message="spool not re-sent")
    await second.stop()

    # then nothing was dropped and every record arrived once, with its first event id
    assert (first.stats.dropped, first.stats.sent) == (0, 0)
    assert await read_ids(broker, server, 30) == ids
    assert await asyncio.to_thread(lambda: list(tmp_path.glob("slot-*/*.seg"))) == []
