"""Pure ASGI middleware: request ids, and the count of requests in flight.

Request ids are taken from X-Request-ID when sane, otherwise created, and echoed in the response.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import IN_FLIGHT, WORKER_REQUESTS

HEADER = "x-request-id"
MAX_LENGTH = 128
# Request ids from the OS's random source, as uuid4() takes them, but read 256 ids at a time:
# one system call per 256 requests instead of one per request (uuid4 was 2.4 % of the
# gateway's CPU per product(id)). Unpredictable, so nobody can aim at another's log trail.
_ID_BYTES = 16
_BUFFERED_IDS = 256
_random = bytearray()


def new_request_id() -> str:
    """32 hex digits, like uuid4().hex."""
    global _random
    if not _random:
        _random = bytearray(os.urandom(_ID_BYTES * _BUFFERED_IDS))
    chunk = _random[-_ID_BYTES:]
    del _random[-_ID_BYTES:]
    return chunk.hex()


def _valid(value: str) -> bool:
    # ASCII only: gRPC metadata refuses anything else, and one id travels with other
    # requests' ids in a coalesced call (gateway.coalesce).
    return (
        0 < len(value) <= MAX_LENGTH
        and value.isascii()
        and all(c.isalnum() or c in "-_.:" for c in value)
    )


class RequestMiddleware:
    """Pure ASGI middleware (one layer for both jobs: it runs on every request), so it costs one
    header lookup and works for WebSockets too; only HTTP requests count as in flight.

    `before_response`, when given, is awaited before an HTTP response starts: with
    LOG_DURABILITY=sync it waits until the request's log records are on disk.
    """

    def __init__(
        self, app: ASGIApp, before_response: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.app = app
        self.before_response = before_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _valid(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        header = (HEADER.encode(), request_id.encode("latin-1"))
        WORKER_REQUESTS.inc()
        before_response = self.before_response

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A copy: the app may reuse its header list. The app sets no X-Request-ID.
                message["headers"] = [*message.get("headers", ()), header]
                if before_response is not None:
                    await before_response()
            await send(message)

        if kind == "websocket":
            await self.app(scope, receive, send_with_id)
            return
        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            IN_FLIGHT.dec()
