"""Domain records as the repositories return them."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    ADMIN = "admin"


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    sid: str
    username: str
    email: str
    role: Role
    is_active: bool
    token_version: int
    created_at: datetime
    updated_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    name: str
    description: str
    category: str
    price: Decimal
    slogan: str
    stock: int
    created_at: datetime
    updated_at: datetime


class ProductView(Protocol):
    """A product as a read answers it: its fields in the order id, name, description, category,
    price, slogan, stock, created_us, updated_us; the price as its decimal text with two places,
    both times in microseconds since the Unix epoch.

    What PostgreSQL sends for a read (an asyncpg row, unpacked in that order): formatting a price
    and two timestamps costs PostgreSQL less than decoding a Decimal and two datetimes and
    converting them again costs db_service, and reads are most of its calls.
    """

    def __iter__(self) -> Iterator[Any]: ...


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    user_id: int
    user_sid: str
    product_id: int
    quantity: int
    unit_price: Decimal
    total_price: Decimal
    status: OrderStatus
    idempotency_key: str | None
    created_at: datetime
    cancelled_at: datetime | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, with the token of the next page ("" on the last one)."""

    items: list[T]
    next_page_token: str
