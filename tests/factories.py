"""Test data factories: unique users, tokens and GraphQL calls against the running gateway."""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from typing import Any

import httpx

_GRPC_CALLS = re.compile(
    r'^gateway_grpc_calls_total\{code="[A-Z_]+",method="(\w+)"\} ([0-9.e+]+)$', re.M
)
_counter = itertools.count(1)
_run = os.getpid() % 10_000


@dataclass
class Account:
    sid: str
    username: str
    email: str
    password: str
    token: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def user_data(**overrides: str) -> dict[str, str]:
    n = next(_counter)
    data = {
        "sid": f"{_run:04d}{n:07d}",
        "username": f"user_{_run}_{n}",
        "email": f"user_{_run}_{n}@example.com",
        "password": f"correct horse {n}",
    }
    data.update(overrides)
    return data


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


async def make_user(client: httpx.AsyncClient, **overrides: str) -> Account:
    """Register a fresh customer through REST and log it in."""
    data = user_data(**overrides)
    created = await client.post("/api/v1/users/create", json=data)
    assert created.status_code == 201, created.text
    user = Account(**data)
    user.token = await login(client, user.username, user.password)
    return user


async def change_password(
    client: httpx.AsyncClient, account: Account, new: str = "another password 1"
) -> None:
    """Change `account`'s own password over REST, which revokes every token it had."""
    changed = await client.put(
        f"/api/v1/users/{account.sid}",
        json={"password": new, "current_password": account.password},
        headers=account.auth,
    )
    assert changed.status_code == 200, changed.text


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post(
        "/api/v1/users/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


async def admin_token(client: httpx.AsyncClient) -> str:
    from tests.conftest import ADMIN

    return await login(client, ADMIN["username"], ADMIN["password"])


async def make_product(
    client: httpx.AsyncClient, token: str, *, stock: int = 10, price: str = "12.50", **extra: Any
) -> dict[str, Any]:
    """Create a product as admin through REST; returns its JSON."""
    n = next(_counter)
    body = {
        "name": f"Test product {_run}-{n}",
        "description": "A product made by a test.",
        "category": "Testing",
        "price": price,
        "slogan": "Tested with pride!",
        "stock": stock,
        **extra,
    }
    response = await client.post(
        "/api/v1/products", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def grpc_calls(client: httpx.AsyncClient) -> dict[str, float]:
    """The gateway's gRPC calls so far, by method (all codes), from its /metrics."""
    totals: dict[str, float] = {}
    for method, value in _GRPC_CALLS.findall((await client.get("/metrics")).text):
        totals[method] = totals.get(method, 0.0) + float(value)
    return totals
