"""GraphQL types for accounts."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

import protos.db_service_pb2 as pb
from gateway.graphql.context import Info
from gateway.graphql.messages import message_type, read, timestamp
from gateway.graphql.pagination import Connection

if TYPE_CHECKING:
    from gateway.graphql.orders.types import OrderConnection


@strawberry.enum
class Role(enum.Enum):
    CUSTOMER = "customer"
    ADMIN = "admin"


_ROLE = {pb.ROLE_CUSTOMER: Role.CUSTOMER, pb.ROLE_ADMIN: Role.ADMIN}


@strawberry.type
@message_type
class User:
    message: strawberry.Private[pb.User]
    id: int = read(lambda m: m.id)
    sid: str = read(lambda m: m.sid)
    username: str = read(lambda m: m.username)
    email: str = read(lambda m: m.email)
    role: Role = read(lambda m: _ROLE.get(m.role, Role.CUSTOMER))
    is_active: bool = read(lambda m: m.is_active)
    created_at: datetime = read(lambda m: timestamp(m.created_at))

    @strawberry.field
    async def orders(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Annotated[OrderConnection, strawberry.lazy("gateway.graphql.orders.types")]:
        # Imported here: orders' types refer to User, so this edge of the cycle is lazy.
        from gateway.graphql.orders.queries import orders_page

        return await orders_page(info, first=first, after=after, user_sid=self.message.sid)

    @classmethod
    def from_pb(cls, user: pb.User) -> User:
        return cls(message=user)


@strawberry.type
class AuthPayload:
    token: str
    expires_in: int
    user: User


@strawberry.input
class RegisterInput:
    sid: str
    username: str
    email: str
    password: str


@strawberry.input
class UpdateUserInput:
    username: str | None = None
    email: str | None = None
    password: str | None = None
    current_password: str | None = strawberry.field(
        default=None,
        description="Your current password: needed to change your own password or email.",
    )


@strawberry.type
class UserConnection(Connection[User]):
    """A page of users."""

    KIND = "user"
    NODE = User
