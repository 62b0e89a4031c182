"""The gateway application factory: routes, GraphQL, health, and a lifespan owning resources."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gateway.errors import ApiError
from gateway.graphiql import GRAPHIQL_STATIC_PATH, graphiql_static_app
from gateway.graphql.errors import error_response as graphql_error_response
from gateway.graphql.limits import GraphQLLimits
from gateway.graphql.pipeline import GraphQLPipeline
from gateway.graphql.schema import build_schema
from gateway.graphql.view import GraphQLView, WebSocketLimit
from gateway.heap import HeapFreezer
from gateway.middleware import RequestMiddleware
from gateway.rest import docs as rest_docs
from gateway.rest import orders as rest_orders
from gateway.rest import products as rest_products
from gateway.rest import users as rest_users
from gateway.rest import welcome as rest_welcome
from gateway.rest.common import error_response, json_response, resources
from gateway.runtime import Runtime
from gateway.settings import Settings
from logging_service.client import SpoolInUse
from plumbing.workermetrics import summing_registry

log = logging.getLogger("gateway")


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in our error shape (REST, or GraphQL's on /graphql)."""
    assert isinstance(exc, HTTPException)
    message = "no such path" if exc.status_code == 404 else exc.detail
    error = ApiError.http(exc.status_code, message)
    if request.url.path == "/graphql":
        return graphql_error_response(error, dict(exc.headers or {}))
    response = error_response(error)
    response.headers.update(exc.headers or {})
    return response


async def internal_error(request: Request, exc: Exception) -> Response:
    """A bug outside the routes' own handling: 500 with no details (logged by Starlette)."""
    return error_response(ApiError.internal())


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """200 while the gateway can answer requests: db_service is SERVING. The log pipeline
    (logging_service, the spool) failing degrades the log's delivery, not the answers, and a
    load balancer taking every gateway away for it would fail every request: "degraded", 200."""
    runtime: Runtime = request.app.state.runtime
    states = await runtime.backends.health(runtime.settings.readiness_timeout_s)
    ready = states["db_service"] == "SERVING"
    spool = runtime.shipper.stats.degraded
    degraded = bool(spool) or any(state != "SERVING" for state in states.values())
    status = ("degraded" if degraded else "ready") if ready else "not ready"
    body = {"status": status, "dependencies": dict(states), "log_spool": spool or "ok"}
    return json_response(body, 200 if ready else 503)


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    runtime.sample_metrics()  # this worker's share is fresh, the others' at most 1 s old
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)


class GraphQLPosts:
    """POST /graphql straight to the pipeline, past Starlette's router and exception middleware.

    Every GraphQL request takes this path; the router would only find the first route and
    check its method, and the pipeline answers every expected failure itself. What it does
    not expect is logged and answered with a 500 in the GraphQL error shape, no details.
    Everything else goes on down the usual stack (3 % of the gateway's CPU per product(id)).
    """

    def __init__(self, app: ASGIApp, view: ASGIApp) -> None:
        self.app = app
        self.view = view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/graphql":
            await self.app(scope, receive, send)
            return
        try:
            await self.view(scope, receive, send)
        except Exception:
            log.exception("unexpected error in POST /graphql")
            # Had the answer begun, the server refuses this one and ends the connection.
            await graphql_error_response(ApiError.internal())(scope, receive, send)


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app; resources open in the lifespan, so building it is cheap and pure."""
    runtime = Runtime(settings)
    heap = HeapFreezer(young_threshold=settings.gc_young_threshold)
    limits = GraphQLLimits(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_tokens=settings.graphql_max_tokens,
        max_cost=settings.graphql_max_cost,
        introspection=settings.introspection_enabled,
        field_suggestions=settings.field_suggestions_enabled,
    )
    schema = build_schema(limits)
    # Every GET and POST: the one route of a GraphQL request over HTTP.
    graphql = GraphQLPipeline(runtime, schema, limits, graphiql=settings.graphiql_enabled)
    subscriptions = GraphQLView(
        runtime,
        schema=schema,
        graphql_ide=None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await runtime.start()
        except SpoolInUse as exc:
            log.critical("gateway refuses to start: %s", exc)
            # uvicorn only exits 3 on any failed startup; `python -m gateway` tells a supervisor
            # that a restart would meet this one again (EXIT_BAD_CONFIG).
            app.state.refused = True
            raise
        # Last: the schema, modules and channels are the heap to freeze (gateway.heap).
        pause = heap.refreeze()
        log.info("froze the heap at start in %.0f ms", pause * 1000)
        await heap.start()
        try:
            yield
        finally:
            await heap.stop()
            await runtime.stop()

    routes: list[BaseRoute] = [
        # First: the router tries routes in order, and this is the busiest.
        Route("/graphql", graphql, methods=["GET", "POST"]),
        # Subscriptions (graphql-transport-ws) on the same path.
        WebSocketRoute(
            "/graphql",
            WebSocketLimit(
                subscriptions,
                settings.websockets_max,
                per_client=settings.websockets_per_client_max,
                trusted_proxies=settings.trusted_proxies,
            ),
        ),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *rest_welcome.ROUTES,
        *resources(rest_users.ROUTES + rest_products.ROUTES + rest_orders.ROUTES),
        *rest_docs.ROUTES,
    ]
    if settings.graphiql_enabled:
        routes.append(Mount(GRAPHIQL_STATIC_PATH, graphiql_static_app()))
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                RequestMiddleware,
                before_response=runtime.shipper.durable if runtime.shipper.sync else None,
            ),
            Middleware(GraphQLPosts, view=graphql),
        ],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )
    # A path the API does not have is 404 in the API's error shape (README "Security and
    # limits"), not Starlette's 307 to the path without its trailing slash: that redirect has no
    # body, and its Location is built from the client's Host header.
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    # With several workers, any worker answers /metrics with the sum over all of them.
    multiproc_dir = settings.prometheus_multiproc_dir
    app.state.registry = REGISTRY if multiproc_dir is None else summing_registry(multiproc_dir)
    return app
