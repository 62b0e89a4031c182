"""Domain records as the repositories return them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

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
