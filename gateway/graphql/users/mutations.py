"""Account mutations."""

from __future__ import annotations

import strawberry

from gateway.graphql.context import Info
from gateway.graphql.permissions import IsAuthenticated
from gateway.graphql.users.types import AuthPayload, RegisterInput, UpdateUserInput, User
from gateway.operations import users as ops


@strawberry.type
class UserMutations:
    @strawberry.mutation
    async def register(self, info: Info, input: RegisterInput) -> User:
        user = await ops.register(
            info.context.scope,
            sid=input.sid,
            username=input.username,
            email=input.email,
            password=input.password,
        )
        return User.from_pb(user)

    @strawberry.mutation
    async def login(self, info: Info, username: str, password: str) -> AuthPayload:
        reply = await ops.login(info.context.scope, username=username, password=password)
        return AuthPayload(
            token=reply.token, expires_in=reply.expires_in, user=User.from_pb(reply.user)
        )

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def update_user(self, info: Info, sid: str, input: UpdateUserInput) -> User:
        user = await ops.update_user(
            info.context.scope,
            sid,
            username=input.username,
            email=input.email,
            password=input.password,
            current_password=input.current_password,
        )
        return User.from_pb(user)

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def deactivate_user(self, info: Info, sid: str) -> User:
        return User.from_pb(await ops.deactivate_user(info.context.scope, sid))
