"""/api/v1/orders routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import protos.db_service_pb2 as pb
from gateway.errors import ApiError
from gateway.operations import orders as ops
from gateway.rest.common import (
    INTEGER,
    fields,
    iso,
    json_response,
    money,
    path_id,
    query_int,
    read_json,
    route,
)
from gateway.scope import RequestScope

_STATUS = {pb.ORDER_STATUS_PLACED: "placed", pb.ORDER_STATUS_CANCELLED: "cancelled"}


def order_json(order: pb.Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "user_sid": order.user_sid,
        "product_id": order.product_id,
        "quantity": order.quantity,
        "unit_price": money(order.unit_price),
        "total_price": money(order.total_price),
        "status": _STATUS.get(order.status, "placed"),
        "created_at": iso(order.created_at),
        "cancelled_at": iso(order.cancelled_at) if order.HasField("cancelled_at") else None,
    }


async def place_order(request: Request, scope: RequestScope) -> Response:
    body = fields(
        await read_json(request),
        required=("product_id", "quantity"),
        types={"product_id": INTEGER, "quantity": INTEGER},
    )
    keys = request.headers.getlist("idempotency-key")
    if len(keys) > 1:
        # Which one the client meant is not ours to guess; a proxy may have added one.
        raise ApiError.bad_input("send at most one Idempotency-Key header")
    order = await ops.place_order(
        scope,
        product_id=body["product_id"],
        quantity=body["quantity"],
        idempotency_key=_utf8(keys[0]) if keys else None,
    )
    return json_response(order_json(order), 201)


def _utf8(header: str) -> str:
    """A header's text as its bytes in UTF-8 say, as clients write non-ASCII values (Starlette
    reads every header as Latin-1): so a key is the same key as in GraphQL's JSON."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError.bad_input("the Idempotency-Key header must be UTF-8 text") from None


async def _page(request: Request, scope: RequestScope, *, user_sid: str = "") -> Response:
    identity = scope.require_identity()
    reply = await ops.list_orders(
        scope,
        page_size=query_int(request, "limit", 20, low=1, high=100),
        offset=query_int(request, "offset", 0, low=0, high=1_000_000),
        user_sid=user_sid,
        all_users=identity.is_admin and not user_sid,
    )
    return json_response([order_json(o) for o in reply.orders])


async def list_orders(request: Request, scope: RequestScope) -> Response:
    return await _page(request, scope)


async def list_user_orders(request: Request, scope: RequestScope) -> Response:
    return await _page(request, scope, user_sid=request.path_params["sid"])


async def get_order(request: Request, scope: RequestScope) -> Response:
    return json_response(order_json(await ops.get_order(scope, path_id(request, "order"))))


async def cancel_order(request: Request, scope: RequestScope) -> Response:
    return json_response(order_json(await ops.cancel_order(scope, path_id(request, "order"))))


ROUTES: list[Route] = [
    route("POST", "/api/v1/orders", place_order),
    route("GET", "/api/v1/orders", list_orders),
    route("GET", "/api/v1/orders/user/{sid}", list_user_orders),
    route("GET", "/api/v1/orders/{id}", get_order),
    route("DELETE", "/api/v1/orders/{id}", cancel_order),
]
