"""The gateway application factory: routes, GraphQL, health, and a lifespan owning resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from gateway.graphiql import GRAPHIQL_STATIC_PATH, graphiql_response, graphiql_static_app
from gateway.graphql.context import Context
from gateway.graphql.schema import WELCOME, build_schema
from gateway.middleware import RequestIdMiddleware
from gateway.rest import docs as rest_docs
from gateway.rest import orders as rest_orders
from gateway.rest import products as rest_products
from gateway.rest import users as rest_users
from gateway.rest.common import json_response
from gateway.runtime import Runtime
from gateway.settings import Settings


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context and an offline GraphiQL page."""

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime

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


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    states = await runtime.backends.health(runtime.settings.readiness_timeout_s)
    ready = all(state == "SERVING" for state in states.values())
    body = {"status": "ready" if ready else "not ready", "dependencies": dict(states)}
    return json_response(body, 200 if ready else 503)


async def welcome(request: Request) -> Response:
    return json_response({"message": WELCOME})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app; resources open in the lifespan, so building it is cheap and pure."""
    runtime = Runtime(settings)
    graphql = GraphQLView(
        runtime,
        schema=build_schema(),
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        allow_queries_via_get=True,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/api/v1", welcome, methods=["GET"]),
        *rest_users.ROUTES,
        *rest_products.ROUTES,
        *rest_orders.ROUTES,
        *rest_docs.ROUTES,
        Route("/graphql", graphql, methods=["GET", "POST"]),
        # Subscriptions (graphql-transport-ws) on the same path.
        WebSocketRoute("/graphql", graphql),
    ]
    if settings.graphiql_enabled:
        routes.append(Mount(GRAPHIQL_STATIC_PATH, graphiql_static_app()))
    app = Starlette(routes=routes, middleware=[Middleware(RequestIdMiddleware)], lifespan=lifespan)
    app.state.runtime = runtime
    return app
