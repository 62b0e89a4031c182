"""Matrix, log pipeline faults: a hung, crashed or Kafka-less logging service fails no request,
slows none, shows in /readyz, and loses no record once it is back; a logging service with no
tail to spare refuses a `logs` subscription as a rate limit.

(tests/integration/test_log_pipeline.py holds the long outages: 10 s of logging service or
broker down, and queue overflow.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from logging_service.servicer import TAIL_RETRY_AFTER_S
from scripts.processes import free_port
from tests.conftest import Stack, start_service, wait_until
from tests.factories import admin_token
from tests.graphqlws import GraphQLSocket
from tests.logtopic import read_all
from tests.ownstack import OwnStack, grpc_status, own_services, wait_started

REQUESTS = 10
SLOW_S = 1.0  # no request may take this long because of logging


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> Iterator[OwnStack]:
    """A logging service producing to a topic of its own, and a gateway shipping to it."""
    with own_services(
        stack,
        ("logging_service", "gateway"),
        KAFKA_TOPIC=f"log-faults-{uuid.uuid4().hex[:8]}",
        KAFKA_PRODUCE_TIMEOUT_S="2",
        READINESS_TIMEOUT_S="0.5",
        LOG_TAILS_MAX="1",
    ) as own:
        yield own


async def _traffic(url: str, tag: str) -> tuple[list[int], float, list[str]]:
    """REQUESTS requests, half REST, half GraphQL: (statuses, slowest seconds, request ids)."""
    statuses, slowest, ids = [], 0.0, []
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        for i in range(REQUESTS):
            rid = f"{tag}-{i}-{uuid.uuid4().hex[:8]}"
            started = time.monotonic()
            if i % 2:
                r = await c.get("/api/v1/products", headers={"X-Request-ID": rid})
            else:
                r = await c.post(
                    "/graphql", json={"query": "{ welcome }"}, headers={"X-Request-ID": rid}
                )
            slowest = max(slowest, time.monotonic() - started)
            statuses.append(r.status_code)
            ids.append(rid)
    return statuses, slowest, ids


async def _arrived(bootstrap: str, topic: str, ids: list[str], within: float = 30) -> set[str]:
    """Which of `ids` have a record in the topic, once all do (or at the deadline)."""
    deadline = time.monotonic() + within
    while True:
        found = {r["request_id"] for r in await read_all(bootstrap, topic)} & set(ids)
        if found == set(ids) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)  # the polling interval of a wait bounded by the deadline


async def _readiness(url: str) -> tuple[int, str, str]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        ready = await c.get("/readyz")
    body = ready.json()
    return ready.status_code, body["status"], body["dependencies"]["logging_service"]


@pytest.mark.parametrize(
    ("fault", "readiness"), [("hung", "UNREACHABLE"), ("crashed", "UNREACHABLE")]
)
async def test_a_broken_logging_service_fails_and_slows_no_request(
    pipeline: OwnStack, stack: Stack, fault: str, readiness: str
) -> None:
    # given the logging service hung (SIGSTOP) or crashed (SIGKILL)
    proc = pipeline.processes["logging_service"]
    if fault == "hung":
        proc.pause()
    else:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    try:
        # when users keep calling the gateway
        statuses, slowest, ids = await _traffic(pipeline.gateway_url, fault)
        status = await _readiness(pipeline.gateway_url)
    finally:
        # and the logging service comes back (the same one, or a new one on its port)
        if fault == "hung":
            proc.resume()
        else:
            pipeline.processes["logging_service"] = start_service(
                "logging_service", pipeline.env, stack.log_dir
            )
        wait_started(pipeline)

    # then no request failed or waited on logging, and no record was lost; readiness said
    # degraded and why, but stayed 200: a load balancer must not take away a gateway that
    # answers every request (all of them, when the logging service is down for all)
    assert statuses == [200] * REQUESTS
    assert slowest < SLOW_S
    assert status == (200, "degraded", readiness)
    arrived = await _arrived(stack.kafka_bootstrap, pipeline.env["KAFKA_TOPIC"], ids)
    assert arrived == set(ids)


async def test_a_logging_service_without_kafka_fails_and_slows_no_request(stack: Stack) -> None:
    # given a logging service whose broker address has nothing listening, so never SERVING
    address = f"127.0.0.1:{free_port()}"
    with own_services(
        stack, ("gateway",), LOGGING_SERVICE_ADDR=address, SHUTDOWN_GRACE_S="1"
    ) as own:
        env = dict(
            own.env,
            LOGGING_SERVICE_LISTEN=address,
            KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
            SHUTDOWN_GRACE_S="0.5",  # its streams wait on Kafka: do not wait on them at the end
        )
        logging_service = start_service("logging_service", env, stack.log_dir)
        try:
            wait_until(
                lambda: grpc_status(address) == "NOT_SERVING",
                timeout=30,
                message="the Kafka-less logging service never answered",
            )
            # when users call a gateway shipping to it
            statuses, slowest, _ = await _traffic(own.gateway_url, "no-kafka")
            status = await _readiness(own.gateway_url)
        finally:
            logging_service.stop(timeout=10)

    # then every request succeeded promptly, and readiness (degraded, 200) named the service
    assert statuses == [200] * REQUESTS
    assert slowest < SLOW_S
    assert status == (200, "degraded", "NOT_SERVING")


async def test_a_logs_subscription_past_the_tail_limit_is_rate_limited(
    pipeline: OwnStack, client: httpx.AsyncClient
) -> None:
    # given a logging service that keeps one tail open (LOG_TAILS_MAX=1), held by a `logs`
    # subscription that is live (it has received a record)
    logs = "subscription { logs { operation } }"
    token = await admin_token(client)
    async with (
        httpx.AsyncClient(base_url=pipeline.gateway_url, timeout=10) as own,
        GraphQLSocket.open(pipeline.gateway_url, token) as socket,
    ):
        await socket.subscribe("held", logs)
        await socket.messages_while_calling(own, "held", until="next", within=30)
        # when another subscribes
        await socket.subscribe("refused", logs)
        messages = await socket.messages_while_calling(own, "refused", until="complete", within=10)
    # then it ends, as a stream that fails does (a result with the error, then `complete`), with
    # the error coded by the one table as a rate limit (RESOURCE_EXHAUSTED with logging_service's
    # code) and when to retry; until 2026-12-07 it was UNAVAILABLE, whatever TailLogs answered
    assert [m["type"] for m in messages] == ["next", "complete"]
    (error,) = messages[0]["payload"]["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": TAIL_RETRY_AFTER_S}
    assert "log tails are open at once" in error["message"]
