"""Catalog operations: anyone reads; admins create and update."""

from __future__ import annotations

from decimal import Decimal

import protos.db_service_pb2 as pb
from gateway.scope import RequestScope

PRODUCT_FIELDS = ("name", "description", "category", "price", "slogan", "stock")
# Beyond this many digits either side of the point a price is far out of range (1e999999999),
# and plain notation would be that many characters long: it goes as written, to be refused.
_PLAIN_DIGITS = 30

Price = int | Decimal | str


def price_text(value: Price) -> str:
    """A client's price as the decimal string db_service takes: plain digits, as the number
    was read (REST's JSON number, GraphQL's Decimal scalar: `1e2` is "100"). A string goes as
    the client wrote it; db_service judges its format."""
    if isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) < _PLAIN_DIGITS:
        return format(value, "f")
    return str(value)


async def get_product(scope: RequestScope, product_id: int) -> pb.Product:
    """GetProduct, coalesced with the concurrent reads of other requests (gateway.coalesce)."""
    return await scope.db.product_reads.get(
        product_id, request_id=scope.request_id, authorization=scope.credentials.authorization
    )


async def get_products_by_ids(scope: RequestScope, ids: list[int]) -> list[pb.Product]:
    reply: pb.ProductList = await scope.call(
        scope.db.stub.GetProductsByIds, pb.GetProductsByIdsRequest(ids=ids)
    )
    return list(reply.products)


async def list_products(
    scope: RequestScope, *, page_size: int, page_token: str = "", offset: int = 0
) -> pb.ListProductsResponse:
    request = pb.ListProductsRequest(page_size=page_size, page_token=page_token, offset=offset)
    reply: pb.ListProductsResponse = await scope.call(scope.db.stub.ListProducts, request)
    return reply


async def create_product(
    scope: RequestScope,
    *,
    name: str,
    description: str,
    category: str,
    price: Price,
    slogan: str,
    stock: int,
) -> pb.Product:
    await scope.require_admin()
    request = pb.CreateProductRequest(
        name=name,
        description=description,
        category=category,
        price=price_text(price),
        slogan=slogan,
        stock=stock,
    )
    product: pb.Product = await scope.call(scope.db.stub.CreateProduct, request)
    return product


async def update_product(
    scope: RequestScope, product_id: int, changes: dict[str, Price]
) -> pb.Product:
    """Apply the given fields (any of PRODUCT_FIELDS); absent fields are kept."""
    await scope.require_admin()
    if "price" in changes:
        changes = {**changes, "price": price_text(changes["price"])}
    request = pb.UpdateProductRequest(id=product_id, **changes)  # type: ignore[arg-type]
    product: pb.Product = await scope.call(scope.db.stub.UpdateProduct, request)
    return product
