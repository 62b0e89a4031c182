"""Fixtures and helpers for the logging pipeline tests: a real LoggingServiceApp on a free port,
in this test process and event loop, producing to its own topic on the session's Tansu broker."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import grpc
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from grpc_health.v1 import health_pb2, health_pb2_grpc

from db_service.migrate import apply_migrations
from logging_service.server import LoggingServiceApp
from logging_service.settings import Settings
from protos import logging_service_pb2 as pb
from scripts.infra import EmbeddedPostgres, TansuBroker, free_port

Serving = health_pb2.HealthCheckResponse.ServingStatus


def log_settings(bootstrap: str, *, listen: str = "127.0.0.1:0", **overrides: Any) -> Settings:
    """Settings for a test server: its own topic, short timeouts, fast reconnects."""
    values: dict[str, Any] = {
        "merch_env": "development",
        "logging_service_listen": listen,
        "kafka_bootstrap_servers": bootstrap,
        "kafka_topic": f"log-test-{uuid.uuid4().hex[:12]}",
        "kafka_idempotence": "auto",
        "kafka_request_timeout_s": 2.0,
        "kafka_produce_timeout_s": 5.0,
        "kafka_health_interval_s": 0.5,
        "kafka_retry_backoff_max_s": 0.3,
        "shutdown_grace_s": 1.0,
        "logging_metrics_port": 0,
    }
    values.update(overrides)
    return Settings(**values)


def make_record(n: int = 0, **overrides: Any) -> pb.LogRecord:
    """A LogRecord as the gateway would send it, unique per call."""
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "ts": time.time(),
        "service": "gateway",
        "kind": "graphql",
        "operation": "Mutation.placeOrder",
        "user": "12113053",
        "outcome": "ok",
        "duration_ms": 1.5 + n,
        "request_id": f"req-{uuid.uuid4().hex[:8]}-{n}",
    }
    fields.update(overrides)
    return pb.LogRecord(**fields)


async def wait_for(
    predicate: Callable[[], Awaitable[bool] | bool], *, within: float, message: str
) -> None:
    """Poll `predicate` until it holds; fail with `message` at the deadline."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if await result if inspect.isawaitable(result) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s: {message}")
        await asyncio.sleep(0.02)


async def health_status(target: str, service: str = "") -> Serving:
    """The server's health answer for `service`."""
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
    return reply.status


async def wait_serving(target: str, within: float = 15.0) -> None:
    async def serving() -> bool:
        return await health_status(target) == health_pb2.HealthCheckResponse.SERVING

    await wait_for(serving, within=within, message=f"{target} never became SERVING")


async def read_topic(bootstrap: str, topic: str, *, count: int, within: float = 10.0) -> list[Any]:
    """Every message of partition 0 of `topic`, once at least `count` are there (deadline)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, request_timeout_ms=3000)
    tp = TopicPartition(topic, 0)
    messages: list[Any] = []
    await asyncio.wait_for(consumer.start(), within)
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + within
        while len(messages) < count or consumer.highwater(tp) != messages[-1].offset + 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: {len(messages)} of {count} records in {within} s")
            batch = await consumer.getmany(tp, timeout_ms=200)
            messages.extend(batch.get(tp, []))
    finally:
        await asyncio.wait_for(consumer.stop(), within)
    return messages


def event_ids(messages: list[Any]) -> list[str]:
    return [orjson.loads(m.value)["event_id"] for m in messages]


@contextlib.asynccontextmanager
async def database_of_its_own(
    postgres: EmbeddedPostgres, name: str, *, max_size: int
) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a migrated database that no other test and no db_service uses, named `name`
    and a random suffix: its tables hold only (and in the order of) what the test writes."""
    url = postgres.ensure_database(f"{name}_{uuid.uuid4().hex[:8]}")
    async with asyncpg.create_pool(url, min_size=1, max_size=max_size) as pool:
        await apply_migrations(pool)
        yield pool


@pytest.fixture
async def own_broker() -> AsyncIterator[TansuBroker]:
    """A broker of the test's own, which the test may stop and start again on the same port."""
    own = TansuBroker(free_port(), die_with_parent=True)
    await asyncio.to_thread(own.start)
    try:
        yield own
    finally:
        await asyncio.to_thread(own.stop)


@pytest.fixture
async def logging_app(broker: TansuBroker) -> AsyncIterator[tuple[LoggingServiceApp, str]]:
    """A started logging service connected to the session broker: (app, "127.0.0.1:port")."""
    app = LoggingServiceApp(log_settings(broker.bootstrap_servers))
    port = await app.start()
    target = f"127.0.0.1:{port}"
    try:
        await wait_serving(target)
        yield app, target
    finally:
        await app.stop(1.0)
