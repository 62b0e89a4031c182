"""What the services need from storage and hashing: protocols, and the errors they raise.

The services (use cases) depend on these alone, never on asyncpg or a concrete class:
`repositories/` implements them over PostgreSQL (the only code that knows SQL and asyncpg,
and translates its errors into the ones below), `passwords.Passwords` with Argon2, and the
unit tests with in-memory fakes (tests/unit/fakes.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from db_service.models import Order, Product, ProductView, Role, User


class Taken(Exception):
    """A unique value (sid, username, email) that another user already has."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is already taken")
        self.field = field


class LastAdmin(Exception):
    """The change would leave no active admin (deactivating the last one)."""


class Revoked(Exception):
    """The acting user's token no longer holds where the change would commit: the user was
    deactivated, or their token version moved on, after the call was authenticated."""


class Demoted(Exception):
    """The acting admin is an admin no more where the change would commit (its role changed
    after the call was authenticated). No token is revoked by that: the caller is answered as
    its next call would be, FORBIDDEN, not UNAUTHENTICATED."""


class KeyTaken(Exception):
    """Another request with the same idempotency key committed first."""


@dataclass(frozen=True, slots=True)
class Placement:
    """One order to place as the holder of a token (sid and version), counted in its user's
    window of `window_s` seconds, which allows at most `max_attempts` attempts."""

    sid: str
    token_version: int
    product_id: int
    quantity: int
    key: str | None
    max_attempts: int
    window_s: int


@dataclass(frozen=True, slots=True)
class PlaceAttempt:
    """What one placing of an order, authenticated by its own statement, found and did.

    The statement decides nothing the service must: it stops at the first step that refuses
    (a replay stops before counting, a rate limit before the stock) and reports what it saw.
    """

    caller: User
    # The order this idempotency key already placed: a replay, counted nowhere, nothing done.
    earlier: Order | None
    # Attempts in the caller's window with this one, and seconds until the window ends
    # (0 and 0 for a replay).
    attempts: int
    retry_after_s: int
    # The product's stock before this order (as locked, less what the orders placed before it
    # in the same statement took); None when there is no such product or the attempt stopped
    # before it (a replay, or over the rate limit).
    stock: int | None
    # The order placed; None when the stock was short (or there is no such product).
    order: Order | None


class UserStore(Protocol):
    """Users, their login attempts and the per-client window of logins and registrations."""

    async def get_by_sid(self, sid: str) -> User | None: ...

    async def get_by_ids(self, ids: list[int]) -> list[User]: ...

    async def get_login(self, username: str) -> tuple[User, str] | None:
        """The user and password hash for a username, or None."""
        ...

    async def taken_field(self, *, sid: str, username: str, email: str) -> str | None: ...

    async def insert(
        self, *, sid: str, username: str, email: str, password_hash: str, role: Role
    ) -> User:
        """Raises Taken when a unique value is already another user's."""
        ...

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
        """Change the given fields; a new password or deactivation revokes every token (the
        token version goes up). None for no such user; raises Taken like `insert`.

        `actor`: the authenticated caller making the change, checked again in the change's
        transaction (still active, the same token version, still an admin when the account is
        another's); raises Revoked when the token no longer holds, Demoted when only the admin
        role does not."""
        ...

    async def list_page(self, *, after_id: int, offset: int, limit: int) -> list[User]: ...

    async def count_login_attempt(
        self, username_key: str, client_key: str, *, window_s: int
    ) -> tuple[int, int]:
        """Count one attempt at an account from a client: (attempts in the window, seconds
        until it ends)."""
        ...

    async def clear_login_attempts(self, username_key: str, client_key: str) -> None: ...

    async def count_client_attempt(self, client_key: str, *, window_s: int) -> tuple[int, int]:
        """Count one login or registration from a client: (attempts so far, seconds left)."""
        ...


class ProductStore(Protocol):
    async def get(self, product_id: int) -> Product | None: ...

    async def get_many(self, ids: list[int]) -> list[Product]: ...

    async def view(self, product_id: int) -> ProductView | None: ...

    async def view_many(self, ids: list[int]) -> Sequence[ProductView]: ...

    async def list_page(self, *, after_id: int, offset: int, limit: int) -> list[Product]: ...

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
        """`actor`, the caller, is checked again where the product commits: raises Revoked
        when it is no longer active or on its token's version, Demoted when no admin."""
        ...

    async def update(
        self, product_id: int, changes: dict[str, Any], actor: User | None = None
    ) -> Product | None:
        """None for no such product; `actor` as for `insert`."""
        ...


class OrderStore(Protocol):
    async def get(self, order_id: int) -> Order | None: ...

    async def get_many(self, ids: list[int]) -> list[Order]: ...

    async def get_by_key(self, *, user_id: int, key: str) -> Order | None: ...

    async def list_page(
        self, *, user_id: int | None, after_id: int, offset: int, limit: int
    ) -> list[Order]: ...

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
        """`list_page`, each order with its product and/or its owner (None when not asked)."""
        ...

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
        """The caller (an active user with this sid and token version) and its page (every
        user's with `all_users` for an admin); None when the token is refused."""
        ...

    async def place(
        self, *, user_id: int, user_sid: str, product_id: int, quantity: int, key: str | None
    ) -> Order | None:
        """Take stock and record the order atomically; None when stock is short or there is
        no such product. Raises KeyTaken when another order won the idempotency key."""
        ...

    async def place_as(self, placement: Placement) -> PlaceAttempt | None:
        """`place`, authenticated and counted in the same transaction: the caller (an active
        user with the placement's sid and token version), the replay of its key, one attempt
        counted in the caller's order window, and the order placed while that count is at most
        `max_attempts`, each step only when the previous one allows it. None when the token
        is refused. Never raises KeyTaken: when a concurrent request commits the same key
        first, this one is its replay (and, like every replay, not counted)."""
        ...

    async def cancel(
        self, order_id: int, *, user_id: int | None, actor: User | None = None
    ) -> Order | None:
        """Cancel a placed order (of `user_id` only, unless None) and put its stock back,
        exactly once; None if there is no such placed order. `actor`, the caller, is checked
        again first: raises Revoked when its token no longer holds, Demoted when it acted as an
        admin and is one no more."""
        ...

    async def count_order_attempt(self, user_id: int, *, window_s: int) -> tuple[int, int]: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; the same work whether or not there is a hash."""
        ...
