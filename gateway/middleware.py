"""Pure ASGI middleware: request ids, and the count of requests in flight.

Request ids are taken from X-Request-ID when sane, otherwise created, and echoed in the response.
"""

from __future__ import annotations

import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import IN_FLIGHT

HEADER = "x-request-id"
MAX_LENGTH = 128


def _valid(value: str) -> bool:
    return 0 < len(value) <= MAX_LENGTH and all(c.isalnum() or c in "-_.:" for c in value)


class RequestMiddleware:
    """Pure ASGI middleware (one layer for both jobs: it runs on every request), so it costs one
    header lookup and works for WebSockets too; only HTTP requests count as in flight."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
        request_id = incoming if _valid(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        if kind == "websocket":
            await self.app(scope, receive, send_with_id)
            return
        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            IN_FLIGHT.dec()
