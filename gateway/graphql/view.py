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
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.types.unset import UnsetType

from gateway.graphql.context import Context
from gateway.graphql.websocket import GraphQLTransportWSHandler
from gateway.jsonbody import JSONRejected, loads
from gateway.runtime import Runtime


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
