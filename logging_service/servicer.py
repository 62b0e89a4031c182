"""LoggingServiceServicer: StreamLogs and StreamLogBatches into Kafka, TailLogs out of it.

Thin: proto ↔ producer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, NoReturn, TypeVar

import grpc

from logging_service import metrics
from logging_service.kafka import KafkaUnavailable, LogProducer
from logging_service.settings import Settings
from logging_service.tail import TopicTail
from protos import logging_service_pb2 as pb
from protos import logging_service_pb2_grpc
from protos.errors import ErrorCode, error_metadata

# A stream is answered only once all its records are acknowledged, so its size bounds both the
# memory held per call and the work repeated when the client re-sends it. It counts records,
# not messages (a LogBatch carries many). Longer streams are refused with RESOURCE_EXHAUSTED
# before anything past the limit is produced; LogShipper never sends more than this in one call.
MAX_RECORDS_PER_STREAM = 10_000
TAIL_READY_KEY = "x-tail-positioned"
_TAIL_POLL_S = 0.5
# What a tail refused for LOG_TAILS_MAX is told to wait: a `logs` subscription ends when its
# client leaves, which nobody can foresee; a few seconds spares a busy service a retry storm.
TAIL_RETRY_AFTER_S = 5

_Message = TypeVar("_Message", pb.LogRecord, pb.LogBatch)


class LoggingServiceServicer(logging_service_pb2_grpc.LoggingServiceServicer):
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
        return await self._produce("StreamLogs", request_iterator, _one_record, context)

    async def StreamLogBatches(
        self,
        request_iterator: AsyncIterator[pb.LogBatch],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.StreamLogsSummary:
        """StreamLogs with many records per message (what LogShipper sends)."""
        return await self._produce("StreamLogBatches", request_iterator, _batch_records, context)

    async def _produce(
        self,
        method: str,
        messages: AsyncIterator[_Message],
        records_of: Callable[[_Message], Sequence[pb.LogRecord]],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.StreamLogsSummary:
        """Produce the records of every message (`records_of`); answer once all are acknowledged.

        A message that would take the stream past MAX_RECORDS_PER_STREAM records is not
        produced: the call ends with RESOURCE_EXHAUSTED.
        """
        try:
            batch = self._producer.batch()
        except KafkaUnavailable as exc:
            await _abort(context, method, grpc.StatusCode.UNAVAILABLE, str(exc))
        received = 0
        failure: str | None = None
        try:
            async for message in messages:
                records = records_of(message)
                received += len(records)
                if received > MAX_RECORDS_PER_STREAM:
                    break
                if records:
                    await batch.add_many(records)
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
            await _abort(context, method, grpc.StatusCode.UNAVAILABLE, failure)
        if received > MAX_RECORDS_PER_STREAM:
            await _abort(
                context,
                method,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {MAX_RECORDS_PER_STREAM} records per stream; split the batch",
            )
        metrics.RECORDS.inc(received)
        metrics.RPCS.labels(method, "OK").inc()
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
        if self.open_tails >= self._settings.log_tails_max:
            # Each tail is a Kafka consumer: its connections and its polling. A client opening
            # tails without end (a `logs` subscription per WebSocket, and WebSockets without
            # end) would take every file descriptor and the CPU; the refusal is counted in
            # logging_service_rpcs_total{method="TailLogs",code="RESOURCE_EXHAUSTED"}.
            # Coded as a rate limit (DESIGN §4), so the gateway maps it through its one table:
            # a RESOURCE_EXHAUSTED without the code is gRPC's own (a message too large).
            await _abort(
                context,
                "TailLogs",
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {self._settings.log_tails_max} log tails are open at once; retry later",
                error_metadata(ErrorCode.RATE_LIMITED, retry_after_s=TAIL_RETRY_AFTER_S),
            )
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


def _one_record(record: pb.LogRecord) -> Sequence[pb.LogRecord]:
    return (record,)


def _batch_records(batch: pb.LogBatch) -> Sequence[pb.LogRecord]:
    return batch.records


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any],
    method: str,
    code: grpc.StatusCode,
    details: str,
    trailing: tuple[tuple[str, str], ...] = (),
) -> NoReturn:
    metrics.RPCS.labels(method, code.name).inc()
    await context.abort(code, details, trailing)
