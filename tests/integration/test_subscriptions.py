"""Subscriptions work for standard GraphQL clients (graphql-transport-ws, JSON in text frames)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
import httpx
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

from protos import logging_service_pb2 as pb
from protos import logging_service_pb2_grpc
from tests.conftest import Stack
from tests.factories import admin_token, change_password, make_user
from tests.graphqlws import RECORDED_REQUEST, GraphQLSocket
from tests.logtopic import read_all


async def test_gql_websocket_client_receives_a_log_record(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given the gql client's WebSocket transport, speaking graphql-transport-ws with an admin token
    transport = WebsocketsTransport(
        url=stack.gateway_url.replace("http://", "ws://") + "/graphql",
        init_payload={"Authorization": f"Bearer {await admin_token(client)}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    received = asyncio.Event()

    async def call_until_received() -> None:
        # Records flow only for calls made after the subscription went live.
        while not received.is_set():
            await client.get(RECORDED_REQUEST)
            try:
                await asyncio.wait_for(received.wait(), 0.5)
            except TimeoutError:
                continue

    # when it subscribes to the log stream while requests are being made
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        caller = asyncio.create_task(call_until_received())
        try:
            results = session.subscribe(gql("subscription { logs { operation } }"))
            first = await asyncio.wait_for(anext(results), 30)
            received.set()
            await results.aclose()
        finally:
            received.set()
            await caller

    # then it receives a record
    assert isinstance(first["logs"]["operation"], str)
    assert first["logs"]["operation"]


async def test_delivering_log_records_records_nothing_more(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given an admin streaming the log over a socket, with one request's records delivered
    async with GraphQLSocket.open(stack.gateway_url, await admin_token(client)) as socket:
        await socket.subscribe("1", "subscription { logs { operation } }")
        await socket.messages_while_calling(client, "1", until="next", within=10)

        # when no one calls the gateway any more
        tail = await socket.messages_until_quiet("1", quiet_s=2, within=15)

    # then the stream goes quiet: a delivered record is not itself a call that makes a record
    delivered = [m["payload"]["data"]["logs"]["operation"] for m in tail]
    assert "Subscription.logs" not in delivered


async def _refusal(stack: Stack, token: str) -> dict[str, Any]:
    """The message that answers a `logs` subscription made with `token`."""
    async with GraphQLSocket.open(stack.gateway_url, token) as socket:
        await socket.subscribe("1", "subscription { logs { operation } }")
        message = await socket.receive(within=10)
    assert message["id"] == "1"
    return message


async def test_a_refused_logs_subscription_is_recorded(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a customer, and another whose token a password change revoked
    customer, revoked = await make_user(client), await make_user(client)
    await change_password(client, revoked)

    # when each asks to watch the log
    forbidden = await _refusal(stack, customer.token)
    stale = await _refusal(stack, revoked.token)

    # then each is refused with the protocol's error message: the customer is not an admin,
    # and the revoked token is no longer anyone's (as over HTTP: authentication comes first)
    assert [forbidden["type"], stale["type"]] == ["error", "error"]
    assert forbidden["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    assert stale["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # and each attempt to read the log has its record, as every refused call has
    def attempts(records: list[dict[str, Any]]) -> dict[str, str]:
        return {
            r["user"]: r["outcome"]
            for r in records
            if r["operation"] == "Subscription.logs" and r["user"] in (customer.sid, revoked.sid)
        }

    deadline = time.monotonic() + 30
    while len(found := attempts(await read_all(stack.kafka_bootstrap))) < 2:
        assert time.monotonic() < deadline, f"records of the refusals: {found}"
        await asyncio.sleep(0.2)  # the polling interval of a wait bounded by the deadline
    assert found == {customer.sid: "FORBIDDEN", revoked.sid: "UNAUTHENTICATED"}


async def test_a_re_sent_record_reaches_a_subscriber_once(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given an admin streaming the log, live
    async with GraphQLSocket.open(stack.gateway_url, await admin_token(client)) as socket:
        await socket.subscribe("1", "subscription { logs { eventId operation } }")
        await socket.messages_while_calling(client, "1", until="next", within=10)

        # when a record reaches the topic twice (its batch re-sent, same event_id), then another
        marker = f"Test.resent-{uuid.uuid4().hex[:8]}"
        twice = pb.LogRecord(
            event_id=uuid.uuid4().hex,
            ts=time.time(),
            service="gateway",
            kind="graphql",
            operation=marker,
            user="anonymous",
            outcome="ok",
        )
        last = pb.LogRecord(event_id=uuid.uuid4().hex, ts=time.time(), service="gateway",
                            kind="graphql", operation=f"{marker}-end", user="anonymous",
                            outcome="ok")  # fmt: skip
        async with grpc.aio.insecure_channel(stack.logging_addr) as channel:
            stub = logging_service_pb2_grpc.LoggingServiceStub(channel)
            await stub.StreamLogs(iter([twice, twice, last]), timeout=10)
        operations = []
        deadline = time.monotonic() + 15
        while f"{marker}-end" not in operations and time.monotonic() < deadline:
            message = await socket.receive(within=15)
            if message.get("id") == "1" and message["type"] == "next":
                operations.append(message["payload"]["data"]["logs"]["operation"])

    # then the subscriber sees it once (delivery is at least once; readers deduplicate)
    assert operations.count(marker) == 1, operations
