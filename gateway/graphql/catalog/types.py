"""GraphQL types for products."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

import protos.db_service_pb2 as pb
from gateway.graphql.messages import message_type, read, timestamp
from gateway.graphql.pagination import Connection


@strawberry.type
@message_type
class Product:
    message: strawberry.Private[pb.Product]
    id: int = read(lambda m: m.id)
    name: str = read(lambda m: m.name)
    description: str = read(lambda m: m.description)
    category: str = read(lambda m: m.category)
    price: Decimal = read(lambda m: Decimal(m.price))
    slogan: str = read(lambda m: m.slogan)
    stock: int = read(lambda m: m.stock)
    created_at: datetime = read(lambda m: timestamp(m.created_at))

    @classmethod
    def from_pb(cls, product: pb.Product) -> Product:
        return cls(message=product)


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

    KIND = "product"
    NODE = Product
