"""User RPCs."""

from __future__ import annotations

from db_service.calls import Context, note_user
from db_service.clients import client_key
from db_service.servicers import convert
from db_service.servicers.base import ServicerBase
from db_service.servicers.translate import translate_errors
from protos import db_service_pb2 as pb


class UserRpcs(ServicerBase):
    async def CreateUser(self, request: pb.CreateUserRequest, context: Context) -> pb.User:
        async with translate_errors(context):
            user = await self._s.users.register(
                sid=request.sid,
                username=request.username,
                email=request.email,
                password=request.password,
                client=client_key(request.client_address, context.peer()),
            )
            note_user(user.sid)
            return convert.user(user)

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginResponse:
        async with translate_errors(context):
            result = await self._s.users.login(
                username=request.username,
                password=request.password,
                client=client_key(request.client_address, context.peer()),
            )
            note_user(result.user.sid)
            return pb.LoginResponse(
                token=result.token,
                token_type="Bearer",  # noqa: S106 - the scheme, not a secret
                expires_in=result.expires_in,
                user=convert.user(result.user),
            )

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.User:
        async with translate_errors(context):
            caller = await self._caller(context)
            return convert.user(await self._s.users.get_user(caller, request.sid))

    async def GetUsersByIds(
        self, request: pb.GetUsersByIdsRequest, context: Context
    ) -> pb.UserList:
        async with translate_errors(context):
            caller = await self._caller(context)
            users = await self._s.users.get_users_by_ids(caller, list(request.ids))
            return pb.UserList(users=[convert.user(u) for u in users])

    async def ListUsers(
        self, request: pb.ListUsersRequest, context: Context
    ) -> pb.ListUsersResponse:
        async with translate_errors(context):
            caller = await self._caller(context)
            page = await self._s.users.list_users(
                caller,
                page_size=request.page_size,
                page_token=request.page_token,
                offset=request.offset,
            )
            return pb.ListUsersResponse(
                users=[convert.user(u) for u in page.items], next_page_token=page.next_page_token
            )

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: Context) -> pb.User:
        async with translate_errors(context):
            caller = await self._caller(context)
            user = await self._s.users.update_user(
                caller,
                request.sid,
                username=request.username if request.HasField("username") else None,
                email=request.email if request.HasField("email") else None,
                password=request.password if request.HasField("password") else None,
                current_password=(
                    request.current_password if request.HasField("current_password") else None
                ),
                client=client_key(request.client_address, context.peer()),
            )
            return convert.user(user)

    async def DeactivateUser(self, request: pb.DeactivateUserRequest, context: Context) -> pb.User:
        async with translate_errors(context):
            caller = await self._caller(context)
            return convert.user(await self._s.users.deactivate_user(caller, request.sid))
