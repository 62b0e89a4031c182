"""Catalog use cases: anyone reads, admins create and update."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from db_service import validation
from db_service.errors import DomainError, ErrorCode
from db_service.models import Page, Product, ProductView, User
from db_service.ports import Demoted, ProductStore, Revoked
from db_service.services.auth import not_admin, refused, require_admin
from protos.page_tokens import encode_token

MAX_STOCK = 1_000_000
MAX_DESCRIPTION = 2000


def _id(value: int) -> int:
    if not 1 <= value <= 2**31 - 1:
        raise DomainError(ErrorCode.NOT_FOUND, f"product {value} not found")
    return value


class ProductService:
    def __init__(self, products: ProductStore) -> None:
        self._products = products

    async def get_product(self, product_id: int) -> ProductView:
        product = await self._products.view(_id(product_id))
        if product is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"product {product_id} not found")
        return product

    async def get_products_by_ids(self, ids: Sequence[int]) -> Sequence[ProductView]:
        """The products with these ids that exist, by id; ids out of range find nothing."""
        if len(ids) > validation.PAGE_SIZE_MAX:
            raise validation.invalid(f"at most {validation.PAGE_SIZE_MAX} ids per call")
        return await self._products.view_many([i for i in set(ids) if 1 <= i <= 2**31 - 1])

    async def list_products(self, *, page_size: int, page_token: str, offset: int) -> Page[Product]:
        size = validation.page_size(page_size)
        rows = await self._products.list_page(
            after_id=validation.page_token("product", page_token),
            offset=validation.offset(offset),
            limit=size + 1,
        )
        next_token = encode_token("product", rows[size - 1].id) if len(rows) > size else ""
        return Page(items=rows[:size], next_page_token=next_token)

    async def create_product(
        self,
        caller: User,
        *,
        name: str,
        description: str,
        category: str,
        price: str,
        slogan: str,
        stock: int,
    ) -> Product:
        require_admin(caller)
        try:
            return await self._products.insert(
                name=validation.text("name", name, min_length=1, max_length=100),
                description=validation.text("description", description, max_length=MAX_DESCRIPTION),
                category=validation.text("category", category, min_length=1, max_length=50),
                price=validation.price(price),
                slogan=validation.text("slogan", slogan, max_length=255),
                stock=_stock(stock),
                actor=caller,
            )
        except Revoked:
            raise refused() from None
        except Demoted:  # an admin no more since the call was authenticated; its token holds
            raise not_admin() from None

    async def update_product(self, caller: User, product_id: int, **fields: Any) -> Product:
        """Change any of name, description, category, price, slogan, stock (None = keep)."""
        require_admin(caller)
        checks: dict[str, Callable[[Any], Any]] = {
            "name": lambda v: validation.text("name", v, min_length=1, max_length=100),
            "description": lambda v: validation.text("description", v, max_length=MAX_DESCRIPTION),
            "category": lambda v: validation.text("category", v, min_length=1, max_length=50),
            "price": validation.price,
            "slogan": lambda v: validation.text("slogan", v, max_length=255),
            "stock": _stock,
        }
        changes = {name: checks[name](v) for name, v in fields.items() if v is not None}
        try:
            product = await self._products.update(_id(product_id), changes, actor=caller)
        except Revoked:
            raise refused() from None
        except Demoted:  # an admin no more since the call was authenticated; its token holds
            raise not_admin() from None
        if product is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"product {product_id} not found")
        return product


def _stock(value: int) -> int:
    if not 0 <= value <= MAX_STOCK:
        raise validation.invalid(f"stock must be 0 to {MAX_STOCK}")
    return value
