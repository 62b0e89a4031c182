"""Matrix, operations (shutdown): SIGTERM under load drains the work in flight, flushes the log
and exits 0; no client whose request was in flight sees an error or a reset."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import httpx
from gql import Client, gql
from gql.transport.exceptions import TransportError
from gql.transport.websockets import WebsocketsTransport

from protos import db_service_pb2 as pb
from protos import db_service_pb2_grpc, logging_service_pb2_grpc
from protos import logging_service_pb2 as log_pb
from tests.conftest import PRODUCTION_HASH_COST, Stack, wait_until
from tests.factories import admin_token, user_data
from tests.graphqlws import RECORDED_REQUEST
from tests.logtopic import read_all, wait_for_records
from tests.ownstack import own_services

LOAD = 10


def _in_flight(metrics: str) -> int:
    for line in metrics.splitlines():
        if line.startswith("gateway_http_requests_in_flight "):
            return int(float(line.split()[1])) - 1  # less the /metrics request itself
    raise AssertionError("no gateway_http_requests_in_flight in /metrics")


async def test_gateway_drains_requests_in_flight_and_flushes_its_log(stack: Stack) -> None:
    # given a gateway serving LOAD registrations at once (each an Argon2 hash in db_service)
    with own_services(stack, ("gateway",)) as own:
        proc = own.processes["gateway"]
        rids = [f"drain-gw-{uuid.uuid4().hex}" for _ in range(LOAD)]
        async with httpx.AsyncClient(base_url=own.gateway_url, timeout=30) as c:
            done: list[httpx.Response] = []

            async def register(rid: str) -> None:
                r = await c.post(
                    "/api/v1/users/create", json=user_data(), headers={"X-Request-ID": rid}
                )
                done.append(r)

            load = asyncio.gather(*(register(rid) for rid in rids))
            # every request has reached the gateway: finished, or counted in flight
            deadline = time.monotonic() + 10
            while len(done) + _in_flight((await c.get("/metrics")).text) < LOAD:
                assert time.monotonic() < deadline, "the load never reached the gateway"
            in_flight_at_sigterm = LOAD - len(done)

            # when it is told to stop
            os.kill(proc.pid, signal.SIGTERM)
            await load
        code = proc.wait(timeout=15)

    # then every request in flight was answered, the process exited 0, and the log was flushed
    assert in_flight_at_sigterm > 0
    assert [r.status_code for r in done] == [201] * LOAD
    assert code == 0, "\n".join(proc.tail())
    await wait_for_records(
        stack.kafka_bootstrap,
        rids,
        lambda groups: all(any(r["service"] == "gateway" for r in groups[rid]) for rid in rids),
    )


async def test_a_stopping_gateway_ends_an_open_subscription_at_once(
    stack: Stack,
) -> None:
    # given gql streaming the log from a gateway of its own (Ctrl-C of `make run` is a SIGTERM
    # to it), with a record received
    with own_services(stack, ("gateway",)) as own:
        proc = own.processes["gateway"]
        async with httpx.AsyncClient(base_url=own.gateway_url, timeout=30) as c:
            transport = WebsocketsTransport(
                url=own.gateway_url.replace("http://", "ws://") + "/graphql",
                init_payload={"Authorization": f"Bearer {await admin_token(c)}"},
                subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            )
            async with Client(transport=transport, fetch_schema_from_transport=False) as session:
                records = session.subscribe(gql("subscription { logs { operation } }"))
                first = asyncio.ensure_future(anext(records))
                while not first.done():  # records flow for calls made once it is live
                    await c.get(RECORDED_REQUEST)
                    await asyncio.wait({first}, timeout=0.5)
                assert first.result()["logs"]["operation"]

                # when the gateway is told to stop
                os.kill(proc.pid, signal.SIGTERM)
                stopped_at = time.monotonic()

                # then the client's stream ends (complete, or the connection's end) at once,
                # not in a hang until the client gives up
                async def rest() -> None:
                    async for _ in records:  # records shipped before the stop may still come
                        pass

                with contextlib.suppress(TransportError):
                    await asyncio.wait_for(rest(), 15)
                ended_after = time.monotonic() - stopped_at
        code = proc.wait(timeout=15)

    # and the gateway still stops cleanly
    assert ended_after < 5, ended_after
    assert code == 0, "\n".join(proc.tail())


async def test_db_service_drains_rpcs_in_flight_and_flushes_its_log(stack: Stack) -> None:
    # given a db_service hashing one password at a time, with LOAD registrations queued
    with own_services(stack, ("db_service",), HASH_CONCURRENCY="1", **PRODUCTION_HASH_COST) as own:
        proc = own.processes["db_service"]
        rids = [f"drain-db-{uuid.uuid4().hex}" for _ in range(LOAD)]
        bodies = [user_data() for _ in range(LOAD)]
        async with grpc.aio.insecure_channel(own.db_addr) as channel:
            stub = db_service_pb2_grpc.DBServiceStub(channel)
            calls = [
                stub.CreateUser(pb.CreateUserRequest(**body), metadata=(("x-request-id", rid),))
                for rid, body in zip(rids, bodies, strict=True)
            ]
            # when SIGTERM arrives once the first has been answered (the rest are in flight)
            first = await asyncio.wait(
                [asyncio.ensure_future(_awaited(c)) for c in calls],
                return_when=asyncio.FIRST_COMPLETED,
            )
            os.kill(proc.pid, signal.SIGTERM)
            results = await asyncio.gather(*(_outcome(c) for c in calls))
        code = proc.wait(timeout=15)
        assert first

    # then every RPC in flight completed, the process exited 0, and the log was flushed
    assert results == ["OK"] * LOAD
    assert code == 0, "\n".join(proc.tail())
    conn = await asyncpg.connect(stack.database_url)
    try:
        created = await conn.fetchval(
            "SELECT count(*) FROM users WHERE sid = ANY($1::text[])", [b["sid"] for b in bodies]
        )
    finally:
        await conn.close()
    assert created == LOAD
    await wait_for_records(
        stack.kafka_bootstrap,
        rids,
        lambda groups: all(any(r["service"] == "db_service" for r in groups[rid]) for rid in rids),
    )


async def _awaited(call: Any) -> None:
    await _outcome(call)


async def _outcome(call: Any) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    return "OK"


async def test_logging_service_drains_streams_in_flight(stack: Stack) -> None:
    # given a logging service with 5 StreamLogs calls open, half their records sent
    topic = f"log-drain-{uuid.uuid4().hex[:8]}"
    release = asyncio.Event()
    with own_services(stack, ("logging_service",), KAFKA_TOPIC=topic) as own:
        proc = own.processes["logging_service"]
        streams = [[_record(f"drain-{s}-{i}") for i in range(100)] for s in range(5)]

        async def records(stream: list[log_pb.LogRecord]) -> AsyncIterator[log_pb.LogRecord]:
            for i, record in enumerate(stream):
                if i == len(stream) // 2:
                    await release.wait()
                yield record

        async with grpc.aio.insecure_channel(own.logging_addr) as channel:
            stub = logging_service_pb2_grpc.LoggingServiceStub(channel)
            calls = [stub.StreamLogs(records(s), timeout=30) for s in streams]
            summaries = asyncio.gather(*calls)

            async def halves_produced() -> bool:
                return len(await read_all(stack.kafka_bootstrap, topic)) >= 5 * 50

            deadline = time.monotonic() + 20
            while not await halves_produced():
                assert time.monotonic() < deadline, "the streams never started"

            # when it is told to stop, and the clients then send the rest of their records
            os.kill(proc.pid, signal.SIGTERM)
            release.set()
            answered = await summaries
        wait_until(lambda: not proc.running, timeout=15, message="logging_service did not exit")

    # then every stream was acknowledged in full, the process exited 0, and all are in Kafka
    assert [a.acknowledged for a in answered] == [100] * 5
    assert proc.returncode == 0, "\n".join(proc.tail())
    produced = {r["event_id"] for r in await read_all(stack.kafka_bootstrap, topic)}
    assert {r.event_id for s in streams for r in s} <= produced


def _record(event_id: str) -> log_pb.LogRecord:
    return log_pb.LogRecord(
        event_id=f"{event_id}-{uuid.uuid4().hex[:6]}",
        ts=time.time(),
        service="test",
        kind="rpc",
        operation="Shutdown.drain",
        user="anonymous",
        outcome="ok",
        duration_ms=1.0,
        request_id=event_id,
    )
