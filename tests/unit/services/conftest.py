"""The services wired to in-memory fakes: the rules without PostgreSQL, gRPC or Argon2."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from db_service.models import Product, Role, User
from db_service.ports import OrderStore, PasswordHasher, ProductStore, UserStore
from db_service.services.auth import Authenticator
from db_service.services.orders import OrderRatePolicy, OrderService
from db_service.services.products import ProductService
from db_service.services.users import LoginPolicy, UserService
from protos.tokens import TokenCodec
from tests.unit.fakes import FakePasswords, InMemoryOrders, InMemoryProducts, InMemoryUsers

SECRET = "unit-test-secret-0123456789-0123456789"
LOGIN_MAX_ATTEMPTS = 5
ORDER_RATE_LIMIT = 4


@dataclass
class World:
    users: InMemoryUsers
    products: InMemoryProducts
    orders: InMemoryOrders
    codec: TokenCodec
    user_service: UserService
    order_service: OrderService
    product_service: ProductService
    auth: Authenticator

    async def make_user(self, sid: str, *, role: Role = Role.CUSTOMER) -> User:
        return await self.user_service.create_user(
            sid=sid,
            username=f"user{sid}",
            email=f"{sid}@example.com",
            password=f"password-of-{sid}",
            role=role,
        )

    async def make_product(self, *, stock: int, price: str = "10.00") -> Product:
        return await self.products.insert(
            name="mug",
            description="a mug",
            category="kitchen",
            price=Decimal(price),
            slogan="",
            stock=stock,
        )


@pytest.fixture
def world() -> World:
    users = InMemoryUsers()
    products = InMemoryProducts(users)
    orders = InMemoryOrders(products, users)
    # The fakes stand where the repositories stand: the protocols say what that takes.
    stores: tuple[UserStore, ProductStore, OrderStore] = (users, products, orders)
    hasher: PasswordHasher = FakePasswords()
    codec = TokenCodec(SECRET, "merch-store", ttl_s=600)
    return World(
        users=users,
        products=products,
        orders=orders,
        codec=codec,
        user_service=UserService(
            stores[0], hasher, codec, LoginPolicy(max_attempts=LOGIN_MAX_ATTEMPTS, window_s=60)
        ),
        order_service=OrderService(
            stores[2], stores[1], stores[0], OrderRatePolicy(max_orders=ORDER_RATE_LIMIT)
        ),
        product_service=ProductService(stores[1]),
        auth=Authenticator(codec, stores[0]),
    )
