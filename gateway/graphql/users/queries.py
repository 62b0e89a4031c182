"""Account queries."""

from __future__ import annotations

import strawberry

from gateway.graphql.context import Info
from gateway.graphql.pagination import connection, page_size
from gateway.graphql.permissions import IsAdmin, IsAuthenticated
from gateway.graphql.users.types import User, UserConnection
from gateway.operations import users as ops


@strawberry.type
class UserQueries:
    @strawberry.field(permission_classes=[IsAuthenticated])
    async def me(self, info: Info) -> User | None:
        return User.from_pb(await ops.me(info.context.scope))

    @strawberry.field(permission_classes=[IsAuthenticated])
    async def user(self, info: Info, sid: str) -> User | None:
        return User.from_pb(await ops.get_user(info.context.scope, sid))

    @strawberry.field(permission_classes=[IsAuthenticated, IsAdmin])
    async def users(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> UserConnection:
        reply = await ops.list_users(
            info.context.scope, page_size=page_size(first), page_token=after or ""
        )
        return connection(UserConnection, reply.users, reply.next_page_token)
