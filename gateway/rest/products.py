"""/api/v1/products routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import protos.db_service_pb2 as pb
from gateway.operations import catalog as ops
from gateway.rest.common import (
    INTEGER,
    NUMBER,
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

_TYPES = {"price": (*NUMBER, str), "stock": INTEGER}


def product_json(product: pb.Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "category": product.category,
        "price": money(product.price),
        "slogan": product.slogan,
        "stock": product.stock,
        "created_at": iso(product.created_at),
    }


def _changes(body: dict[str, Any]) -> dict[str, ops.Price]:
    return {name: value for name, value in body.items() if value is not None}


async def list_products(request: Request, scope: RequestScope) -> Response:
    reply = await ops.list_products(
        scope,
        page_size=query_int(request, "limit", 20, low=1, high=100),
        offset=query_int(request, "offset", 0, low=0, high=1_000_000),
    )
    return json_response([product_json(p) for p in reply.products])


async def get_product(request: Request, scope: RequestScope) -> Response:
    return json_response(product_json(await ops.get_product(scope, path_id(request, "product"))))


async def create_product(request: Request, scope: RequestScope) -> Response:
    body = fields(
        await read_json(request),
        required=("name", "category", "price"),
        optional=("description", "slogan", "stock"),
        types=_TYPES,
    )
    product = await ops.create_product(
        scope,
        name=body["name"],
        description=body.get("description") or "",
        category=body["category"],
        price=body["price"],
        slogan=body.get("slogan") or "",
        stock=body.get("stock") or 0,
    )
    return json_response(product_json(product), 201)


async def update_product(request: Request, scope: RequestScope) -> Response:
    product_id = path_id(request, "product")
    body = fields(await read_json(request), optional=ops.PRODUCT_FIELDS, types=_TYPES)
    product = await ops.update_product(scope, product_id, _changes(body))
    return json_response(product_json(product))


ROUTES: list[Route] = [
    route("GET", "/api/v1/products", list_products, protected=False),
    route("GET", "/api/v1/products/{id}", get_product, protected=False),
    route("POST", "/api/v1/products", create_product),
    route("PUT", "/api/v1/products/{id}", update_product),
]
