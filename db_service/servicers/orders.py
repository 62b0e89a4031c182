"""Order RPCs."""

from __future__ import annotations

from db_service.calls import Context, metadata_value, note_user
from db_service.errors import DomainError, ErrorCode
from db_service.servicers import convert
from db_service.servicers.base import ServicerBase
from db_service.servicers.translate import translate_errors
from db_service.services.orders import OrderPageRequest
from protos import db_service_pb2 as pb


class OrderRpcs(ServicerBase):
    async def PlaceOrder(self, request: pb.PlaceOrderRequest, context: Context) -> pb.Order:
        async with translate_errors(context):
            claims = self._s.auth.claims(metadata_value(context, "authorization"))
            # The order's statement authenticates its caller itself; invalid input
            # authenticates first, as every other RPC does.
            try:
                folded = await self._s.orders.place_order_as(
                    claims,
                    product_id=request.product_id,
                    quantity=request.quantity,
                    idempotency_key=request.idempotency_key,
                )
            except DomainError as exc:
                # Every refusal but the token's own comes after the statement found the caller.
                if exc.code is not ErrorCode.UNAUTHENTICATED:
                    note_user(claims.sid)
                raise
            if folded is not None:
                caller, order = folded
                note_user(caller.sid)
            else:
                order = await self._s.orders.place_order(
                    await self._caller(context),
                    product_id=request.product_id,
                    quantity=request.quantity,
                    idempotency_key=request.idempotency_key,
                )
            return convert.order(order)

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.Order:
        async with translate_errors(context):
            caller = await self._caller(context)
            return convert.order(await self._s.orders.get_order(caller, request.id))

    async def GetOrdersByIds(
        self, request: pb.GetOrdersByIdsRequest, context: Context
    ) -> pb.OrderList:
        async with translate_errors(context):
            caller = await self._caller(context)
            orders = await self._s.orders.get_orders_by_ids(caller, list(request.ids))
            return pb.OrderList(orders=[convert.order(o) for o in orders])

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: Context
    ) -> pb.ListOrdersResponse:
        async with translate_errors(context):
            claims = self._s.auth.claims(metadata_value(context, "authorization"))
            query = OrderPageRequest(
                user_sid=request.user_sid,
                all_users=request.all_users,
                page_size=request.page_size,
                page_token=request.page_token,
                offset=request.offset,
                include_product=pb.ORDER_INCLUDE_PRODUCT in request.include,
                include_user=pb.ORDER_INCLUDE_USER in request.include,
            )
            # The caller's own page authenticates inside its statement; anything else (another
            # user's orders, invalid input) authenticates first, as every other RPC does.
            folded = await self._s.orders.list_orders_as(claims, query)
            if folded is not None:
                caller, page = folded
                note_user(caller.sid)
            else:
                caller = await self._caller(context)
                page = await self._s.orders.list_orders(caller, query)
            return pb.ListOrdersResponse(
                orders=[convert.order(o) for o in page.items],
                next_page_token=page.next_page_token,
                products=[convert.product(p) for p in page.products],
                users=[convert.user(u) for u in page.users],
            )

    async def CancelOrder(self, request: pb.CancelOrderRequest, context: Context) -> pb.Order:
        async with translate_errors(context):
            caller = await self._caller(context)
            return convert.order(await self._s.orders.cancel_order(caller, request.id))
