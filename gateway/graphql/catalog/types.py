"""GraphQL types for products."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import strawberry

from gateway.graphql.pagination import Connection
from protos import db_service_pb2 as pb


@strawberry.type
class Product:
    id: int
    name: str
    description: str
    category: str
    price: Decimal
    slogan: str
    stock: int
    created_at: datetime

    @classmethod
    def from_pb(cls, product: pb.Product) -> Product:
        return cls(
            id=product.id,
            name=product.name,
            description=product.description,
            category=product.category,
            price=Decimal(product.price),
            slogan=product.slogan,
            stock=product.stock,
            created_at=product.created_at.ToDatetime(tzinfo=UTC),
        )


@strawberry.input
class CreateProductInput:
    name: str
    description: str = ""
    category: str
    price: Decimal
    slogan: str = ""
    stock: int = 0


@strawberry.input
class UpdateProductInput:
    name: str | None = None
    description: str | None = None
    category: str | None = None
    price: Decimal | None = None
    slogan: str | None = None
    stock: int | None = None


@strawberry.type
class ProductConnection(Connection[Product]):
    """A page of products."""
