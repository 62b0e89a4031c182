"""Subscriptions on /graphql: Strawberry's ASGI view over graphql-transport-ws.

Only WebSockets reach this view; every GET and POST takes the pipeline
(gateway.graphql.pipeline). WebSocket messages are parsed with the same JSON bounds as request
bodies, and each subscription runs with the schema's extensions: the same limits, records and
error codes as the pipeline applies over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.types.unset import UnsetType

from gateway.clientaddr import IPNetwork, client_address
from gateway.errors import ApiCode, ApiError
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
    """At most `limit` WebSockets open at once in this process (WEBSOCKETS_MAX), and at most
    `per_client` of them from one client address (WEBSOCKETS_PER_CLIENT_MAX; gateway.clientaddr,
    as for the login limits), so that one client cannot hold them all. One more is refused
    before its handshake completes, in the GraphQL error shape with Retry-After: 503 UNAVAILABLE
    past the process's limit, 429 RATE_LIMITED past the client's (a server without ASGI's
    denial-response extension answers 403), and counted."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        *,
        per_client: int | None = None,
        trusted_proxies: Sequence[IPNetwork] = (),
    ) -> None:
        self.app = app
        self.limit = limit
        self.per_client = limit if per_client is None else per_client
        self.trusted_proxies = trusted_proxies
        self.open = 0
        self.by_client: dict[str, int] = {}  # at most `limit` entries: only clients with one open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = client_address(scope, self.trusted_proxies)
        held = self.by_client.get(client, 0)
        if self.open >= self.limit:
            error = ApiError.unavailable(
                f"this gateway has {self.limit} WebSockets open, the most it keeps; retry later"
            )
            await self._refuse(WebSocket(scope, receive, send), error, "process")
            return
        if held >= self.per_client:
            error = ApiError(
                ApiCode.RATE_LIMITED,
                f"this client has {self.per_client} WebSockets open, the most one client may;"
                " close one first",
                http_status=429,
            )
            await self._refuse(WebSocket(scope, receive, send), error, "client")
            return
        self.open += 1
        self.by_client[client] = held + 1
        WEBSOCKETS_OPEN.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= 1
            left = self.by_client[client] - 1
            if left:
                self.by_client[client] = left
            else:
                del self.by_client[client]
            WEBSOCKETS_OPEN.dec()

    async def _refuse(self, websocket: WebSocket, error: ApiError, limit: str) -> None:
        WEBSOCKETS_REFUSED.labels(limit).inc()
        if "websocket.http.response" not in (websocket.scope.get("extensions") or {}):
            # A close before the handshake reaches the client as HTTP 403 (ASGI), without the
            # code: 1013 ("try again later") only says why to whoever reads this.
            await websocket.close(1013)
            return
        error.retry_after_s = _RETRY_AFTER_S
        headers = {"Retry-After": str(_RETRY_AFTER_S)}
        await websocket.send_denial_response(error_response(error, headers))
