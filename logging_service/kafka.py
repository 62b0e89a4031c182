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
from aiokafka.errors import KafkaConnectionError, KafkaError, NodeNotReadyError

from logging_service import metrics
from logging_service.records import to_json
from logging_service.settings import Settings
from protos import logging_service_pb2 as pb

log = logging.getLogger("logging_service.kafka")

ReadyCallback = Callable[[bool], Awaitable[None]]

_TOPIC_EXISTS = 36  # TopicAlreadyExists
_INITIAL_BACKOFF_S = 0.2
# Failures that say "no broker answered", as opposed to "a broker answered no".
_UNREACHABLE = (KafkaConnectionError, NodeNotReadyError, TimeoutError, OSError)


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

    @property
    def idempotent(self) -> bool:
        """Whether producers are (or will first be tried) idempotent."""
        return self._idempotence != "off"

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

    async def send(self, record: pb.LogRecord) -> asyncio.Future[Any]:
        """Hand one record to the producer; the returned future resolves when Kafka acks it."""
        producer = self._producer
        if producer is None or not self._ready:
            raise KafkaUnavailable("Kafka is not connected yet")
        try:
            async with asyncio.timeout(self._settings.kafka_produce_timeout_s):
                future: asyncio.Future[Any] = await producer.send(
                    self._settings.kafka_topic,
                    to_json(record),
                    key=record.request_id.encode() or None,
                )
        except Exception as exc:
            self._mark_broken(exc)
            raise KafkaUnavailable(f"Kafka did not take the record: {_describe(exc)}") from exc
        return future

    async def wait_acknowledged(self, futures: list[asyncio.Future[Any]]) -> None:
        """Wait, at most KAFKA_PRODUCE_TIMEOUT_S in all, until Kafka acknowledged every future."""
        if not futures:
            return
        done, pending = await asyncio.wait(futures, timeout=self._settings.kafka_produce_timeout_s)
        failure: BaseException | None = None
        for future in done:
            if future.cancelled():
                failure = failure or KafkaUnavailable("produce cancelled")
            elif future.exception() is not None:
                failure = failure or future.exception()
        if pending:
            discard(pending)
            failure = failure or TimeoutError("no acknowledgement within the produce timeout")
        if failure is not None:
            self._mark_broken(failure)
            raise KafkaUnavailable(f"Kafka did not acknowledge: {_describe(failure)}")

    def _mark_broken(self, exc: BaseException) -> None:
        """Stop taking records and let the supervisor rebuild the producer."""
        if self._ready:
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
        s = self._settings
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(s.kafka_health_interval_s):
                    await self._broken.wait()
                    return
            try:
                async with asyncio.timeout(s.kafka_request_timeout_s):
                    await producer.client.fetch_all_metadata()
            except Exception as exc:
                log.warning("lost Kafka at %s (%s)", s.kafka_bootstrap_servers, _describe(exc))
                return

    async def _connect(self) -> AIOKafkaProducer:
        await self._ensure_topic()
        if self._idempotence == "off":
            return await self._start_producer(idempotent=False)
        try:
            return await self._start_producer(idempotent=True)
        except _UNREACHABLE:
            raise
        except Exception as exc:
            if self._idempotence == "on":
                raise
            # Only a broker that answered can refuse; remember it for the life of the process.
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


def discard(futures: Iterable[asyncio.Future[Any]]) -> None:
    """Retrieve the eventual results of abandoned futures, so asyncio does not report them."""
    for future in futures:
        future.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _describe(exc: BaseException) -> str:
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}" if text else name
