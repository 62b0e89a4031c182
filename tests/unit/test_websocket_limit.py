"""WebSocketLimit: the count of open sockets, and a refusal on servers without denial responses."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from gateway.graphql.view import WebSocketLimit


def _scope(**extra: Any) -> Scope:
    return {"type": "websocket", "path": "/graphql", "headers": [], **extra}


async def _connect() -> Message:
    return {"type": "websocket.connect"}


async def test_a_server_without_denial_responses_gets_a_close_try_again_later() -> None:
    held = asyncio.Event()
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        held.set()
        await release.wait()

    limit = WebSocketLimit(app, 1)
    first = asyncio.create_task(limit(_scope(), _connect, _ignore))
    await asyncio.wait_for(held.wait(), 5)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    # given one socket open of one allowed, on a server that cannot answer an upgrade itself
    await limit(_scope(), _connect, send)
    # then the next is closed before its handshake with 1013, "try again later"
    assert sent == [{"type": "websocket.close", "code": 1013, "reason": ""}]
    release.set()
    await asyncio.wait_for(first, 5)
    assert limit.open == 0  # and a socket that ends is no longer counted


async def _ignore(message: Message) -> None:
    return None
