"""Order use cases: place (idempotently, never overselling), read, list, cancel."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from db_service import validation
from db_service.errors import DomainError, ErrorCode
from db_service.models import Order, Product, Role, User
from db_service.ports import (
    Demoted,
    KeyTaken,
    OrderStore,
    Placement,
    ProductStore,
    Revoked,
    UserStore,
)
from db_service.services.auth import refused, require_self_or_admin
from protos.page_tokens import encode_token
from protos.tokens import Claims

MAX_KEY_LENGTH = 128


def _not_found(order_id: int) -> DomainError:
    # The same answer for a missing order and for someone else's: ids reveal nothing.
    return DomainError(ErrorCode.NOT_FOUND, f"order {order_id} not found")


def _visible(caller: User, order: Order | None) -> bool:
    return order is not None and (caller.is_admin or order.user_id == caller.id)


@dataclass(frozen=True, slots=True)
class OrderPageRequest:
    """What a ListOrders call asks for, as the client sent it: the service validates it."""

    user_sid: str = ""  # whose orders ("": the caller's)
    all_users: bool = False  # an admin's every order
    page_size: int = 0  # 0: the default size
    page_token: str = ""
    offset: int = 0
    include_product: bool = False
    include_user: bool = False


@dataclass(frozen=True, slots=True)
class OrderPage:
    """A page of orders, the token of the next one, and the related rows asked for with it."""

    items: list[Order]
    next_page_token: str
    products: list[Product] = field(default_factory=list)
    users: list[User] = field(default_factory=list)


def _visible_users(caller: User, owners: dict[int, User]) -> list[User]:
    """The owners the caller may see, by GetUsersByIds' rule: a customer only themselves."""
    if caller.is_admin:
        return list(owners.values())
    return [caller] if caller.id in owners else []


@dataclass(frozen=True, slots=True)
class OrderRatePolicy:
    """At most `max_orders` order attempts per user in each window of `window_s` seconds."""

    max_orders: int = 30
    window_s: int = 60


class OrderService:
    def __init__(
        self,
        orders: OrderStore,
        products: ProductStore,
        users: UserStore,
        rate: OrderRatePolicy | None = None,
    ) -> None:
        self._orders = orders
        self._products = products
        self._users = users
        self._rate = rate or OrderRatePolicy()

    async def place_order(
        self, caller: User, *, product_id: int, quantity: int, idempotency_key: str
    ) -> Order:
        if not 1 <= quantity <= validation.QUANTITY_MAX:
            raise validation.invalid(f"quantity must be 1 to {validation.QUANTITY_MAX}")
        key = _key(idempotency_key)
        if key is not None:
            earlier = await self._orders.get_by_key(user_id=caller.id, key=key)
            if earlier is not None:
                return _replay(earlier, product_id, quantity)
        # Replays above are free; every new attempt counts, successful or not.
        await self._check_rate(caller)
        if not 1 <= product_id <= 2**31 - 1:
            raise DomainError(ErrorCode.NOT_FOUND, f"product {product_id} not found")
        try:
            order = await self._orders.place(
                user_id=caller.id,
                user_sid=caller.sid,
                product_id=product_id,
                quantity=quantity,
                key=key,
            )
        except KeyTaken:
            assert key is not None
            winner = await self._orders.get_by_key(user_id=caller.id, key=key)
            assert winner is not None
            return _replay(winner, product_id, quantity)
        if order is None:
            if await self._products.get(product_id) is None:
                raise DomainError(ErrorCode.NOT_FOUND, f"product {product_id} not found")
            raise DomainError(ErrorCode.OUT_OF_STOCK, f"product {product_id} is out of stock")
        return order

    async def place_order_as(
        self, claims: Claims, *, product_id: int, quantity: int, idempotency_key: str
    ) -> tuple[User, Order] | None:
        """`place_order` for the token's user, authenticated, counted and placed by one
        statement (shared with the concurrent placements of the same product): one round trip
        and one commit instead of four round trips and three commits, with the same answers
        in the same order of checks as `authenticate, then place_order`.

        None when the input is invalid (its error must come after the authentication's: the
        general path gives both); raises UNAUTHENTICATED when the token is revoked, and every
        other refusal only after the caller is authenticated."""
        if not 1 <= quantity <= 3:
            return None
        try:
            key = _key(idempotency_key)
        except DomainError:
            return None
        attempt = await self._orders.place_as(
            Placement(
                sid=claims.sid,
                token_version=claims.version,
                product_id=product_id,
                quantity=quantity,
                key=key,
                max_attempts=self._rate.max_orders,
                window_s=self._rate.window_s,
            )
        )
        if attempt is None:
            raise refused()
        caller = attempt.caller
        if attempt.earlier is not None:
            return caller, _replay(attempt.earlier, product_id, quantity)
        self._refuse_over_limit(attempt.attempts, attempt.retry_after_s)
        if attempt.order is not None:
            return caller, attempt.order
        if attempt.stock is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"product {product_id} not found")
        raise DomainError(ErrorCode.OUT_OF_STOCK, f"product {product_id} is out of stock")

    async def _check_rate(self, caller: User) -> None:
        attempts, retry_after = await self._orders.count_order_attempt(
            caller.id, window_s=self._rate.window_s
        )
        self._refuse_over_limit(attempts, retry_after)

    def _refuse_over_limit(self, attempts: int, retry_after: int) -> None:
        if attempts > self._rate.max_orders:
            raise DomainError(
                ErrorCode.RATE_LIMITED,
                f"at most {self._rate.max_orders} orders per {self._rate.window_s} s;"
                f" retry in {retry_after} s",
                retry_after_s=retry_after,
            )

    async def get_order(self, caller: User, order_id: int) -> Order:
        order = await self._orders.get(order_id) if 1 <= order_id <= 2**31 - 1 else None
        if order is None or not _visible(caller, order):
            raise _not_found(order_id)
        return order

    async def get_orders_by_ids(self, caller: User, ids: list[int]) -> list[Order]:
        if len(ids) > validation.PAGE_SIZE_MAX:
            raise validation.invalid(f"at most {validation.PAGE_SIZE_MAX} ids per call")
        orders = await self._orders.get_many([i for i in set(ids) if 1 <= i <= 2**31 - 1])
        return [o for o in orders if _visible(caller, o)]

    async def list_orders(self, caller: User, query: OrderPageRequest) -> OrderPage:
        size = validation.page_size(query.page_size)
        after = validation.page_token("order", query.page_token)
        owner: int | None = caller.id
        user_sid = query.user_sid
        if user_sid and user_sid != caller.sid:
            require_self_or_admin(caller, user_sid)
            user = await self._users.get_by_sid(user_sid) if validation.is_sid(user_sid) else None
            if user is None:
                raise DomainError(ErrorCode.NOT_FOUND, f"user {user_sid!r} not found")
            owner = user.id
        elif query.all_users and caller.is_admin:
            owner = None
        start, limit = validation.offset(query.offset), size + 1
        if not (query.include_product or query.include_user):
            rows = await self._orders.list_page(
                user_id=owner, after_id=after, offset=start, limit=limit
            )
            next_token = encode_token("order", rows[size - 1].id) if len(rows) > size else ""
            return OrderPage(items=rows[:size], next_page_token=next_token)
        joined = await self._orders.list_page_with(
            user_id=owner,
            after_id=after,
            offset=start,
            limit=limit,
            product=query.include_product,
            user=query.include_user,
        )
        return _page(caller, joined, size)

    async def list_orders_as(
        self, claims: Claims, query: OrderPageRequest
    ) -> tuple[User, OrderPage] | None:
        """`list_orders` for the token's own orders (or an admin's all), authenticated by the
        page's statement itself: one round trip instead of two. None when this call needs the
        general path (another user's orders, or invalid input, whose error must come after
        the authentication's); raises UNAUTHENTICATED when the token is revoked."""
        if query.user_sid not in ("", claims.sid):
            return None
        try:
            size = validation.page_size(query.page_size)
            after = validation.page_token("order", query.page_token)
            start = validation.offset(query.offset)
        except DomainError:
            return None
        found = await self._orders.list_page_as(
            sid=claims.sid,
            token_version=claims.version,
            all_users=query.all_users,
            after_id=after,
            offset=start,
            limit=size + 1,
            product=query.include_product,
            user=query.include_user,
        )
        if found is None:
            raise refused()
        caller, joined = found
        return caller, _page(caller, joined, size)

    async def cancel_order(self, caller: User, order_id: int) -> Order:
        if not 1 <= order_id <= 2**31 - 1:
            raise _not_found(order_id)
        try:
            cancelled = await self._orders.cancel(
                order_id, user_id=None if caller.is_admin else caller.id, actor=caller
            )
        except Revoked:
            raise refused() from None
        except Demoted:
            # An admin no more since the call was authenticated, its token still valid: the
            # cancel goes on as the customer it now is (its own order, or NOT_FOUND).
            return await self.cancel_order(
                dataclasses.replace(caller, role=Role.CUSTOMER), order_id
            )
        if cancelled is not None:
            return cancelled
        existing = await self._orders.get(order_id)
        if not _visible(caller, existing):
            raise _not_found(order_id)
        raise DomainError(ErrorCode.FAILED_PRECONDITION, f"order {order_id} is already cancelled")


def _page(
    caller: User, joined: list[tuple[Order, Product | None, User | None]], size: int
) -> OrderPage:
    """A page from `size + 1` joined rows: the extra row only says a next page exists."""
    next_token = encode_token("order", joined[size - 1][0].id) if len(joined) > size else ""
    joined = joined[:size]
    products = {p.id: p for _, p, _ in joined if p is not None}
    owners = {u.id: u for _, _, u in joined if u is not None}
    return OrderPage(
        items=[o for o, _, _ in joined],
        next_page_token=next_token,
        products=sorted(products.values(), key=lambda p: p.id),
        users=_visible_users(caller, owners),
    )


def _key(value: str) -> str | None:
    if not value:
        return None
    # REST's Idempotency-Key reaches us without the spaces around it (an HTTP server never
    # reads them as part of a header's value), so a GraphQL key is read the same way: else
    # one key retried through the other API was another key, and placed a second order.
    # A key of spaces only is refused rather than read as no key: the gateway retries a
    # keyed order, and a retried order without a key may be placed twice.
    value = value.strip(" ")
    if not value or len(value) > MAX_KEY_LENGTH or not value.isprintable():
        raise validation.invalid(
            f"idempotency key must be 1 to {MAX_KEY_LENGTH} printable characters"
        )
    return value


def _replay(earlier: Order, product_id: int, quantity: int) -> Order:
    """The first order again for a retry; a conflict when the key is reused for another order."""
    if (earlier.product_id, earlier.quantity) != (product_id, quantity):
        raise DomainError(
            ErrorCode.CONFLICT, "this idempotency key was already used for a different order"
        )
    return earlier
