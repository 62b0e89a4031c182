"""In-memory stand-ins for db_service's ports (db_service/ports.py): the unit tier's storage.

Each keeps the rules its PostgreSQL repository keeps in SQL (unique values, stock that never
goes below zero, one order per idempotency key, token versions, counted windows), and nothing
more; tests/integration/repositories/ checks the real ones against PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from db_service.models import Order, OrderStatus, Product, ProductView, Role, User
from db_service.ports import Demoted, KeyTaken, PlaceAttempt, Placement, Revoked, Taken

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FakePasswords:
    """Hashing without Argon2's cost: a hash is the password, marked."""

    async def hash(self, password: str) -> str:
        return f"hashed:{password}"

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return password_hash == f"hashed:{password}"


class Windows:
    """Attempts counted per key in one window that never ends unless `reset`."""

    def __init__(self, window_s: int = 60) -> None:
        self.window_s = window_s
        self.counts: Counter[tuple[object, ...]] = Counter()

    def count(self, *key: object) -> tuple[int, int]:
        self.counts[key] += 1
        return self.counts[key], self.window_s

    def clear(self, *key: object) -> None:
        self.counts.pop(key, None)

    def reset(self) -> None:
        """The window ends: every count starts again."""
        self.counts.clear()


class InMemoryUsers:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[User, str]] = {}
        self.windows = Windows()
        self._ids = itertools.count(1)

    async def get_by_sid(self, sid: str) -> User | None:
        found = self.rows.get(sid)
        return found[0] if found else None

    async def get_by_ids(self, ids: list[int]) -> list[User]:
        return [user for user, _ in self.rows.values() if user.id in ids]

    async def get_login(self, username: str) -> tuple[User, str] | None:
        return next((row for row in self.rows.values() if row[0].username == username), None)

    async def taken_field(self, *, sid: str, username: str, email: str) -> str | None:
        for user, _ in self.rows.values():
            for field, mine, theirs in (
                ("sid", sid, user.sid),
                ("username", username, user.username),
                ("email", email.lower(), user.email.lower()),
            ):
                if mine == theirs:
                    return field
        return None

    async def insert(
        self, *, sid: str, username: str, email: str, password_hash: str, role: Role
    ) -> User:
        taken = await self.taken_field(sid=sid, username=username, email=email)
        if taken is not None:
            raise Taken(taken)
        user = User(next(self._ids), sid, username, email, role, True, 1, NOW, NOW)
        self.rows[sid] = (user, password_hash)
        return user

    async def update(
        self,
        sid: str,
        *,
        username: str | None = None,
        email: str | None = None,
        password_hash: str | None = None,
        role: Role | None = None,
        deactivate: bool = False,
        activate: bool = False,
        actor: User | None = None,
    ) -> User | None:
        if actor is not None:
            self.check_actor(actor, as_admin=actor.sid != sid)
        if sid not in self.rows:
            return None
        user, current_hash = self.rows[sid]
        others = [u for u, _ in self.rows.values() if u.sid != sid]
        if username is not None and any(u.username == username for u in others):
            raise Taken("username")
        if email is not None and any(u.email.lower() == email.lower() for u in others):
            raise Taken("email")
        revoke = password_hash is not None or deactivate
        user = dataclasses.replace(
            user,
            username=username or user.username,
            email=email or user.email,
            role=role or user.role,
            is_active=False if deactivate else True if activate else user.is_active,
            token_version=user.token_version + 1 if revoke else user.token_version,
        )
        self.rows[sid] = (user, password_hash or current_hash)
        return user

    def check_actor(self, actor: User, *, as_admin: bool) -> None:
        """Revoked unless `actor` is still active on its token's version; Demoted unless still
        an admin when it acts as one."""
        now = self.rows.get(actor.sid, (None, ""))[0]
        if now is None or not now.is_active or now.token_version != actor.token_version:
            raise Revoked
        if as_admin and not now.is_admin:
            raise Demoted

    async def list_page(self, *, after_id: int, offset: int, limit: int) -> list[User]:
        users = sorted((u for u, _ in self.rows.values() if u.id > after_id), key=lambda u: u.id)
        return users[offset : offset + limit]

    async def count_login_attempt(
        self, username_key: str, client_key: str, *, window_s: int
    ) -> tuple[int, int]:
        return self.windows.count("login", username_key, client_key)

    async def clear_login_attempts(self, username_key: str, client_key: str) -> None:
        self.windows.clear("login", username_key, client_key)

    async def count_client_attempt(self, client_key: str, *, window_s: int) -> tuple[int, int]:
        return self.windows.count("client", client_key)


def view_of(p: Product) -> ProductView:
    """The ProductView PostgreSQL would send for `p`."""
    return (
        p.id, p.name, p.description, p.category, f"{p.price:.2f}", p.slogan, p.stock,
        _micros(p.created_at), _micros(p.updated_at),
    )  # fmt: skip


def _micros(value: datetime) -> int:
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


class InMemoryProducts:
    def __init__(self, users: InMemoryUsers | None = None) -> None:
        self.users = users  # where an actor is checked again; None: not checked
        self.rows: dict[int, Product] = {}
        self._ids = itertools.count(1)

    async def get(self, product_id: int) -> Product | None:
        return self.rows.get(product_id)

    async def get_many(self, ids: list[int]) -> list[Product]:
        return [self.rows[i] for i in sorted(ids) if i in self.rows]

    async def view(self, product_id: int) -> ProductView | None:
        product = self.rows.get(product_id)
        return None if product is None else view_of(product)

    async def view_many(self, ids: list[int]) -> list[ProductView]:
        return [view_of(p) for p in await self.get_many(ids)]

    async def list_page(self, *, after_id: int, offset: int, limit: int) -> list[Product]:
        rows = [p for i, p in sorted(self.rows.items()) if i > after_id]
        return rows[offset : offset + limit]

    async def insert(
        self,
        *,
        name: str,
        description: str,
        category: str,
        price: Decimal,
        slogan: str,
        stock: int,
        actor: User | None = None,
    ) -> Product:
        self._check(actor)
        product_id = next(self._ids)
        product = Product(product_id, name, description, category, price, slogan, stock, NOW, NOW)
        self.rows[product_id] = product
        return product

    async def update(
        self, product_id: int, changes: dict[str, Any], actor: User | None = None
    ) -> Product | None:
        self._check(actor)
        if product_id not in self.rows:
            return None
        self.rows[product_id] = dataclasses.replace(self.rows[product_id], **changes)
        return self.rows[product_id]

    def _check(self, actor: User | None) -> None:
        if actor is not None and self.users is not None:
            self.users.check_actor(actor, as_admin=actor.is_admin)


class InMemoryOrders:
    def __init__(self, products: InMemoryProducts, users: InMemoryUsers) -> None:
        self.rows: dict[int, Order] = {}
        self.products = products
        self.users = users
        self.windows = Windows()
        self._ids = itertools.count(1)

    async def get(self, order_id: int) -> Order | None:
        return self.rows.get(order_id)

    async def get_many(self, ids: list[int]) -> list[Order]:
        return [self.rows[i] for i in sorted(ids) if i in self.rows]

    async def get_by_key(self, *, user_id: int, key: str) -> Order | None:
        return next(
            (o for o in self.rows.values() if (o.user_id, o.idempotency_key) == (user_id, key)),
            None,
        )

    async def list_page(
        self, *, user_id: int | None, after_id: int, offset: int, limit: int
    ) -> list[Order]:
        rows = [
            o
            for i, o in sorted(self.rows.items())
            if i > after_id and (user_id is None or o.user_id == user_id)
        ]
        return rows[offset : offset + limit]

    async def list_page_with(
        self,
        *,
        user_id: int | None,
        after_id: int,
        offset: int,
        limit: int,
        product: bool,
        user: bool,
    ) -> list[tuple[Order, Product | None, User | None]]:
        page = await self.list_page(user_id=user_id, after_id=after_id, offset=offset, limit=limit)
        owners = {u.id: u for u, _ in self.users.rows.values()}
        return [
            (
                order,
                self.products.rows.get(order.product_id) if product else None,
                owners.get(order.user_id) if user else None,
            )
            for order in page
        ]

    async def list_page_as(
        self,
        *,
        sid: str,
        token_version: int,
        all_users: bool,
        after_id: int,
        offset: int,
        limit: int,
        product: bool,
        user: bool,
    ) -> tuple[User, list[tuple[Order, Product | None, User | None]]] | None:
        caller = await self.users.get_by_sid(sid)
        if caller is None or not caller.is_active or caller.token_version != token_version:
            return None
        owner = None if all_users and caller.is_admin else caller.id
        page = await self.list_page_with(
            user_id=owner,
            after_id=after_id,
            offset=offset,
            limit=limit,
            product=product,
            user=user,
        )
        return caller, page

    async def place(
        self, *, user_id: int, user_sid: str, product_id: int, quantity: int, key: str | None
    ) -> Order | None:
        if key is not None and await self.get_by_key(user_id=user_id, key=key) is not None:
            raise KeyTaken
        product = self.products.rows.get(product_id)
        if product is None or product.stock < quantity:
            return None
        self.products.rows[product_id] = dataclasses.replace(
            product, stock=product.stock - quantity
        )
        order_id = next(self._ids)
        order = Order(
            order_id,
            user_id,
            user_sid,
            product_id,
            quantity,
            product.price,
            product.price * quantity,
            OrderStatus.PLACED,
            key,
            NOW,
            None,
        )
        self.rows[order_id] = order
        return order

    async def place_as(self, placement: Placement) -> PlaceAttempt | None:
        p = placement
        caller = await self.users.get_by_sid(p.sid)
        if caller is None or not caller.is_active or caller.token_version != p.token_version:
            return None
        earlier = None if p.key is None else await self.get_by_key(user_id=caller.id, key=p.key)
        if earlier is not None:
            return PlaceAttempt(caller, earlier, 0, 0, None, None)
        attempts, retry_after = self.windows.count("order", caller.id)
        product = self.products.rows.get(p.product_id)
        if attempts > p.max_attempts or product is None:
            return PlaceAttempt(caller, None, attempts, retry_after, None, None)
        order = await self.place(
            user_id=caller.id,
            user_sid=p.sid,
            product_id=p.product_id,
            quantity=p.quantity,
            key=p.key,
        )
        return PlaceAttempt(caller, None, attempts, retry_after, product.stock, order)

    async def cancel(
        self, order_id: int, *, user_id: int | None, actor: User | None = None
    ) -> Order | None:
        if actor is not None:
            self.users.check_actor(actor, as_admin=actor.is_admin)
        order = self.rows.get(order_id)
        if order is None or order.status is not OrderStatus.PLACED:
            return None
        if user_id is not None and order.user_id != user_id:
            return None
        product = self.products.rows[order.product_id]
        self.products.rows[order.product_id] = dataclasses.replace(
            product, stock=product.stock + order.quantity
        )
        order = dataclasses.replace(order, status=OrderStatus.CANCELLED, cancelled_at=NOW)
        self.rows[order_id] = order
        return order

    async def count_order_attempt(self, user_id: int, *, window_s: int) -> tuple[int, int]:
        return self.windows.count("order", user_id)
