"""The /graphql endpoint: Strawberry's ASGI view with our context and strict HTTP transport rules.

Before Strawberry sees a request:

- POST bodies must be `application/json` (415 otherwise: no form posts, so no CSRF by a plain
  HTML form) and at most REQUEST_MAX_BYTES long (413, refused before a byte is parsed);
- GET query strings are bounded the same way (414);
- a POST body must be one JSON object within the nesting bound of gateway.jsonbody: a batch
  (a JSON array) or anything else is a 400.

A POSTed query or mutation whose document passed before runs on the fast path
(gateway.graphql.fastpath); everything else goes through Strawberry's view, where JSON (the
`variables` of a GET, WebSocket messages) is parsed with the same bound, and a mutation over
GET is a 405 naming POST. Each of these answers is
JSON in the GraphQL shape, `{"errors": [{"message", "extensions": {"code"}}]}`, with its HTTP
status.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UnsetType

from gateway.errors import ApiError
from gateway.graphiql import graphiql_response
from gateway.graphql.context import Context
from gateway.graphql.fastpath import FastPath
from gateway.graphql.persisted import PersistedQueries, PersistedQueryError
from gateway.graphql.websocket import GraphQLTransportWSHandler
from gateway.jsonbody import JSONRejected, loads, read_body, require_json
from gateway.metrics import FAST_PATH, FULL_PATH
from gateway.rest.common import json_response
from gateway.runtime import Runtime

# The POST body `_handle` parsed, so Strawberry's own parse of the same bytes is free.
_checked_body: contextvars.ContextVar[tuple[bytes, Any] | None] = contextvars.ContextVar(
    "checked_body", default=None
)


class JSONBytes(Response):
    """A 200 with a JSON body already encoded: two ASGI messages and nothing else (the
    fast path's answer, sent thousands of times a second)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(self.body)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    """A transport-level refusal of a GraphQL request, in the GraphQL error shape."""
    body = {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
    return json_response(body, error.http_status, headers)


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context, an offline GraphiQL page and the rules above."""

    graphql_transport_ws_handler_class = GraphQLTransportWSHandler

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        self.max_bytes = runtime.settings.request_max_bytes
        self.max_json_depth = runtime.settings.json_max_depth
        self.persisted = PersistedQueries(
            max_entries=runtime.settings.persisted_queries_max,
            max_chars=runtime.settings.persisted_queries_max_chars,
        )
        self.fast_path = FastPath(self.schema, self.persisted)

    def encode_json(self, data: object) -> str:
        """JSON for Strawberry's own answers, by orjson, as text.

        Text, not bytes: Strawberry sends bytes over a WebSocket as a binary frame, and the
        graphql-transport-ws protocol (and so every browser client) needs text frames. The
        fast path, which answers most requests, writes orjson's bytes directly instead.
        """
        return orjson.dumps(data).decode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        headers: dict[str, str] = {}
        response: Response | JSONBytes
        try:
            response = await self._handle(request)
        except ApiError as exc:
            if exc.http_status == 405:
                headers["Allow"] = "POST"
            response = error_response(exc, headers)
        except HTTPException as exc:
            # Strawberry's own refusals (no query, bad `variables`, ambiguous operation, …).
            response = error_response(ApiError.http(exc.status_code, exc.reason))
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response | JSONBytes:
        if request.method == "POST":
            require_json(request)
            body = await read_body(request, self.max_bytes)
            payload = self.parse_json(body)
            _checked_body.set((body, payload))
            if isinstance(payload, list):
                raise ApiError.http(400, "batched operations are not accepted")
            if not isinstance(payload, dict):
                raise ApiError.http(400, "the body must be a JSON object")
            answer = await self.fast_path.run(payload, lambda: self.get_context(request))
            if answer is not None:
                FAST_PATH.inc()
                return JSONBytes(orjson.dumps(answer))
            # Strawberry parses the (small, checked) body again from bytes handed back to it.
            request = Request(request.scope, _replay(body, request.receive))
        elif len(request.scope.get("query_string", b"")) > self.max_bytes:
            raise ApiError.http(414, f"the query string is over {self.max_bytes} bytes")
        FULL_PATH.inc()
        return await self.run(request)

    def parse_json(self, data: str | bytes) -> Any:
        """A request body or GET `variables`: bounded JSON, or a 400."""
        checked = _checked_body.get()
        if checked is not None and checked[0] == data:
            # The body this request's checks already parsed: Strawberry asks again.
            return checked[1]
        try:
            return loads(data, max_depth=self.max_json_depth)
        except JSONRejected as exc:
            raise ApiError.http(400, str(exc)) from None

    def decode_json(self, data: str | bytes) -> object:
        """A WebSocket message: bounded JSON; Strawberry closes the socket on a decode error."""
        try:
            return loads(data, max_depth=self.max_json_depth)
        except JSONRejected as exc:
            raise json.JSONDecodeError(str(exc), "", 0) from None

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: Any,
    ) -> ExecutionResult:
        try:
            query = self.persisted.resolve(request_data.query, request_data.extensions)
        except PersistedQueryError as exc:
            return ExecutionResult(data=None, errors=[exc.error])
        if query is not request_data.query:
            request_data = dataclasses.replace(request_data, query=query)
        try:
            result = await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                # A mutation over GET: the method is what is wrong (GraphQL over HTTP, §6.4.1).
                raise ApiError.http(405, exc.reason) from None
            raise
        # A registration is kept only once its document parsed, validated and passed the
        # limits: a document refused anyway must not take (or evict) a place in the store.
        if query and self.fast_path.passed(query):
            self.persisted.keep(query, request_data.extensions)
        return result

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        return Context.create(self.runtime.scope_for(request), self.runtime, request, response)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Take the bearer token from the connection_init payload, as GraphiQL sends it."""
        params = context.connection_params or {}
        authorization = params.get("Authorization") or params.get("authorization")
        if isinstance(authorization, str):
            context.scope.credentials = self.runtime.tokens.check(authorization)
        return UnsetType()  # acknowledge with no payload

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return graphiql_response(graphql_path="/graphql")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields `body` once, then defers to the real one (for disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
