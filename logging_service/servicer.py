"""LoggingServiceServicer: StreamLogs into Kafka, TailLogs out of it. Thin: proto ↔ producer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc

from logging_service import metrics
from logging_service.kafka import KafkaUnavailable, LogProducer
from logging_service.records import sanitize
from logging_service.settings import Settings
from logging_service.tail import TopicTail
from protos import logging_service_pb2 as pb

# A stream is answered only once all its records are acknowledged, so its size bounds both the
# memory held per call and the work repeated when the client re-sends it. Longer streams are
# refused with RESOURCE_EXHAUSTED before anything past the limit is produced; LogShipper never
# sends more than this in one call.
MAX_RECORDS_PER_STREAM = 10_000
TAIL_READY_KEY = "x-tail-positioned"
_TAIL_POLL_S = 0.5


class LoggingServiceServicer:
    """Implements merch.v1.LoggingService (registered with add_LoggingServiceServicer_to_server)."""

    def __init__(self, producer: LogProducer, settings: Settings) -> None:
        self._producer = producer
        self._settings = settings
        self._closing = asyncio.Event()
        self.open_tails = 0

    def close(self) -> None:
        """End every open TailLogs stream cleanly (called at shutdown, before the grace period)."""
        self._closing.set()

    async def StreamLogs(
        self,
        request_iterator: AsyncIterator[pb.LogRecord],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.StreamLogsSummary:
        """Produce every record of the stream; answer only once Kafka acknowledged all of them."""
        try:
            batch = self._producer.batch()
        except KafkaUnavailable as exc:
            await _abort(context, "StreamLogs", grpc.StatusCode.UNAVAILABLE, str(exc))
        received = 0
        failure: str | None = None
        try:
            async for record in request_iterator:
                received += 1
                if received > MAX_RECORDS_PER_STREAM:
                    break
                await batch.add(sanitize(record))
            if received <= MAX_RECORDS_PER_STREAM:
                started = time.perf_counter()
                remaining = context.time_remaining()
                # Answer before the client's deadline, so it hears UNAVAILABLE, not a timeout.
                await batch.acknowledged(None if remaining is None else remaining - 0.1)
                metrics.PRODUCE_SECONDS.observe(time.perf_counter() - started)
        except KafkaUnavailable as exc:
            metrics.PRODUCE_FAILURES.inc()
            failure = str(exc)
        finally:
            batch.abandon()
        if failure is not None:
            await _abort(context, "StreamLogs", grpc.StatusCode.UNAVAILABLE, failure)
        if received > MAX_RECORDS_PER_STREAM:
            await _abort(
                context,
                "StreamLogs",
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {MAX_RECORDS_PER_STREAM} records per stream; split the batch",
            )
        metrics.RECORDS.inc(received)
        metrics.RPCS.labels("StreamLogs", "OK").inc()
        return pb.StreamLogsSummary(received=received, acknowledged=received)

    async def TailLogs(
        self, request: pb.TailLogsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.LogRecord]:
        """Stream the topic from the requested start until the client cancels or we shut down.

        The initial metadata (`x-tail-positioned: 1`) is sent once the consumer is positioned,
        so a client can tell from when on "from now" holds.
        """
        if request.WhichOneof("start") == "offset" and request.offset < 0:
            await _abort(
                context, "TailLogs", grpc.StatusCode.INVALID_ARGUMENT, "offset must be >= 0"
            )
        if not self._producer.ready:
            await _abort(context, "TailLogs", grpc.StatusCode.UNAVAILABLE, "Kafka is not ready")
        tail = TopicTail(self._settings)
        self.open_tails += 1
        metrics.OPEN_TAILS.inc()
        try:
            try:
                await tail.open(request)
                await context.send_initial_metadata(((TAIL_READY_KEY, "1"),))
                while not self._closing.is_set():
                    for record in await tail.poll(_TAIL_POLL_S):
                        yield record
            except KafkaUnavailable as exc:
                await _abort(context, "TailLogs", grpc.StatusCode.UNAVAILABLE, str(exc))
            metrics.RPCS.labels("TailLogs", "OK").inc()
        finally:
            await tail.close()
            self.open_tails -= 1
            metrics.OPEN_TAILS.dec()


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any], method: str, code: grpc.StatusCode, details: str
) -> NoReturn:
    metrics.RPCS.labels(method, code.name).inc()
    await context.abort(code, details)
