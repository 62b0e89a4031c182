"""GraphQL types for orders; `product` and `user` resolve through per-request DataLoaders."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import strawberry

import protos.db_service_pb2 as pb
from gateway.graphql.catalog.types import Product
from gateway.graphql.context import Info
from gateway.graphql.messages import message_type, read, timestamp
from gateway.graphql.pagination import Connection
from gateway.graphql.users.types import User


@strawberry.enum
class OrderStatus(enum.Enum):
    PLACED = "placed"
    CANCELLED = "cancelled"


_STATUS = {
    pb.ORDER_STATUS_PLACED: OrderStatus.PLACED,
    pb.ORDER_STATUS_CANCELLED: OrderStatus.CANCELLED,
}


@strawberry.type
@message_type
class Order:
    message: strawberry.Private[pb.Order]
    id: int = read(lambda m: m.id)
    quantity: int = read(lambda m: m.quantity)
    unit_price: Decimal = read(lambda m: Decimal(m.unit_price))
    total_price: Decimal = read(lambda m: Decimal(m.total_price))
    status: OrderStatus = read(lambda m: _STATUS.get(m.status, OrderStatus.PLACED))
    created_at: datetime = read(lambda m: timestamp(m.created_at))
    cancelled_at: datetime | None = read(
        lambda m: timestamp(m.cancelled_at) if m.HasField("cancelled_at") else None
    )

    @strawberry.field
    async def product(self, info: Info) -> Product | None:
        found = await info.context.loaders.product_by_id.load(self.message.product_id)
        return Product.from_pb(found) if found is not None else None

    @strawberry.field
    async def user(self, info: Info) -> User | None:
        found = await info.context.loaders.user_by_id.load(self.message.user_id)
        return User.from_pb(found) if found is not None else None

    @classmethod
    def from_pb(cls, order: pb.Order) -> Order:
        return cls(message=order)


@strawberry.type
class OrderConnection(Connection[Order]):
    """A page of orders."""

    KIND = "order"
    NODE = Order
