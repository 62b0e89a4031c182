"""LogShipper: how the gateway and db_service send their records to logging_service, never blocking.

Usage::

    shipper = LogShipper("127.0.0.1:50052", service="gateway")
    await shipper.start()
    shipper.record(kind="graphql", operation="Query.me", user="12113053", outcome="ok",
                   duration_ms=3.2, request_id=request_id)
    ...
    await shipper.stop(timeout_s=5)

A batch travels as one `StreamLogBatches` call, usually as a single `LogBatch` message (several
when it would exceed about 1 MiB).

Delivery is at least once: a batch is re-sent until a `StreamLogsSummary` acknowledges all of
it, so a record can reach the topic twice (same `event_id`); readers deduplicate on `event_id`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import secrets
import time
import uuid
from dataclasses import dataclass

import grpc

from logging_service.records import clip, redact
from protos import logging_service_pb2 as pb
from protos import logging_service_pb2_grpc

log = logging.getLogger("logging_service.client")

# The server refuses longer streams (servicer.MAX_RECORDS_PER_STREAM); a batch never exceeds it.
MAX_BATCH = 10_000
# gRPC refuses a message over 4 MiB by default; a LogBatch message stays at about a quarter of
# that (a record is at most ~11 kB: its fields are clipped, records.FIELD_LIMITS).
MESSAGE_MAX_BYTES = 1024 * 1024
# A record's framing inside a LogBatch: the field tag and a length of up to 4 bytes.
_RECORD_FRAMING_BYTES = 5
_INITIAL_BACKOFF_S = 0.05
_MAX_BACKOFF_S = 2.0
# Codes a re-send cannot fix: the target is not a logging service, or it refuses us for good.
_PERMANENT_CODES = frozenset(
    {
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
# gRPC's default reconnect backoff grows to 120 s, which would keep records queued long after
# the logging service is back; a short cap bounds the recovery time to about two seconds.
_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


@dataclass(frozen=True, slots=True)
class ShipperStats:
    """Counters since start: records acknowledged, re-sent (per attempt), dropped, waiting."""

    sent: int
    resent: int
    dropped: int
    queued: int


class LogShipper:
    """Queues records without blocking and ships them in acknowledged batches (StreamLogBatches).

    `record()` must be called from the event loop's thread. Memory is bounded by `queue_max`
    queued records plus one in-flight batch of at most `batch_max`; a record that finds the queue
    full is dropped and counted, and one "LogShipper.dropped" record reports the count once
    the queue has room again.
    """

    def __init__(
        self,
        target: str,
        *,
        service: str,
        queue_max: int = 10_000,
        batch_max: int = 500,
        flush_interval_s: float = 0.2,
        call_timeout_s: float = 5.0,
        enabled: bool = True,
    ) -> None:
        if queue_max < 1 or not 1 <= batch_max <= MAX_BATCH:
            raise ValueError(f"need queue_max >= 1 and 1 <= batch_max <= {MAX_BATCH}")
        if flush_interval_s < 0 or call_timeout_s <= 0:
            raise ValueError("need flush_interval_s >= 0 and call_timeout_s > 0")
        self._target = target
        self._service = clip(service, "service")
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._flush_interval_s = flush_interval_s
        self._call_timeout_s = call_timeout_s
        self._enabled = enabled
        self._queue: collections.deque[pb.LogRecord] = collections.deque()
        self._wakeup = asyncio.Event()
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._closed = False
        self._failing = False
        self._in_flight = 0
        self._sent = 0
        self._resent = 0
        self._dropped = 0
        self._unreported_drops = 0
        # Event ids: 32 hex digits, a random prefix per shipper and a counter. Unique like a
        # uuid4, at a tenth of its cost (no system call per record).
        self._id_prefix = secrets.token_hex(8)
        self._ids = itertools.count()

    @property
    def stats(self) -> ShipperStats:
        """A snapshot of the counters; `queued` includes the batch being sent."""
        return ShipperStats(
            sent=self._sent,
            resent=self._resent,
            dropped=self._dropped,
            queued=len(self._queue) + self._in_flight,
        )

    async def start(self) -> None:
        """Open the long-lived channel and start the background sender (no network wait)."""
        if self._task is not None or not self._enabled:
            return
        self._channel = grpc.aio.insecure_channel(self._target, options=_CHANNEL_OPTIONS)
        stub = logging_service_pb2_grpc.LoggingServiceStub(self._channel)
        self._task = asyncio.create_task(self._run(stub), name="log-shipper")

    def record(
        self,
        *,
        kind: str,
        operation: str,
        user: str,
        outcome: str,
        duration_ms: float,
        request_id: str,
        message: str = "",
    ) -> str:
        """Queue one record and return its event id; never blocks and never raises.

        Returns "" when shipping is disabled or the record could not be built.
        """
        if not self._enabled:
            return ""
        try:
            event_id = f"{self._id_prefix}{next(self._ids):016x}"
            if self._closed or len(self._queue) >= self._queue_max:
                self._dropped += 1
                self._unreported_drops += 1
                return event_id
            self._queue.append(
                pb.LogRecord(
                    event_id=event_id,
                    ts=time.time(),
                    service=self._service,
                    kind=clip(kind, "kind"),
                    operation=clip(operation, "operation"),
                    user=clip(user, "user"),
                    outcome=clip(outcome, "outcome"),
                    duration_ms=duration_ms,
                    request_id=clip(request_id, "request_id"),
                    message=redact(clip(message, "message")) if message else "",
                )
            )
            if len(self._queue) == 1 or len(self._queue) >= self._batch_max:
                self._wakeup.set()
            return event_id
        except Exception:
            # Logging must never fail the caller's request; the loss is still counted.
            self._dropped += 1
            return ""

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Ship what is queued, for at most `timeout_s`, then close the channel.

        Records still undelivered at the deadline are counted as dropped.
        """
        self._stopping = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif task.exception() is not None:
                log.error("log shipper failed: %r", task.exception())
        self._closed = True
        lost = len(self._queue) + self._in_flight
        if lost:
            self._dropped += lost
            self._queue.clear()
            self._in_flight = 0
            log.warning("log shipper stopped with %d records undelivered", lost)
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = None

    async def _run(self, stub: logging_service_pb2_grpc.LoggingServiceAsyncStub) -> None:
        while (batch := await self._next_batch()) is not None:
            self._in_flight = len(batch)
            await self._deliver(stub, batch)
            self._in_flight = 0

    async def _next_batch(self) -> list[pb.LogRecord] | None:
        """Wait for records; take up to `batch_max` once full or `flush_interval_s` has passed."""
        while not self._queue:
            if self._stopping:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        if len(self._queue) < self._batch_max and not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval_s):
                    while len(self._queue) < self._batch_max and not self._stopping:
                        self._wakeup.clear()
                        await self._wakeup.wait()
        batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._batch_max))]
        self._report_drops()
        return batch

    def _report_drops(self) -> None:
        """Queue one warning record counting the drops since the last one, if there is room."""
        if not self._unreported_drops or len(self._queue) >= self._queue_max:
            return
        count, self._unreported_drops = self._unreported_drops, 0
        log.warning("%d log records were dropped: queue full", count)
        self._queue.append(
            pb.LogRecord(
                event_id=f"{self._id_prefix}{next(self._ids):016x}",
                ts=time.time(),
                service=self._service,
                kind="log",
                operation="LogShipper.dropped",
                user="system",
                outcome="DROPPED",
                duration_ms=0.0,
                request_id=uuid.uuid4().hex,
                message=f"{count} log records were dropped: queue full",
            )
        )

    async def _deliver(
        self, stub: logging_service_pb2_grpc.LoggingServiceAsyncStub, batch: list[pb.LogRecord]
    ) -> None:
        """Send `batch` in one call, again and again, until it is acknowledged."""
        delay = _INITIAL_BACKOFF_S
        attempt = 0
        while True:
            if attempt:
                self._resent += len(batch)
            attempt += 1
            try:
                summary = await self._call(stub, batch)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _PERMANENT_CODES:
                    self._dropped += len(batch)
                    log.error(
                        "logging service at %s refused %d records for good (%s); dropped",
                        self._target,
                        len(batch),
                        exc.code().name,
                    )
                    return
                reason = exc.code().name
            except Exception as exc:  # a broken channel must not end the sender
                reason = type(exc).__name__
            else:
                if summary.acknowledged == len(batch):
                    self._sent += len(batch)
                    if self._failing:
                        self._failing = False
                        log.info("log shipping to %s recovered", self._target)
                    return
                reason = f"{summary.acknowledged} of {len(batch)} acknowledged"
            if not self._failing:
                self._failing = True
                log.warning(
                    "log shipping to %s failed (%s); re-sending with backoff", self._target, reason
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)

    async def _call(
        self, stub: logging_service_pb2_grpc.LoggingServiceAsyncStub, batch: list[pb.LogRecord]
    ) -> pb.StreamLogsSummary:
        """One StreamLogBatches call carrying `batch`."""
        return await stub.StreamLogBatches(iter(log_batches(batch)), timeout=self._call_timeout_s)


def log_batches(
    records: list[pb.LogRecord], max_bytes: int = MESSAGE_MAX_BYTES
) -> list[pb.LogBatch]:
    """`records`, in order, as LogBatch messages of at most `max_bytes` each: usually one.

    A single record larger than `max_bytes` still travels, alone in its message.
    """
    whole = pb.LogBatch(records=records)
    if whole.ByteSize() <= max_bytes:
        return [whole]
    messages: list[pb.LogBatch] = []
    start = size = 0
    for i, record in enumerate(records):
        record_size = record.ByteSize() + _RECORD_FRAMING_BYTES
        if size + record_size > max_bytes and i > start:
            messages.append(pb.LogBatch(records=records[start:i]))
            start, size = i, 0
        size += record_size
    messages.append(pb.LogBatch(records=records[start:]))
    return messages
