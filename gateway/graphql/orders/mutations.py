"""Order mutations."""

from __future__ import annotations

import strawberry

from gateway.graphql.context import Info
from gateway.graphql.orders.types import Order
from gateway.graphql.permissions import IsAuthenticated
from gateway.operations import orders as ops


@strawberry.type
class OrderMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def place_order(
        self,
        info: Info,
        product_id: int,
        quantity: int,
        idempotency_key: str | None = None,
    ) -> Order:
        order = await ops.place_order(
            info.context.scope,
            product_id=product_id,
            quantity=quantity,
            idempotency_key=idempotency_key,
        )
        return Order.from_pb(order)

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def cancel_order(self, info: Info, id: int) -> Order:
        return Order.from_pb(await ops.cancel_order(info.context.scope, id))
