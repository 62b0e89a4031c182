"""Subscriptions on /graphql: Strawberry's ASGI view over graphql-transport-ws.

Only WebSockets reach this view; every GET and POST takes the pipeline
(gateway.graphql.pipeline). WebSocket messages are parsed with the same JSON bounds as request
bodies, and each subscription runs with the schema's extensions: the same limits, records and
error codes as the pipeline applies over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.types.unset import UnsetType

from gateway.errors import ApiError
from gateway.graphql.context import Context
from gateway.graphql.errors import error_response
from gateway.graphql.websocket import GraphQLTransportWSHandler
from gateway.jsonbody import JSONRejected, loads
from gateway.metrics import WEBSOCKETS_OPEN, WEBSOCKETS_REFUSED
from gateway.runtime import Runtime

# What a refused upgrade tells the client to wait before trying again.
_RETRY_AFTER_S = 1


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context and bounded JSON, for WebSockets."""

    graphql_transport_ws_handler_class = GraphQLTransportWSHandler

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        self.max_json_depth = runtime.settings.json_max_depth

    def encode_json(self, data: object) -> str:
        """JSON by orjson, as text: Strawberry sends bytes over a WebSocket as a binary frame,
        and the graphql-transport-ws protocol (and so every browser client) needs text frames."""
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        """A WebSocket message: bounded JSON; Strawberry closes the socket on a decode error."""
        try:
            return loads(data, max_depth=self.max_json_depth)
        except JSONRejected as exc:
            raise json.JSONDecodeError(str(exc), "", 0) from None

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        return Context.create(self.runtime.scope_for(request), self.runtime, request, response)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Take the bearer token from the connection_init payload, as GraphiQL sends it."""
        params = context.connection_params or {}
        authorization = params.get("Authorization") or params.get("authorization")
        if isinstance(authorization, str):
            context.scope.credentials = self.runtime.tokens.check(authorization)
        return UnsetType()  # acknowledge with no payload


class WebSocketLimit:
    """At most `limit` WebSockets open at once in this process (WEBSOCKETS_MAX): one more is
    refused before its handshake completes, with HTTP 503, Retry-After and the GraphQL error
    shape (a server without ASGI's denial-response extension answers 403), and counted."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.open >= self.limit:
            WEBSOCKETS_REFUSED.inc()
            await self._refuse(WebSocket(scope, receive, send))
            return
        self.open += 1
        WEBSOCKETS_OPEN.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= 1
            WEBSOCKETS_OPEN.dec()

    async def _refuse(self, websocket: WebSocket) -> None:
        if "websocket.http.response" not in websocket.scope.get("extensions", {}):
            # A close before the handshake reaches the client as HTTP 403 (ASGI), without the
            # code: 1013 ("try again later") only says why to whoever reads this.
            await websocket.close(1013)
            return
        error = ApiError.unavailable(
            f"this gateway has {self.limit} WebSockets open, the most it keeps; retry later"
        )
        error.retry_after_s = _RETRY_AFTER_S
        headers = {"Retry-After": str(_RETRY_AFTER_S)}
        await websocket.send_denial_response(error_response(error, headers))
