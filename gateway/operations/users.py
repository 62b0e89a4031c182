"""Account operations."""

from __future__ import annotations

import protos.db_service_pb2 as pb
from gateway.scope import RequestScope


async def register(
    scope: RequestScope, *, sid: str, username: str, email: str, password: str
) -> pb.User:
    request = pb.CreateUserRequest(
        sid=sid, username=username, email=email, password=password, client_address=scope.client
    )
    user: pb.User = await scope.call(scope.db.stub.CreateUser, request)
    return user


async def login(scope: RequestScope, *, username: str, password: str) -> pb.LoginResponse:
    request = pb.LoginRequest(username=username, password=password, client_address=scope.client)
    reply: pb.LoginResponse = await scope.call(scope.db.stub.Login, request)
    return reply


async def get_user(scope: RequestScope, sid: str) -> pb.User:
    scope.require_identity()
    user: pb.User = await scope.call(scope.db.stub.GetUser, pb.GetUserRequest(sid=sid))
    return user


async def me(scope: RequestScope) -> pb.User:
    return await get_user(scope, scope.require_identity().sid)


async def list_users(
    scope: RequestScope, *, page_size: int, page_token: str = "", offset: int = 0
) -> pb.ListUsersResponse:
    await scope.require_admin()
    request = pb.ListUsersRequest(page_size=page_size, page_token=page_token, offset=offset)
    reply: pb.ListUsersResponse = await scope.call(scope.db.stub.ListUsers, request)
    return reply


async def update_user(
    scope: RequestScope,
    sid: str,
    *,
    username: str | None,
    email: str | None,
    password: str | None,
    current_password: str | None = None,
) -> pb.User:
    """Change an account; changing one's own password or email needs `current_password`."""
    scope.require_identity()
    request = pb.UpdateUserRequest(sid=sid, client_address=scope.client)
    if username is not None:
        request.username = username
    if email is not None:
        request.email = email
    if password is not None:
        request.password = password
    if current_password is not None:
        request.current_password = current_password
    user: pb.User = await scope.call(scope.db.stub.UpdateUser, request)
    return user


async def deactivate_user(scope: RequestScope, sid: str) -> pb.User:
    scope.require_identity()
    user: pb.User = await scope.call(
        scope.db.stub.DeactivateUser, pb.DeactivateUserRequest(sid=sid)
    )
    return user


async def get_users_by_ids(scope: RequestScope, ids: list[int]) -> list[pb.User]:
    scope.require_identity()
    reply: pb.UserList = await scope.call(
        scope.db.stub.GetUsersByIds, pb.GetUsersByIdsRequest(ids=ids)
    )
    return list(reply.users)
