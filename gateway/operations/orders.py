"""Order operations: every one acts as the caller; db_service decides ownership."""

from __future__ import annotations

from collections.abc import Sequence

import protos.db_service_pb2 as pb
from gateway.scope import RequestScope


async def place_order(
    scope: RequestScope, *, product_id: int, quantity: int, idempotency_key: str | None
) -> pb.Order:
    scope.require_identity()
    request = pb.PlaceOrderRequest(
        product_id=product_id, quantity=quantity, idempotency_key=idempotency_key or ""
    )
    # With a key, a retry after a lost answer returns the first order instead of a second one.
    order: pb.Order = await scope.call(
        scope.db.stub.PlaceOrder, request, idempotent_write=bool(idempotency_key)
    )
    return order


async def get_order(scope: RequestScope, order_id: int) -> pb.Order:
    scope.require_identity()
    order: pb.Order = await scope.call(scope.db.stub.GetOrder, pb.GetOrderRequest(id=order_id))
    return order


async def get_orders_by_ids(scope: RequestScope, ids: list[int]) -> list[pb.Order]:
    scope.require_identity()
    reply: pb.OrderList = await scope.call(
        scope.db.stub.GetOrdersByIds, pb.GetOrdersByIdsRequest(ids=ids)
    )
    return list(reply.orders)


async def list_orders(
    scope: RequestScope,
    *,
    page_size: int,
    page_token: str = "",
    offset: int = 0,
    user_sid: str = "",
    all_users: bool = False,
    include: Sequence[pb.OrderInclude] = (),
) -> pb.ListOrdersResponse:
    scope.require_identity()
    request = pb.ListOrdersRequest(
        page_size=page_size,
        page_token=page_token,
        offset=offset,
        user_sid=user_sid,
        all_users=all_users,
        include=include,
    )
    reply: pb.ListOrdersResponse = await scope.call(scope.db.stub.ListOrders, request)
    return reply


async def cancel_order(scope: RequestScope, order_id: int) -> pb.Order:
    scope.require_identity()
    order: pb.Order = await scope.call(
        scope.db.stub.CancelOrder, pb.CancelOrderRequest(id=order_id)
    )
    return order
