"""A bare graphql-transport-ws client for tests that must see the protocol's messages as sent.

    async with GraphQLSocket.open(stack.gateway_url, token) as socket:
        result = await socket.execute("1", "{ welcome }")

Every frame must be a text frame: the protocol sends JSON as text, and browsers hand a binary
frame to JavaScript as a Blob that `JSON.parse` cannot read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import websockets
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")
# A request that every test stack answers, and that the gateway and db_service both record.
RECORDED_REQUEST = "/api/v1/products/1"


class GraphQLSocket:
    """One graphql-transport-ws connection, acknowledged, speaking JSON text frames."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, gateway_url: str, token: str | None) -> AsyncIterator[GraphQLSocket]:
        url = gateway_url.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(url, subprotocols=[PROTOCOL]) as ws:
            socket = cls(ws)
            payload = {"Authorization": f"Bearer {token}"} if token else {}
            await socket.send({"type": "connection_init", "payload": payload})
            ack = await socket.receive(within=10)
            assert ack["type"] == "connection_ack", ack
            yield socket

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def receive(self, *, within: float) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.ws.recv(), within)
        assert isinstance(frame, str), f"a binary frame: {frame[:80]!r}"
        message: dict[str, Any] = orjson.loads(frame)
        return message

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = variables
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})

    async def execute(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A query or mutation over the socket: its one `next` payload (after its `complete`)."""
        await self.subscribe(op_id, query, variables)
        result: dict[str, Any] | None = None
        while True:
            message = await self.receive(within=10)
            if message.get("id") != op_id:
                continue
            if message["type"] == "next":
                result = message["payload"]
            elif message["type"] == "complete":
                assert result is not None, "complete before any result"
                return result
            else:
                raise AssertionError(f"unexpected message: {message}")

    async def messages_while_calling(
        self, client: httpx.AsyncClient, op_id: str, *, until: str, within: float
    ) -> list[dict[str, Any]]:
        """The messages of `op_id` until one of type `until` arrives, making a recorded request
        whenever the socket is quiet so that a live `logs` subscription has records to send."""
        deadline = time.monotonic() + within
        seen: list[dict[str, Any]] = []
        quiet = True
        while time.monotonic() < deadline:
            if quiet:
                await client.get(RECORDED_REQUEST)
            try:
                message = await self.receive(within=0.5)
            except TimeoutError:
                quiet = True
                continue
            quiet = False
            if message.get("id") != op_id:
                continue
            seen.append(message)
            if message["type"] == until:
                return seen
        kinds = {kind: sum(m["type"] == kind for m in seen) for kind in {m["type"] for m in seen}}
        last = seen[-1] if seen else None
        raise AssertionError(f"no {until!r} message for {op_id} in {within} s: {kinds}, {last}")

    async def messages_until_quiet(
        self, op_id: str, *, quiet_s: float, within: float
    ) -> list[dict[str, Any]]:
        """The messages of `op_id` until none has come for `quiet_s` seconds."""
        deadline = time.monotonic() + within
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                message = await self.receive(within=quiet_s)
            except TimeoutError:
                return seen
            if message.get("id") == op_id:
                seen.append(message)
        ops = sorted({str(m.get("payload")) for m in seen[-3:]})
        raise AssertionError(f"{op_id} never went quiet in {within} s: {len(seen)} messages, {ops}")
