"""GraphQL types for orders; `product` and `user` resolve through per-request DataLoaders."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal

import strawberry

from gateway.graphql.catalog.types import Product
from gateway.graphql.context import Info
from gateway.graphql.pagination import Connection
from gateway.graphql.users.types import User
from protos import db_service_pb2 as pb


@strawberry.enum
class OrderStatus(enum.Enum):
    PLACED = "placed"
    CANCELLED = "cancelled"


_STATUS = {
    pb.ORDER_STATUS_PLACED: OrderStatus.PLACED,
    pb.ORDER_STATUS_CANCELLED: OrderStatus.CANCELLED,
}


@strawberry.type
class Order:
    id: int
    quantity: int
    unit_price: Decimal
    total_price: Decimal
    status: OrderStatus
    created_at: datetime
    cancelled_at: datetime | None
    product_id: strawberry.Private[int]
    user_id: strawberry.Private[int]

    @strawberry.field
    async def product(self, info: Info) -> Product | None:
        found = await info.context.loaders.product_by_id.load(self.product_id)
        return Product.from_pb(found) if found is not None else None

    @strawberry.field
    async def user(self, info: Info) -> User | None:
        found = await info.context.loaders.user_by_id.load(self.user_id)
        return User.from_pb(found) if found is not None else None

    @classmethod
    def from_pb(cls, order: pb.Order) -> Order:
        return cls(
            id=order.id,
            quantity=order.quantity,
            unit_price=Decimal(order.unit_price),
            total_price=Decimal(order.total_price),
            status=_STATUS.get(order.status, OrderStatus.PLACED),
            created_at=order.created_at.ToDatetime(tzinfo=UTC),
            cancelled_at=(
                order.cancelled_at.ToDatetime(tzinfo=UTC)
                if order.HasField("cancelled_at")
                else None
            ),
            product_id=order.product_id,
            user_id=order.user_id,
        )


@strawberry.type
class OrderConnection(Connection[Order]):
    """A page of orders."""
