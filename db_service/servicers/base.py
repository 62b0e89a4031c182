"""What every servicer mixin shares: the use cases and the caller lookup."""

from __future__ import annotations

from dataclasses import dataclass

from db_service.calls import Context, metadata_value, note_user
from db_service.models import User
from db_service.services.auth import Authenticator
from db_service.services.orders import OrderService
from db_service.services.products import ProductService
from db_service.services.users import UserService


@dataclass(frozen=True, slots=True)
class Services:
    auth: Authenticator
    users: UserService
    products: ProductService
    orders: OrderService


class ServicerBase:
    _s: Services

    async def _caller(self, context: Context) -> User:
        user = await self._s.auth.caller(metadata_value(context, "authorization"))
        note_user(user.sid)
        return user
