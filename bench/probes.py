"""What a scenario sends (HttpRequest) and how one answer is judged (Probe).

A request may carry KEY_MARK in its body or a header: wrk's Lua script replaces it with a key
unique to the run, thread and request (idempotency keys), and the correctness check with a
fresh random key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

KEY_MARK = "@@KEY@@"
JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request, as text: what wrk sends and what the check sends."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None

    @property
    def dynamic(self) -> bool:
        """Whether it needs a fresh key per request."""
        return KEY_MARK in (self.body or "") or any(KEY_MARK in v for v in self.headers.values())

    def with_key(self, key: str) -> HttpRequest:
        """This request with every KEY_MARK replaced by `key`."""
        headers = {k: v.replace(KEY_MARK, key) for k, v in self.headers.items()}
        body = self.body.replace(KEY_MARK, key) if self.body is not None else None
        return HttpRequest(self.method, self.path, headers, body)


# (HTTP status, parsed JSON body or None) -> a problem, or None when the answer is right.
Expect = Callable[[int, Any], str | None]


@dataclass(frozen=True)
class Probe:
    """A request and the judge of its answer."""

    request: HttpRequest
    expect: Expect


def post_json(path: str, payload: Any, headers: Mapping[str, str] | None = None) -> HttpRequest:
    """A POST with a compact JSON body."""
    body = json.dumps(payload, separators=(",", ":"))
    return HttpRequest("POST", path, {**JSON_HEADERS, **(headers or {})}, body)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}


def graphql_data(status: int, body: Any, field_name: str) -> tuple[Any, str | None]:
    """`data[field_name]` of a GraphQL answer, or a problem describing why there is none."""
    if status != 200:
        return None, f"HTTP {status}: {str(body)[:200]}"
    if not isinstance(body, dict):
        return None, "the answer is not a JSON object"
    if body.get("errors"):
        first = body["errors"][0]
        code = (first.get("extensions") or {}).get("code", "")
        return None, f"GraphQL error {code}: {first.get('message', '')[:200]}"
    data = body.get("data") or {}
    if data.get(field_name) is None:
        return None, f"data.{field_name} is missing or null"
    return data[field_name], None


def same_money(got: Any, expected: str) -> bool:
    """Whether a price from JSON (string or number) is exactly `expected`."""
    try:
        return Decimal(str(got)) == Decimal(expected)
    except ArithmeticError:
        return False


def product_problem(got: Any, product_id: int, name: str, price: str) -> str | None:
    """Whether `got` is the product `product_id` named `name` at `price`."""
    if not isinstance(got, dict):
        return "no product object"
    if got.get("id") != product_id or got.get("name") != name:
        return f"expected product {product_id} {name!r}, got {got.get('id')} {got.get('name')!r}"
    if not same_money(got.get("price"), price):
        return f"product {product_id}: expected price {price}, got {got.get('price')!r}"
    return None
