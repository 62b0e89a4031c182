"""/api/v1/users routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import protos.db_service_pb2 as pb
from gateway.operations import users as ops
from gateway.rest.common import fields, iso, json_response, log_message, query_int, read_json, route
from gateway.scope import RequestScope

_ROLE = {pb.ROLE_CUSTOMER: "customer", pb.ROLE_ADMIN: "admin"}


def user_json(user: pb.User) -> dict[str, Any]:
    return {
        "id": user.id,
        "sid": user.sid,
        "username": user.username,
        "email": user.email,
        "role": _ROLE.get(user.role, "customer"),
        "is_active": user.is_active,
        "created_at": iso(user.created_at),
    }


async def create_user(request: Request, scope: RequestScope) -> Response:
    body = fields(await read_json(request), required=("sid", "username", "email", "password"))
    user = await ops.register(scope, **body)
    log_message(request, f"User '{user.username}' is created")
    return json_response(user_json(user), 201)


async def login(request: Request, scope: RequestScope) -> Response:
    body = fields(await read_json(request), required=("username", "password"))
    reply = await ops.login(scope, username=body["username"], password=body["password"])
    log_message(request, f"User {reply.user.username} successfully logged in")
    return json_response(
        {
            "token": reply.token,
            "token_type": reply.token_type,
            "expires_in": reply.expires_in,
            "user": user_json(reply.user),
        }
    )


async def list_users(request: Request, scope: RequestScope) -> Response:
    reply = await ops.list_users(
        scope,
        page_size=query_int(request, "limit", 20, low=1, high=100),
        offset=query_int(request, "offset", 0, low=0, high=1_000_000),
    )
    return json_response([user_json(u) for u in reply.users])


async def get_user(request: Request, scope: RequestScope) -> Response:
    return json_response(user_json(await ops.get_user(scope, request.path_params["sid"])))


async def update_user(request: Request, scope: RequestScope) -> Response:
    body = fields(
        await read_json(request), optional=("username", "email", "password", "current_password")
    )
    user = await ops.update_user(
        scope,
        request.path_params["sid"],
        username=body.get("username"),
        email=body.get("email"),
        password=body.get("password"),
        current_password=body.get("current_password"),
    )
    return json_response(user_json(user))


async def deactivate_user(request: Request, scope: RequestScope) -> Response:
    return json_response(user_json(await ops.deactivate_user(scope, request.path_params["sid"])))


ROUTES: list[Route] = [
    route("POST", "/api/v1/users/create", create_user, protected=False),
    route("POST", "/api/v1/users/login", login, protected=False),
    route("GET", "/api/v1/users", list_users),
    route("GET", "/api/v1/users/{sid}", get_user),
    route("PUT", "/api/v1/users/{sid}", update_user),
    route("DELETE", "/api/v1/users/{sid}", deactivate_user),
]
