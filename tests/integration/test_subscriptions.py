"""Subscriptions work for standard GraphQL clients (graphql-transport-ws, JSON in text frames)."""

from __future__ import annotations

import asyncio

import httpx
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

from tests.conftest import Stack
from tests.factories import admin_token
from tests.graphqlws import RECORDED_REQUEST, GraphQLSocket


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
