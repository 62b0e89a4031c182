"""The security matrix's shared cast and checks, made once for the whole package.

- `actors`: an admin token, two customers (alice, bob), a product and an order of each;
- `unchanged(stack)`: asserts that users, products (stock included) and orders are exactly as
  they were when the block ends;
- `assert_safe(response)`: no 5xx, no traceback, no SQL, no secret in what the client got.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import ADMIN, JWT_SECRET, Stack
from tests.factories import Account, admin_token, make_product, make_user

# What must never reach a client: a traceback, SQL, a hash, the signing secret.
LEAKS = (
    "Traceback",
    'File "',
    "asyncpg",
    "SELECT ",
    "INSERT INTO",
    "UPDATE products",
    "$argon2",
    "password_hash",
    JWT_SECRET,
    ADMIN["password"],
)


@dataclass
class Actors:
    admin: str
    alice: Account
    bob: Account
    product: dict[str, Any]
    alice_order: dict[str, Any]
    bob_order: dict[str, Any]

    def token(self, who: str) -> str | None:
        """The bearer token of "anonymous", "alice", "bob" or "admin"."""
        return {
            "anonymous": None,
            "alice": self.alice.token,
            "bob": self.bob.token,
            "admin": self.admin,
        }[who]

    def headers(self, who: str) -> dict[str, str]:
        token = self.token(who)
        return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="session")
async def actors(stack: Stack) -> Actors:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as c:
        admin = await admin_token(c)
        alice, bob = await make_user(c), await make_user(c)
        product = await make_product(c, admin, stock=100)
        orders = []
        for user in (alice, bob):
            placed = await c.post(
                "/api/v1/orders",
                json={"product_id": product["id"], "quantity": 1},
                headers=user.auth,
            )
            assert placed.status_code == 201, placed.text
            orders.append(placed.json())
    return Actors(admin, alice, bob, product, orders[0], orders[1])


async def fingerprint(database_url: str) -> dict[str, str]:
    """A digest of every row of users, products and orders (so of stock, too)."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        digests = {}
        for table in ("users", "products", "orders"):
            digests[table] = await conn.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {table} t"  # noqa: S608 - constant names
            )
        return digests
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def unchanged(stack: Stack) -> AsyncIterator[None]:
    """Fail unless users, products and orders are the same after the block as before it."""
    before = await fingerprint(stack.database_url)
    yield
    after = await fingerprint(stack.database_url)
    changed = [table for table in before if before[table] != after[table]]
    assert not changed, f"data changed in {changed}"


async def stock_of(client: httpx.AsyncClient, product_id: int) -> int:
    response = await client.get(f"/api/v1/products/{product_id}")
    assert response.status_code == 200, response.text
    stock: int = response.json()["stock"]
    return stock


def assert_safe(
    response: httpx.Response, *, secrets: Iterable[str] = (), allow: Iterable[int] = ()
) -> None:
    """No 5xx (except those in `allow`), and nothing in the body a client must not see."""
    assert response.status_code < 500 or response.status_code in set(allow), (
        f"{response.status_code}: {response.text[:500]}"
    )
    text = response.text
    for leak in (*LEAKS, *secrets):
        assert leak not in text, f"response leaks {leak[:20]!r}: {text[:300]}"


def graphql_codes(response: httpx.Response) -> list[str]:
    body = response.json()
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
