"""LogProducer: the one owner of the Kafka producer, its topic and its reconnection.

`start()` returns at once; a supervisor task connects with backoff, creates the topic if it is
missing, reports readiness through a callback (which drives gRPC health), watches the
connection, and builds a fresh producer whenever the old one broke.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError

from logging_service import metrics
from logging_service.records import to_kafka
from logging_service.settings import Settings
from plumbing.futures import retrieve
from protos import logging_service_pb2 as pb

log = logging.getLogger("logging_service.kafka")

ReadyCallback = Callable[[bool], Awaitable[None]]

_TOPIC_EXISTS = 36  # TopicAlreadyExists
_INITIAL_BACKOFF_S = 0.2
# Without idempotence, a call's messages are checked against a broker that lost the topic at
# most this often: StreamLogs sends one record per message, and a metadata request per record
# would cost more than producing it; a broker restart (a process gone, another started, the
# producer reconnected) takes longer.
_TOPIC_RECHECK_S = 0.05


class KafkaUnavailable(Exception):
    """Kafka cannot take records right now; the caller should retry later."""


class LogProducer:
    """Produces log records to the topic with `acks=all`, key = request id, value = JSON."""

    def __init__(self, settings: Settings, on_ready: ReadyCallback | None = None) -> None:
        self._settings = settings
        self._on_ready = on_ready
        self._producer: AIOKafkaProducer | None = None
        self._ready = False
        self._broken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idempotence: Literal["auto", "on", "off"] = settings.kafka_idempotence

    @property
    def ready(self) -> bool:
        """True while a connected producer takes records."""
        return self._ready

    async def start(self) -> None:
        """Start connecting in the background; never waits for Kafka."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="kafka-supervisor")

    async def stop(self) -> None:
        """Stop reconnecting, then flush and close the producer (bounded by the request timeout)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        producer, self._producer = self._producer, None
        await self._set_ready(False)
        if producer is not None:
            await self._close(producer)

    def batch(self) -> ProduceBatch:
        """A batch for the records of one streaming call; KafkaUnavailable when not ready."""
        producer = self._producer
        if producer is None or not self._ready:
            raise KafkaUnavailable("Kafka is not connected yet")
        return ProduceBatch(self, producer)

    def _is_current(self, producer: AIOKafkaProducer) -> bool:
        return self._ready and producer is self._producer

    async def _confirm_topic(self, producer: AIOKafkaProducer) -> None:
        """KafkaUnavailable unless the broker lists the topic, when producing without
        idempotence (the development broker, or KAFKA_IDEMPOTENCE=off).

        The development broker keeps nothing: restarted, it comes back without the topic,
        while the producer reconnects by itself and goes on. Tansu takes records for a topic
        it does not know and acknowledges them, but no consumer sees them, and once the topic
        is created (by the next logging_service to start, or a consumer's metadata request)
        its end starts again at 0 over them: later batches collide or hide inside theirs,
        acknowledged and never readable. So a call looks first, and again before a later
        message once _TOPIC_RECHECK_S passed (a restart between two messages loses what the
        call took before, and its answer would acknowledge it); a missing topic breaks the
        producer, and the supervisor creates the topic before anything is produced to it. An
        idempotent producer (a real Kafka, which keeps its topics) skips the round trip."""
        if self._idempotence != "off":
            return
        self._raise_if_topic_lost(await producer.client.fetch_all_metadata())

    def _raise_if_topic_lost(self, metadata: ClusterMetadata) -> None:
        if self._idempotence == "off" and self._settings.kafka_topic not in metadata.topics():
            raise KafkaUnavailable("the broker does not have the topic (restarted empty?)")

    def _mark_broken(self, producer: AIOKafkaProducer, exc: BaseException) -> None:
        """Stop taking records and let the supervisor rebuild `producer`, if it is current.

        A late failure from a producer already replaced must not tear down its successor.
        """
        if producer is not self._producer or self._broken.is_set():
            return
        log.warning("Kafka produce failed (%s); reconnecting", _describe(exc))
        self._ready = False
        self._broken.set()

    async def _set_ready(self, ready: bool) -> None:
        self._ready = ready
        metrics.KAFKA_READY.set(1 if ready else 0)
        if self._on_ready is not None:
            await self._on_ready(ready)

    async def _supervise(self) -> None:
        s = self._settings
        delay = _INITIAL_BACKOFF_S
        reported = False
        while True:
            try:
                producer = await self._connect()
            except Exception as exc:
                # One warning per outage; every attempt is still visible at debug level.
                level = logging.DEBUG if reported else logging.WARNING
                log.log(
                    level,
                    "Kafka at %s not ready (%s); retrying",
                    s.kafka_bootstrap_servers,
                    _describe(exc),
                )
                reported = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, s.kafka_retry_backoff_max_s)
                continue
            delay, reported = _INITIAL_BACKOFF_S, False
            self._producer = producer
            self._broken.clear()
            await self._set_ready(True)
            log.info(
                "Kafka ready at %s: producing to %r with acks=all, idempotence %s",
                s.kafka_bootstrap_servers,
                s.kafka_topic,
                "on" if self._idempotence != "off" else "off",
            )
            await self._watch(producer)
            await self._set_ready(False)
            self._producer = None
            await self._close(producer)

    async def _watch(self, producer: AIOKafkaProducer) -> None:
        """Return once the connection is lost: a failed produce, or a failed idle check."""
        interval = self._settings.kafka_health_interval_s
        broken: asyncio.Task[Any] = asyncio.create_task(self._broken.wait())
        probe: asyncio.Task[bool] | None = None
        try:
            while not broken.done():
                done, _ = await asyncio.wait({broken}, timeout=interval)
                if done:
                    return
                # A produce failing while the probe runs must end the watch at once too.
                probe = asyncio.create_task(self._probe(producer))
                await asyncio.wait({broken, probe}, return_when=asyncio.FIRST_COMPLETED)
                if probe.done() and not probe.result():
                    return
        finally:
            for task in (broken, probe):
                if task is not None:
                    task.cancel()

    async def _probe(self, producer: AIOKafkaProducer) -> bool:
        """Whether the cluster answers a metadata request within the request timeout (and, when
        producing without idempotence, still lists the topic)."""
        s = self._settings
        try:
            async with asyncio.timeout(s.kafka_request_timeout_s):
                metadata = await producer.client.fetch_all_metadata()
            # An idle service notices a broker that lost the topic here, before the next call.
            self._raise_if_topic_lost(metadata)
        except Exception as exc:
            log.warning("lost Kafka at %s (%s)", s.kafka_bootstrap_servers, _describe(exc))
            return False
        return True

    async def _connect(self) -> AIOKafkaProducer:
        await self._ensure_topic()
        if self._idempotence == "off":
            return await self._start_producer(idempotent=False)
        try:
            return await self._start_producer(idempotent=True)
        except KafkaError as exc:
            # Unreachable brokers and retriable answers (coordinator loading) are tried again
            # as they are; a definite refusal is remembered for the life of the process.
            if self._idempotence == "on" or exc.retriable:
                raise
            self._idempotence = "off"
            log.warning(
                "Kafka refused an idempotent producer (%s); producing with acks=all without "
                "idempotence (KAFKA_IDEMPOTENCE=auto)",
                _describe(exc),
            )
            return await self._start_producer(idempotent=False)

    async def _start_producer(self, *, idempotent: bool) -> AIOKafkaProducer:
        s = self._settings
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            client_id="logging_service",
            acks="all",
            enable_idempotence=idempotent,
            request_timeout_ms=s.kafka_request_timeout_ms,
            max_batch_size=256 * 1024,
            linger_ms=5,
        )
        try:
            async with asyncio.timeout(s.kafka_request_timeout_s * 2):
                await producer.start()
        except BaseException:
            await self._close(producer)
            raise
        return producer

    async def _ensure_topic(self) -> None:
        """Create the topic if it is missing (TopicAlreadyExists is success)."""
        s = self._settings
        admin = AIOKafkaAdminClient(
            bootstrap_servers=s.kafka_bootstrap_servers,
            client_id="logging_service-admin",
            request_timeout_ms=s.kafka_request_timeout_ms,
        )
        try:
            async with asyncio.timeout(s.kafka_request_timeout_s * 2):
                await admin.start()
                response = await admin.create_topics(
                    [NewTopic(s.kafka_topic, s.kafka_topic_partitions, s.kafka_topic_replication)]
                )
                for _topic, code, *_ in response.topic_errors:
                    if code not in (0, _TOPIC_EXISTS) and s.kafka_topic not in (
                        await admin.list_topics()
                    ):
                        raise KafkaError(f"cannot create topic {s.kafka_topic!r}: error {code}")
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(s.kafka_request_timeout_s):
                    await admin.close()

    async def _close(self, producer: AIOKafkaProducer) -> None:
        """Flush and close `producer`; give up after the request timeout (Kafka may be gone)."""
        try:
            async with asyncio.timeout(self._settings.kafka_request_timeout_s):
                await producer.stop()
        except Exception as exc:
            log.warning("Kafka producer did not close cleanly (%s)", _describe(exc))


class ProduceBatch:
    """Records of one StreamLogs or StreamLogBatches call on their way to Kafka, all through the
    same producer."""

    def __init__(self, owner: LogProducer, producer: AIOKafkaProducer) -> None:
        self._owner = owner
        self._producer = producer
        self._futures: list[asyncio.Future[Any]] = []
        self._topic_checked_at: float | None = None

    async def add_many(self, records: Iterable[pb.LogRecord]) -> None:
        """Hand records, as received, to the producer; each is sanitized on the way
        (`records.to_kafka`). One bounded wait (KAFKA_PRODUCE_TIMEOUT_S) covers all of them."""
        s = self._owner._settings
        producer = self._producer
        if not self._owner._is_current(producer):
            raise KafkaUnavailable("the Kafka connection was lost")
        topic = s.kafka_topic
        futures = self._futures
        try:
            async with asyncio.timeout(s.kafka_produce_timeout_s):
                # Not once per call: a broker restarted empty between two messages lost what
                # the call took before, which its answer would acknowledge.
                now = asyncio.get_running_loop().time()
                checked = self._topic_checked_at
                if checked is None or now - checked >= _TOPIC_RECHECK_S:
                    await self._owner._confirm_topic(producer)
                    self._topic_checked_at = now
                # Keyed by request id so one request's records share a partition; a record
                # without one gets a null key and the producer's default partitioning. With a
                # single partition every key maps to it, and we pack the Kafka batches ourselves.
                partitions = await producer.partitions_for(topic)
                if len(partitions) == 1:
                    await self._add_batched(records, topic, next(iter(partitions)))
                    return
                for record in records:
                    key, value = to_kafka(record)
                    futures.append(await producer.send(topic, value, key=key))
        except Exception as exc:
            self._owner._mark_broken(producer, exc)
            raise KafkaUnavailable(f"Kafka did not take the record: {_describe(exc)}") from exc

    async def _add_batched(
        self, records: Iterable[pb.LogRecord], topic: str, partition: int
    ) -> None:
        """Records for one partition, packed into Kafka batches by us: one future per batch
        (aiokafka's max_batch_size) instead of a `send()` coroutine and a future per record."""
        producer, futures = self._producer, self._futures
        builder = producer.create_batch()
        for record in records:
            key, value = to_kafka(record)
            if builder.append(key=key, value=value, timestamp=None) is None:
                # Full. Closed, so that nothing but our records travels in it; a new batch
                # always takes its first record, however large.
                builder.close()
                futures.append(await producer.send_batch(builder, topic, partition=partition))
                builder = producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)
        if builder.record_count():
            builder.close()
            futures.append(await producer.send_batch(builder, topic, partition=partition))

    async def acknowledged(self, within_s: float | None = None) -> None:
        """Wait until Kafka acknowledged every record: at most KAFKA_PRODUCE_TIMEOUT_S in all,
        or `within_s` when that is shorter (what is left of the caller's deadline)."""
        if not self._futures:
            return
        limit = self._owner._settings.kafka_produce_timeout_s
        if within_s is not None:
            limit = max(min(limit, within_s), 0.0)
        # One deadline for all. aiokafka resolves the futures of one Kafka batch together, so
        # waiting for the first pending one usually finds many after it done: far fewer waits
        # (and done-callbacks) than records.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        for future in self._futures:
            if not future.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await asyncio.wait((future,), timeout=remaining)
        failure: BaseException | None = None
        for future in self._futures:
            if not future.done():
                failure = TimeoutError("no acknowledgement within the produce timeout")
            elif future.cancelled():
                failure = KafkaUnavailable("produce cancelled")
            else:
                failure = future.exception()
            if failure is not None:
                break
        if failure is not None:
            self._owner._mark_broken(self._producer, failure)
            raise KafkaUnavailable(f"Kafka did not acknowledge: {_describe(failure)}")
        self._futures = []

    def abandon(self) -> None:
        """Forget the records (client gone, limit hit, failure); their futures resolve later."""
        discard(self._futures)
        self._futures = []


def discard(futures: Iterable[asyncio.Future[Any]]) -> None:
    """Retrieve the results of abandoned futures (now or once done), so asyncio stays quiet."""
    for future in futures:
        future.add_done_callback(retrieve)


def _describe(exc: BaseException) -> str:
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}" if text else name
