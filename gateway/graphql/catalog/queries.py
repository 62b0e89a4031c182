"""Catalog queries: public."""

from __future__ import annotations

import strawberry

from gateway.graphql.catalog.types import Product, ProductConnection
from gateway.graphql.context import Info
from gateway.graphql.pagination import connection, page_size
from gateway.operations import catalog as ops


@strawberry.type
class CatalogQueries:
    @strawberry.field
    async def product(self, info: Info, id: int) -> Product | None:
        # Nothing found raises NOT_FOUND: the field answers null with that error, as REST's 404.
        return Product.from_pb(await ops.get_product(info.context.scope, id))

    @strawberry.field
    async def products(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> ProductConnection:
        reply = await ops.list_products(
            info.context.scope, page_size=page_size(first), page_token=after or ""
        )
        return connection(ProductConnection, reply.products, reply.next_page_token)
