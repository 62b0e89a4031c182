"""Order queries: a customer sees only their own orders; admins see any."""

from __future__ import annotations

import strawberry

import protos.db_service_pb2 as pb
from gateway.errors import ApiError
from gateway.graphql.context import Info
from gateway.graphql.orders.includes import prime_loaders, wanted_includes
from gateway.graphql.orders.types import Order, OrderConnection
from gateway.graphql.pagination import connection, page_size
from gateway.graphql.permissions import IsAuthenticated
from gateway.operations import orders as ops
from gateway.operations import users as users_ops


@strawberry.type
class OrderQueries:
    @strawberry.field(permission_classes=[IsAuthenticated])
    async def order(self, info: Info, id: int) -> Order | None:
        # Nothing found raises NOT_FOUND: the field answers null with that error, as REST's 404.
        return Order.from_pb(await ops.get_order(info.context.scope, id))

    @strawberry.field(permission_classes=[IsAuthenticated])
    async def orders(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        user_sid: str | None = None,
    ) -> OrderConnection:
        return await orders_page(info, first=first, after=after, user_sid=user_sid)


async def orders_page(
    info: Info, *, first: int | None, after: str | None, user_sid: str | None
) -> OrderConnection:
    """One page of orders: the caller's own, a given user's, or (admin, no user) everyone's."""
    scope = info.context.scope
    identity = scope.require_identity()
    if user_sid == "":
        # proto3 sends "" as no filter at all (the caller's own orders, an admin's everyone's):
        # answer it as db_service answers any sid that is not the caller's and names nobody,
        # once db_service has confirmed the token, as it does first: a revoked one is
        # UNAUTHENTICATED, and the role is the account's, not the token's claim.
        caller = await users_ops.me(scope)
        if caller.role == pb.ROLE_ADMIN:
            raise ApiError.not_found("user '' not found")
        raise ApiError.forbidden("you may only act on your own account")
    includes = wanted_includes(info)
    size, token, sid = page_size(first), after or "", user_sid or ""
    all_users = identity.is_admin and not user_sid
    reply = await info.context.loaders.orders_page(
        (size, token, sid, all_users, tuple(includes)),
        lambda: ops.list_orders(
            scope,
            page_size=size,
            page_token=token,
            user_sid=sid,
            all_users=all_users,
            include=includes,
        ),
    )
    prime_loaders(info, reply, includes)
    return connection(OrderConnection, reply.orders, reply.next_page_token)
