"""openapi.yaml against the running REST API: the served routes and their auth agree with it, and
schemathesis, fuzzing every operation with a registered customer's token (and the read-only ones
with the admin's), finds no 5xx and no response that breaks the description."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case

from gateway.rest.docs import load_openapi
from tests.conftest import ADMIN, Stack
from tests.factories import user_data

SPEC = load_openapi()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    if method in ("get", "put", "post", "delete", "patch")
]
# Bounded and repeatable: a fixed seed, at most this many generated cases per operation and
# phase, and no shrinking (a failure is reported as found, which is quick enough to read).
MAX_EXAMPLES = 20
SEED = 20241130


def _login(base_url: str, username: str, password: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/users/login",
        json={"username": username, "password": password},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture(scope="module")
def customer_token(stack: Stack) -> str:
    """A freshly registered customer's bearer token."""
    data = user_data()
    created = httpx.post(f"{stack.gateway_url}/api/v1/users/create", json=data, timeout=10)
    assert created.status_code == 201, created.text
    return _login(stack.gateway_url, data["username"], data["password"])


@pytest.fixture(scope="module")
def admin_token(stack: Stack) -> str:
    return _login(stack.gateway_url, ADMIN["username"], ADMIN["password"])


# Loaded from the file at collection, one test per operation; the base URL and the token are
# only known once the stack runs, so each call gets them. (The served JSON is checked to be this
# file in tests/unit/test_openapi.py.)
SCHEMA = schemathesis.openapi.from_dict(
    SPEC,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": 10,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "no-shrink": True,
                "deterministic": True,
                "database": "none",
            },
        }
    ),
)


@SCHEMA.parametrize()
def test_the_api_keeps_its_description_for_a_customer(
    case: Case, gateway_url: str, customer_token: str
) -> None:
    case.call_and_validate(
        base_url=gateway_url, headers={"Authorization": f"Bearer {customer_token}"}
    )


# The admin only reads: fuzzing admin writes would rewrite the catalog other tests order from.
@SCHEMA.include(method="GET").parametrize()
def test_the_api_keeps_its_description_for_the_admin(
    case: Case, gateway_url: str, admin_token: str
) -> None:
    case.call_and_validate(base_url=gateway_url, headers={"Authorization": f"Bearer {admin_token}"})


# --- route coverage and auth, checked against the running gateway -------------------------------


def _concrete(path: str) -> str:
    # Any value will do: a protected route must refuse before it looks at the path.
    return path.replace("{sid}", "12113053").replace("{id}", "1")


@pytest.fixture(scope="module")
def anonymous(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "operation"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_every_described_route_is_served_with_its_security(
    anonymous: httpx.Client, method: str, path: str, operation: dict[str, Any]
) -> None:
    # given an anonymous caller (and an empty JSON body, where the route takes one)
    body = {"json": {}} if "requestBody" in operation else {}

    # when it calls the route
    response = anonymous.request(method, _concrete(path), **body)

    # then the route exists, and it wants a bearer token exactly when the description says so
    # (no described route answers an anonymous caller 404: product 1 is seeded)
    assert response.status_code not in (404, 405), f"{method} {path} is not served"
    protected = operation["security"] != []
    assert (response.status_code == 401) == protected, response.text
    if protected:
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"].startswith("Bearer")


# --- regressions schemathesis found (fixed in the gateway) -----------------------------------


def test_integral_json_numbers_are_integers(anonymous: httpx.Client, customer_token: str) -> None:
    # given an order whose quantity is written 1.0 (a JSON integer by JSON Schema's rules)
    auth = {"Authorization": f"Bearer {customer_token}"}
    body = b'{"product_id": 1, "quantity": 1.0}'

    # when it is placed
    response = anonymous.post(
        "/api/v1/orders", content=body, headers={**auth, "Content-Type": "application/json"}
    )

    # then it is accepted like quantity 1
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/users/12113053", {"GET", "HEAD", "PUT", "DELETE"}),
        ("/api/v1/products", {"GET", "HEAD", "POST"}),
        ("/api/v1/products/1", {"GET", "HEAD", "PUT"}),
        ("/api/v1/orders", {"GET", "HEAD", "POST"}),
        ("/api/v1/orders/1", {"GET", "HEAD", "DELETE"}),
    ],
)
def test_405_lists_every_method_of_the_resource(
    anonymous: httpx.Client, path: str, methods: set[str]
) -> None:
    # when a resource is called with a method it does not support
    response = anonymous.request("PATCH", path)

    # then the 405 names every method it does support (RFC 9110 §15.5.6), as an error body
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == methods
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
