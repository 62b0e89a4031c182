"""GET /api/v1: the welcome message, the REST twin of GraphQL `welcome`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.graphql.schema import WELCOME
from gateway.rest.common import json_response, route
from gateway.scope import RequestScope


async def welcome(request: Request, scope: RequestScope) -> Response:
    return json_response({"message": WELCOME})


# Through `route`, like every REST route: one log record per call, as `Query.welcome` has.
ROUTES: list[Route] = [route("GET", "/api/v1", welcome, protected=False)]
