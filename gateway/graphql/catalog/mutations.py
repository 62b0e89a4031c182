"""Catalog mutations: administrators only."""

from __future__ import annotations

import strawberry

from gateway.graphql.catalog.types import CreateProductInput, Product, UpdateProductInput
from gateway.graphql.context import Info
from gateway.graphql.permissions import IsAdmin, IsAuthenticated
from gateway.operations import catalog as ops


@strawberry.type
class CatalogMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated, IsAdmin])
    async def create_product(self, info: Info, input: CreateProductInput) -> Product:
        product = await ops.create_product(
            info.context.scope,
            name=input.name,
            description=input.description,
            category=input.category,
            price=input.price,
            slogan=input.slogan,
            stock=input.stock,
        )
        return Product.from_pb(product)

    @strawberry.mutation(permission_classes=[IsAuthenticated, IsAdmin])
    async def update_product(self, info: Info, id: int, input: UpdateProductInput) -> Product:
        changes: dict[str, ops.Price] = {}
        for name in ops.PRODUCT_FIELDS:
            value = getattr(input, name)
            if value is not None:
                changes[name] = value
        return Product.from_pb(await ops.update_product(info.context.scope, id, changes))
