"""LogShipper: how the gateway and db_service send their records to logging_service, never blocking.

Usage::

    shipper = LogShipper("127.0.0.1:50052", service="gateway", spool_dir=Path(".merch/spool/gw"))
    await shipper.start()        # re-sends first what an earlier run left unacknowledged
    shipper.record(kind="graphql", operation="Query.me", user="12113053", outcome="ok",
                   duration_ms=3.2, request_id=request_id)
    await shipper.durable()      # LOG_DURABILITY=sync: before answering the request
    ...
    await shipper.stop(timeout_s=5)

Records go to a disk spool (logging_service.spool) when `spool_dir` is given, else (or when the
spool cannot be written at start) to a bounded queue in memory. A background sender reads them
in order and ships each batch as one `StreamLogBatches` call (logging_service.wire), again and
again until a `StreamLogsSummary` acknowledges all of it; then the batch is forgotten (its
segment deleted once wholly acknowledged). Delivery is at least once: a record can reach the
topic twice, with the same `event_id`, and readers deduplicate on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import grpc

from logging_service.buffers import Frame, MemoryQueue, RecordBuffer
from logging_service.encoding import RecordEncoder, encode
from logging_service.records import clip, from_json
from logging_service.shipper_metrics import ShipperCollector
from logging_service.spool import DiskSpool, SpoolInUse
from logging_service.wire import MESSAGE_MAX_BYTES, LogChannel, batch_messages
from protos import logging_service_pb2 as pb

__all__ = [
    "MESSAGE_MAX_BYTES",
    "Durability",
    "LogChannel",
    "LogShipper",
    "ShipperCollector",
    "ShipperStats",
    "SpoolInUse",
    "batch_messages",
    "record_from_json",
]

log = logging.getLogger("logging_service.client")

Durability = Literal["batch", "sync"]


class ShipperSettings(Protocol):
    """The log-shipping fields every service's settings object has (README "Configuration")."""

    @property
    def logging_service_addr(self) -> str: ...
    @property
    def log_queue_max(self) -> int: ...
    @property
    def log_batch_max(self) -> int: ...
    @property
    def log_flush_interval_s(self) -> float: ...
    @property
    def log_shipping(self) -> bool: ...
    @property
    def log_spool_dir(self) -> str: ...
    @property
    def log_spool_max_bytes(self) -> int: ...
    @property
    def log_spool_sync_ms(self) -> int: ...
    @property
    def log_durability(self) -> Durability: ...
    @property
    def worker_index(self) -> int | None: ...


_UNENCODABLE = "could not be encoded"
_NO_ROOM = "found no room (LOG_QUEUE_MAX or LOG_SPOOL_MAX_BYTES reached)"
# The server refuses streams of more than servicer.MAX_RECORDS_PER_STREAM (10,000) records; a
# batch never exceeds it, with the drop report that may travel beside a full one.
MAX_BATCH = 10_000 - 1
# How often a running shipper looks for spool slots no live process holds any more.
ORPHAN_CHECK_S = 30.0
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


@dataclass(frozen=True, slots=True)
class ShipperStats:
    """Counters since start (records acknowledged, re-sent per attempt, dropped) and what waits:
    records not yet acknowledged, and the spool's size, segments, oldest record and health."""

    sent: int
    resent: int
    dropped: int
    queued: int
    spool_bytes: int = 0
    spool_segments: int = 0
    oldest_unacked_age_s: float = 0.0
    degraded: str = ""
    spool_read_back: int = 0


def record_from_json(value: bytes) -> bytes:
    """A record in its topic JSON form (an outbox row) as the serialized LogRecord to ship."""
    return from_json(value, offset=0).SerializeToString()


class LogShipper:
    """Buffers records without blocking and ships them in acknowledged batches.

    `record()` must be called from the event loop's thread. Memory is bounded by `queue_max`
    records waiting (for the spool's writer, or in the memory queue) plus one batch of at most
    `batch_max`; the spool by `spool_max_bytes` on disk. A record that finds no room is dropped
    and counted, and one "LogShipper.dropped" record reports the count with the next batch.
    """

    @classmethod
    def from_settings(cls, settings: ShipperSettings, *, service: str) -> LogShipper:
        """The shipper a service's settings describe (its spool slot is its worker index)."""
        return cls(
            settings.logging_service_addr,
            service=service,
            queue_max=settings.log_queue_max,
            batch_max=settings.log_batch_max,
            flush_interval_s=settings.log_flush_interval_s,
            enabled=settings.log_shipping,
            spool_dir=Path(settings.log_spool_dir) if settings.log_spool_dir else None,
            spool_max_bytes=settings.log_spool_max_bytes,
            spool_sync_s=settings.log_spool_sync_ms / 1000,
            durability=settings.log_durability,
            spool_slot=settings.worker_index or 0,
        )

    def __init__(
        self,
        target: str,
        *,
        service: str,
        queue_max: int = 10_000,
        batch_max: int = 2000,
        flush_interval_s: float = 0.2,
        call_timeout_s: float = 5.0,
        enabled: bool = True,
        spool_dir: Path | None = None,
        spool_max_bytes: int = 1024**3,
        spool_sync_s: float = 0.05,
        durability: Durability = "batch",
        spool_slot: int = 0,
        orphan_check_s: float = ORPHAN_CHECK_S,
    ) -> None:
        if queue_max < 1 or not 1 <= batch_max <= MAX_BATCH:
            raise ValueError(f"need queue_max >= 1 and 1 <= batch_max <= {MAX_BATCH}")
        if flush_interval_s < 0 or min(call_timeout_s, spool_sync_s, orphan_check_s) <= 0:
            raise ValueError(
                "need flush_interval_s >= 0 and call_timeout_s, spool_sync_s, orphan_check_s > 0"
            )
        self._target = target
        self._service = clip(service, "service")
        self._encoder = RecordEncoder(self._service)
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._flush_interval_s = flush_interval_s
        self._call_timeout_s = call_timeout_s
        self._enabled = enabled
        self._spool_dir = spool_dir
        self.sync = durability == "sync" and spool_dir is not None and enabled
        self._buffer: RecordBuffer = (
            DiskSpool(
                spool_dir,
                max_bytes=spool_max_bytes,
                sync_interval_s=spool_sync_s,
                max_pending=queue_max,
                slot=spool_slot,
            )
            if spool_dir is not None and enabled
            else MemoryQueue(queue_max)
        )
        self._orphan_check_s = orphan_check_s
        self._wakeup = asyncio.Event()
        self._channel: LogChannel | None = None
        self._task: asyncio.Task[None] | None = None
        self._orphans: asyncio.Task[None] | None = None
        self._stopping = False
        self._closed = False
        self._failing = False
        self._sent = 0
        self._resent = 0
        self._dropped = 0
        self._unreported_drops = 0
        self._drop_reasons: dict[str, int] = {}  # why the unreported ones were dropped
        self._lost_seen = 0
        # Event ids: 32 hex digits, a random prefix per shipper and a counter. Unique like a
        # uuid4, at a tenth of its cost (no system call per record). The counter starts at
        # 2**60, so that it has 16 digits without padding them (a fifth cheaper per record).
        self._id_prefix = secrets.token_hex(8)
        self._ids = itertools.count(1 << 60)

    @property
    def stats(self) -> ShipperStats:
        """A snapshot of the counters; `queued` counts every record not yet acknowledged."""
        buffered = self._buffer.stats()
        self._count_lost(buffered.lost)
        oldest = buffered.oldest_ts
        return ShipperStats(
            sent=self._sent,
            resent=self._resent,
            dropped=self._dropped,
            queued=buffered.unacked,
            spool_bytes=buffered.bytes if self._buffer.durable else 0,
            spool_segments=buffered.segments,
            oldest_unacked_age_s=max(time.time() - oldest, 0.0) if oldest is not None else 0.0,
            degraded=buffered.degraded,
            spool_read_back=buffered.read_back,
        )

    async def start(self) -> None:
        """Open the spool (recovering an earlier run's records) and start the sender.

        Raises SpoolInUse when other processes hold every slot of the spool directory. A spool
        that cannot be written is reported (`stats.degraded`) and replaced by the memory queue.
        """
        if self._task is not None or not self._enabled:
            return
        if isinstance(self._buffer, DiskSpool):
            try:
                await self._buffer.open()
            except SpoolInUse:
                raise
            except OSError as exc:
                reason = f"cannot use log spool {self._spool_dir}: {exc.strerror or exc}"
                log.error("%s; records are kept in memory only", reason)
                self._buffer = MemoryQueue(self._queue_max, degraded=reason)
                self.sync = False
        self._buffer.on_readable(self._wakeup.set)
        self._channel = LogChannel(self._target, call_timeout_s=self._call_timeout_s)
        self._task = asyncio.create_task(self._run(self._channel), name="log-shipper")
        if isinstance(self._buffer, DiskSpool):
            self._orphans = asyncio.create_task(
                self._adopt_orphans(self._buffer), name="log-spool-orphans"
            )

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
        """Buffer one record and return its event id; never blocks and never raises.

        Returns "" when shipping is disabled or the record could not be built.
        """
        if not self._enabled:
            return ""
        shared = self._shared(kind, operation, user, outcome, duration_ms, message)
        if shared is None:
            self._drop(1, _UNENCODABLE)
            return ""
        ts, middle, tail = shared
        event_id = self._append(ts, middle, tail, request_id)
        if not self._buffer.wakes_sender:
            self._wake_if_due(1)
        return event_id

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
        """One record per request id, alike but for it and the event id (a call made for
        several requests); their event ids. Never blocks and never raises.

        The fields they share are encoded once and only those two change from one record to
        the next: db_service records a coalesced call of 15 reads at half the cost of 15 records.
        """
        if not self._enabled:
            return []
        shared = self._shared(kind, operation, user, outcome, duration_ms, message)
        if shared is None:
            self._drop(len(request_ids), _UNENCODABLE)
            return []
        ts, middle, tail = shared
        ids = [event_id for r in request_ids if (event_id := self._append(ts, middle, tail, r))]
        if not self._buffer.wakes_sender:
            self._wake_if_due(len(ids))
        return ids

    def _shared(
        self, kind: str, operation: str, user: str, outcome: str, duration_ms: float, message: str
    ) -> tuple[float, bytes, bytes] | None:
        """The time and the encoded fields of a record but its ids; None if it cannot be built."""
        ts = time.time()
        try:
            middle = self._encoder.middle(kind, operation, user, outcome, ts, duration_ms)
            return ts, middle, self._encoder.tail(message) if message else b""
        except Exception:  # a string protobuf refuses (a lone surrogate)
            return None

    def _append(self, ts: float, middle: bytes, tail: bytes, request_id: str) -> str:
        """Buffer one record (`middle` and `tail` from the encoder) with a new event id and
        `request_id`: its event id, or "" when it cannot be encoded (counted as dropped, like
        a record that finds no room)."""
        event_id = f"{self._id_prefix}{next(self._ids):x}"
        try:
            payload = encode(event_id, middle, request_id, tail)
            if self._closed:
                self._drop(1, "came after the shipper stopped")
            elif not self._buffer.append(payload, ts):
                self._drop(1, _NO_ROOM)  # counted as dropped; the caller still gets its id
            return event_id
        except Exception:  # logging must never fail the caller's request
            self._drop(1, _UNENCODABLE)
            return ""

    def _wake_if_due(self, added: int) -> None:
        """Wake the sender for the first records after none, or for a full batch (for a buffer
        that does not wake it itself: the spool's writer does, after each turn; asking it
        here, for every record, cost ~1 µs of a loaded gateway's CPU per record)."""
        waiting = self._buffer.readable()
        if 0 < waiting <= added or waiting >= self._batch_max:
            self._wakeup.set()

    async def durable(self) -> None:
        """In sync mode, return once every record made so far is on disk (one fsync for all
        who wait at the same time); at once otherwise. Never raises."""
        if self.sync:
            with contextlib.suppress(Exception):
                await self._buffer.settled()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Ship what waits, for at most `timeout_s`, then close the spool and the channel.

        With a spool, records still unacknowledged stay on disk for the next start; without
        one they are counted as dropped.
        """
        deadline = time.monotonic() + timeout_s
        orphans, self._orphans = self._orphans, None
        if orphans is not None:
            orphans.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await orphans
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._buffer.settled()  # so the sender can still read them
        self._stopping = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=max(deadline - time.monotonic(), 0))
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif task.exception() is not None:
                log.error("log shipper failed: %r", task.exception())
        self._closed = True
        left = self._buffer.stats().unacked
        lost = await self._buffer.close()
        if lost:
            self._dropped += lost
            log.warning("log shipper stopped with %d records undelivered", lost)
        elif left and self._enabled:
            log.warning(
                "log shipper stopped: %d records stay in the spool for the next start", left
            )
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    def _drop(self, count: int, reason: str) -> None:
        self._dropped += count
        self._unreported_drops += count
        self._drop_reasons[reason] = self._drop_reasons.get(reason, 0) + count
        if self._unreported_drops == count:
            self._wakeup.set()  # so the report leaves even if nothing else is buffered

    def _count_lost(self, lost: int) -> None:
        """Records the buffer lost after accepting them (a failed write) count as dropped."""
        if lost > self._lost_seen:
            why = self._buffer.stats().degraded
            reason = f"the spool could not write ({why})" if why else "the spool could not write"
            self._drop(lost - self._lost_seen, reason)
            self._lost_seen = lost

    async def _adopt_orphans(self, spool: DiskSpool) -> None:
        """Every `orphan_check_s`, take over the slots of processes that stopped after this one
        started (DiskSpool.adopt_orphans): without it their records would wait for the next
        start of a process on this spool directory, which a scaled-down service may never see."""
        while True:
            await asyncio.sleep(self._orphan_check_s)
            try:
                await spool.adopt_orphans()
            except Exception:
                log.exception("log spool: taking over abandoned slots failed; trying again later")

    async def _run(self, channel: LogChannel) -> None:
        """Send until stopped. No failure ends it: nothing would start it again, and records
        would only pile up until dropped (`_deliver` already retries every failed call)."""
        delay = _INITIAL_BACKOFF_S
        while True:
            try:
                batch = await self._next_batch()
            except Exception:
                log.exception("log shipper could not read its next batch; retrying")
                if self._stopping:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF_S)
                continue
            if batch is None:
                return
            delay = _INITIAL_BACKOFF_S
            frames, records = batch
            if records:
                await self._deliver(channel, records)
            if frames:
                self._buffer.ack(frames[-1])

    async def _next_batch(self) -> tuple[list[Frame], list[bytes]] | None:
        """Wait for records; take up to `batch_max` once full or `flush_interval_s` has passed.

        The drop report, when one is due, travels with the batch (it is never spooled: the
        spool may be what failed).
        """
        while not self._buffer.readable() and not self._unreported_drops:
            if self._stopping:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
            self._count_lost(self._buffer.stats().lost)
        if self._buffer.readable() < self._batch_max and not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval_s):
                    while self._buffer.readable() < self._batch_max and not self._stopping:
                        self._wakeup.clear()
                        await self._wakeup.wait()
        frames = await self._buffer.read(self._batch_max)
        records = [f.payload for f in frames]
        self._count_lost(self._buffer.stats().lost)
        if self._unreported_drops:
            records.append(self._drop_report())
        return frames, records

    def _drop_report(self) -> bytes:
        count, self._unreported_drops = self._unreported_drops, 0
        reasons = ", ".join(f"{n} {why}" for why, n in self._drop_reasons.items())
        self._drop_reasons = {}
        message = f"{count} log records were dropped: {reasons}"
        log.warning("%s", message)
        return pb.LogRecord(
            event_id=f"{self._id_prefix}{next(self._ids):x}",
            ts=time.time(),
            service=self._service,
            kind="log",
            operation="LogShipper.dropped",
            user="system",
            outcome="DROPPED",
            duration_ms=0.0,
            request_id=uuid.uuid4().hex,
            message=message,
        ).SerializeToString()

    async def _deliver(self, channel: LogChannel, records: list[bytes]) -> None:
        """Send `records` in one call, again and again, until they are acknowledged."""
        delay = _INITIAL_BACKOFF_S
        attempt = 0
        while True:
            if attempt:
                self._resent += len(records)
            attempt += 1
            try:
                acknowledged = await channel.send(records)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _PERMANENT_CODES:
                    self._dropped += len(records)
                    log.error(
                        "logging service at %s refused %d records for good (%s); dropped",
                        self._target,
                        len(records),
                        exc.code().name,
                    )
                    return
                reason = exc.code().name
            except Exception as exc:  # a broken channel must not end the sender
                reason = type(exc).__name__
            else:
                if acknowledged == len(records):
                    self._sent += len(records)
                    if self._failing:
                        self._failing = False
                        log.info("log shipping to %s recovered", self._target)
                    return
                reason = f"{acknowledged} of {len(records)} acknowledged"
            if not self._failing:
                self._failing = True
                log.warning(
                    "log shipping to %s failed (%s); re-sending with backoff", self._target, reason
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)


def decode_batch(message: bytes) -> list[pb.LogRecord]:
    """The records of one serialized LogBatch message (for tests and tools)."""
    return list(pb.LogBatch.FromString(message).records)
