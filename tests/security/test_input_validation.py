"""Matrix, input validation: out-of-range, mistyped and hostile values, refused, changing nothing.

Every row is a 400 / BAD_USER_INPUT (or a 404 / NOT_FOUND for an id that cannot exist), never a
5xx, whatever a value would do further down (an int32 overflow in protobuf, a varchar or
numeric(10,2) overflow or a NUL byte in PostgreSQL).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.factories import make_user
from tests.graphqlws import GraphQLSocket
from tests.security.conftest import Actors, assert_safe, graphql_codes, unchanged

PRODUCT = {"name": "Valid name", "category": "Valid", "price": "1.00", "stock": 1}


def _product(**changes: Any) -> dict[str, Any]:
    return {**PRODUCT, **changes}


def _order(**changes: Any) -> dict[str, Any]:
    return {"product_id": "{product}", "quantity": 1, **changes}


# (case, who, method, path, JSON body, extra headers, expected status)
REST: list[tuple[str, str, str, str, Any, dict[str, str], int]] = [
    ("negative price", "admin", "POST", "/api/v1/products", _product(price="-1.00"), {}, 400),
    ("price with 3 decimals", "admin", "POST", "/api/v1/products", _product(price="1.999"), {},
     400),
    ("price over numeric(10,2)", "admin", "POST", "/api/v1/products", _product(price="1e12"),
     {}, 400),
    ("price NaN", "admin", "POST", "/api/v1/products", _product(price="NaN"), {}, 400),
    ("price over a third of numeric(10,2)", "admin", "POST", "/api/v1/products",
     _product(price="33333333.34"), {}, 400),
    ("update price over a third of numeric(10,2)", "admin", "PUT", "/api/v1/products/{product}",
     {"price": 33333333.34}, {}, 400),
    ("price Infinity", "admin", "POST", "/api/v1/products", _product(price="Infinity"), {}, 400),
    # A price string is plain ASCII digits, as openapi.yaml's pattern says: not whatever
    # Python's Decimal() takes (underscores, spaces, other scripts' digits, signs, exponents).
    ("price string with an underscore", "admin", "POST", "/api/v1/products",
     _product(price="1_000"), {}, 400),
    ("price string padded with spaces", "admin", "POST", "/api/v1/products",
     _product(price=" 12.50\n"), {}, 400),
    ("price string in Arabic-Indic digits", "admin", "POST", "/api/v1/products",
     _product(price="\u0661\u0662"), {}, 400),
    ("price string with a plus sign", "admin", "POST", "/api/v1/products",
     _product(price="+5"), {}, 400),
    ("price string with an exponent", "admin", "POST", "/api/v1/products",
     _product(price="1e2"), {}, 400),
    ("update to a price string with an underscore", "admin", "PUT",
     "/api/v1/products/{product}", {"price": "2_0"}, {}, 400),
    ("price true", "admin", "POST", "/api/v1/products", _product(price=True), {}, 400),
    ("price 1e999999999 (a JSON number)", "admin", "POST", "/api/v1/products",
     _product(price=Decimal("1e999999999")), {}, 400),
    ("price 1e-999999999 (a JSON number)", "admin", "POST", "/api/v1/products",
     _product(price=Decimal("1e-999999999")), {}, 400),
    ("name of 101 characters", "admin", "POST", "/api/v1/products", _product(name="n" * 101),
     {}, 400),
    ("empty name", "admin", "POST", "/api/v1/products", _product(name=""), {}, 400),
    ("blank name", "admin", "POST", "/api/v1/products", _product(name=" \t "), {}, 400),
    ("update to a blank category", "admin", "PUT", "/api/v1/products/{product}",
     {"category": "   "}, {}, 400),
    ("NUL in the name", "admin", "POST", "/api/v1/products", _product(name="a\x00b"), {}, 400),
    ("a lone surrogate in the name", "admin", "POST", "/api/v1/products",
     _product(name="a\ud800b"), {}, 400),
    ("a lone surrogate in a username to log in", "anonymous", "POST", "/api/v1/users/login",
     {"username": "\ud800", "password": "password-123"}, {}, 400),
    ("a lone surrogate in a password", "anonymous", "POST", "/api/v1/users/create",
     {"sid": "99887765", "username": "surrogate_user", "email": "su@example.com",
      "password": "password-\udc00"}, {}, 400),
    ("category of 51 characters", "admin", "POST", "/api/v1/products",
     _product(category="c" * 51), {}, 400),
    ("slogan of 256 characters", "admin", "POST", "/api/v1/products",
     _product(slogan="s" * 256), {}, 400),
    ("description of 2001 characters", "admin", "POST", "/api/v1/products",
     _product(description="d" * 2001), {}, 400),
    ("negative stock", "admin", "POST", "/api/v1/products", _product(stock=-1), {}, 400),
    ("stock over the maximum", "admin", "POST", "/api/v1/products", _product(stock=1_000_001),
     {}, 400),
    ("stock beyond int32", "admin", "POST", "/api/v1/products", _product(stock=2**40), {}, 400),
    ("stock beyond int64", "admin", "POST", "/api/v1/products", _product(stock=2**70), {}, 400),
    ("stock as a string", "admin", "POST", "/api/v1/products", _product(stock="10"), {}, 400),
    ("a field that is not a product's", "admin", "POST", "/api/v1/products",
     _product(id=1), {}, 400),
    ("update stock below zero", "admin", "PUT", "/api/v1/products/{product}", {"stock": -5},
     {}, 400),
    ("quantity 0", "alice", "POST", "/api/v1/orders", _order(quantity=0), {}, 400),
    ("quantity 4", "alice", "POST", "/api/v1/orders", _order(quantity=4), {}, 400),
    ("quantity -1", "alice", "POST", "/api/v1/orders", _order(quantity=-1), {}, 400),
    ("quantity 1.5", "alice", "POST", "/api/v1/orders", _order(quantity=1.5), {}, 400),
    ("quantity as a string", "alice", "POST", "/api/v1/orders", _order(quantity="1"), {}, 400),
    ("quantity true", "alice", "POST", "/api/v1/orders", _order(quantity=True), {}, 400),
    ("quantity 1e999999999", "alice", "POST", "/api/v1/orders",
     _order(quantity=Decimal("1e999999999")), {}, 400),
    ("quantity of 5 000 digits", "alice", "POST", "/api/v1/orders",
     _order(quantity=Decimal("9" * 5000)), {}, 400),
    ("product id beyond int32", "alice", "POST", "/api/v1/orders", _order(product_id=2**31),
     {}, 400),
    ("product id negative", "alice", "POST", "/api/v1/orders", _order(product_id=-5), {}, 404),
    ("product id null", "alice", "POST", "/api/v1/orders", _order(product_id=None), {}, 400),
    ("quantity missing", "alice", "POST", "/api/v1/orders", {"product_id": 1}, {}, 400),
    ("idempotency key of 129 characters", "alice", "POST", "/api/v1/orders", _order(),
     {"Idempotency-Key": "k" * 129}, 400),
    ("idempotency key with a tab", "alice", "POST", "/api/v1/orders", _order(),
     {"Idempotency-Key": "a\tb"}, 400),
    ("SQL in a sid", "anonymous", "POST", "/api/v1/users/create",
     {"sid": "1' OR '1'='1", "username": "sqli_user", "email": "s@example.com",
      "password": "password-123"}, {}, 400),
    ("markup in a username", "anonymous", "POST", "/api/v1/users/create",
     {"sid": "99887766", "username": "<script>x</script>", "email": "x@example.com",
      "password": "password-123"}, {}, 400),
    ("limit 0", "anonymous", "GET", "/api/v1/products?limit=0", None, {}, 400),
    ("limit 101", "anonymous", "GET", "/api/v1/products?limit=101", None, {}, 400),
    ("limit not a number", "anonymous", "GET", "/api/v1/products?limit=ten", None, {}, 400),
    ("limit of 20 digits", "anonymous", "GET", "/api/v1/products?limit=99999999999999999999",
     None, {}, 400),
    ("negative offset", "anonymous", "GET", "/api/v1/products?offset=-1", None, {}, 400),
    # A parameter given twice has no one meaning: a proxy or cache may read the other value.
    ("limit twice", "anonymous", "GET", "/api/v1/products?limit=1&limit=2", None, {}, 400),
    ("limit twice, the same", "anonymous", "GET", "/api/v1/products?limit=5&limit=5", None, {},
     400),
    ("offset twice", "anonymous", "GET", "/api/v1/products?offset=0&offset=1", None, {}, 400),
    ("limit twice, listing users", "admin", "GET", "/api/v1/users?limit=1&limit=2", None, {},
     400),
    ("offset twice, listing orders", "alice", "GET", "/api/v1/orders?limit=3&offset=0&offset=1",
     None, {}, 400),
    ("product id not a number", "anonymous", "GET", "/api/v1/products/abc", None, {}, 400),
    ("product id with a plus sign", "anonymous", "GET", "/api/v1/products/+1", None, {}, 400),
    ("product id after a space", "anonymous", "GET", "/api/v1/products/%201", None, {}, 400),
    ("product id in fullwidth digits", "anonymous", "GET", "/api/v1/products/%EF%BC%91", None,
     {}, 400),
    ("product id with an underscore", "anonymous", "GET", "/api/v1/products/1_0", None, {}, 400),
    ("limit in Arabic-Indic digits", "anonymous", "GET", "/api/v1/products?limit=%D9%A5", None,
     {}, 400),
    ("product id 0", "anonymous", "GET", "/api/v1/products/0", None, {}, 404),
    ("product id of 11 digits", "anonymous", "GET", "/api/v1/products/99999999999", None, {},
     404),
    ("order id beyond int32", "alice", "DELETE", "/api/v1/orders/4294967296", None, {}, 404),
    ("a sid of 300 characters", "admin", "GET", "/api/v1/users/" + "9" * 300, None, {}, 404),
    ("a sid with a NUL byte", "admin", "GET", "/api/v1/users/12%0034", None, {}, 404),
]  # fmt: skip


def _json(value: Any) -> str:
    """JSON with each Decimal written as the number it is (1e999999999 stays that short)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_json(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _fill(value: Any, actors: Actors) -> Any:
    if isinstance(value, str):
        return value.replace("{product}", str(actors.product["id"]))
    if isinstance(value, dict):
        return {k: actors.product["id"] if v == "{product}" else v for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("case", "who", "method", "path", "body", "headers", "status"),
    REST,
    ids=[row[0] for row in REST],
)
async def test_rest_refuses_bad_values(
    client: httpx.AsyncClient,
    stack: Stack,
    actors: Actors,
    case: str,
    who: str,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
) -> None:
    # given a request carrying one bad value; when it is sent
    started = time.monotonic()
    async with unchanged(stack):
        response = await client.request(
            method,
            _fill(path, actors),
            content=None if body is None else _json(_fill(body, actors)).encode(),
            headers={**actors.headers(who), **headers, "Content-Type": "application/json"},
        )

    # then it is refused with 400 (404 for ids that cannot exist), promptly, changing nothing
    assert time.monotonic() - started < 5
    assert_safe(response)
    assert response.status_code == status, response.text
    expected = {400: "BAD_USER_INPUT", 404: "NOT_FOUND"}[status]
    assert response.json()["error"]["code"] == expected


CREATE = "mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }"
UPDATE = "mutation($p: Int!, $i: UpdateProductInput!) { updateProduct(id: $p, input: $i) { id } }"
PLACE = (
    "mutation($p: Int!, $q: Int!, $k: String) "
    "{ placeOrder(productId: $p, quantity: $q, idempotencyKey: $k) { id } }"
)
PRODUCTS = "query($n: Int, $a: String) { products(first: $n, after: $a) { edges { cursor } } }"
ORDERS = "query($a: String) { orders(after: $a) { edges { cursor } } }"

# (case, who, document, variables, expected code)
GRAPHQL: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("price with 3 decimals", "admin", CREATE, {"i": _product(price="1.999")},
     "BAD_USER_INPUT"),
    ("price as a huge JSON number", "admin", CREATE, {"i": _product(price=1e300)},
     "BAD_USER_INPUT"),
    ("price not a number", "admin", CREATE, {"i": _product(price="twelve")}, "BAD_USER_INPUT"),
    ("price over a third of numeric(10,2)", "admin", CREATE,
     {"i": _product(price="33333333.34")}, "BAD_USER_INPUT"),
    ("price 1e999999999", "admin", CREATE, {"i": _product(price="1e999999999")},
     "BAD_USER_INPUT"),
    # The Decimal scalar reads a number's JSON syntax, not whatever Python's Decimal() takes:
    # REST refuses these price strings (above), so the GraphQL twin must too.
    ("price string with an underscore", "admin", CREATE, {"i": _product(price="1_000")},
     "BAD_USER_INPUT"),
    ("price string padded with spaces", "admin", CREATE, {"i": _product(price=" 12.50\n")},
     "BAD_USER_INPUT"),
    ("price string in Arabic-Indic digits", "admin", CREATE,
     {"i": _product(price="\u0661\u0662")}, "BAD_USER_INPUT"),
    ("price string with a plus sign", "admin", CREATE, {"i": _product(price="+5")},
     "BAD_USER_INPUT"),
    ("update to a price string with an underscore", "admin", UPDATE,
     {"p": "{product}", "i": {"price": "2_0"}}, "BAD_USER_INPUT"),
    ("stock beyond Int", "admin", CREATE, {"i": _product(stock=2**31)}, "BAD_USER_INPUT"),
    ("update stock below zero", "admin", UPDATE, {"p": "{product}", "i": {"stock": -1}},
     "BAD_USER_INPUT"),
    ("quantity 0", "alice", PLACE, {"p": "{product}", "q": 0}, "BAD_USER_INPUT"),
    ("quantity 4", "alice", PLACE, {"p": "{product}", "q": 4}, "BAD_USER_INPUT"),
    ("idempotency key of 129 characters", "alice", PLACE,
     {"p": "{product}", "q": 1, "k": "k" * 129}, "BAD_USER_INPUT"),
    ("first 0", "anonymous", PRODUCTS, {"n": 0}, "BAD_USER_INPUT"),
    ("first 101", "anonymous", PRODUCTS, {"n": 101}, "BAD_USER_INPUT"),
    ("first negative", "anonymous", PRODUCTS, {"n": -1}, "BAD_USER_INPUT"),
    ("a garbage cursor", "anonymous", PRODUCTS, {"a": "'; DROP TABLE products; --"},
     "BAD_USER_INPUT"),
    ("a cursor of another kind", "alice", ORDERS, {"a": "{product_cursor}"},
     "BAD_USER_INPUT"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "who", "document", "variables", "code"), GRAPHQL, ids=[row[0] for row in GRAPHQL]
)
async def test_graphql_refuses_bad_values(
    client: httpx.AsyncClient,
    stack: Stack,
    actors: Actors,
    case: str,
    who: str,
    document: str,
    variables: dict[str, Any],
    code: str,
) -> None:
    # given an operation with one bad variable
    cursor = await client.post(
        "/graphql", json={"query": "{ products(first: 1) { edges { cursor } } }"}
    )
    product_cursor = cursor.json()["data"]["products"]["edges"][0]["cursor"]
    filled = {
        name: actors.product["id"]
        if value == "{product}"
        else product_cursor
        if value == "{product_cursor}"
        else value
        for name, value in variables.items()
    }

    # when it is sent
    async with unchanged(stack):
        response = await client.post(
            "/graphql", json={"query": document, "variables": filled}, headers=actors.headers(who)
        )

    # then it is refused as bad input and nothing changes
    assert_safe(response)
    assert response.status_code == 200
    assert graphql_codes(response) == [code]


async def test_graphql_refuses_a_lone_surrogate_in_its_variables(
    client: httpx.AsyncClient, stack: Stack, actors: Actors
) -> None:
    # given a login whose username variable is the JSON escape of half a surrogate pair
    body = json.dumps(
        {
            "query": 'mutation($u: String!) { login(username: $u, password: "password-123") '
            "{ token } }",
            "variables": {"u": "\ud800"},
        }
    )
    assert "\\ud800" in body

    # when it is sent
    async with unchanged(stack):
        response = await client.post(
            "/graphql", content=body.encode(), headers={"Content-Type": "application/json"}
        )

    # then the body is refused as a whole, as not being text, and nothing changes
    assert_safe(response)
    assert response.status_code == 400, response.text
    assert graphql_codes(response) == ["BAD_REQUEST"]
    assert "Unicode" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(("document", "kind"), [(ORDERS, "order"), (PRODUCTS, "product")])
async def test_a_cursor_beyond_any_id_is_not_valid(
    client: httpx.AsyncClient, actors: Actors, document: str, kind: str
) -> None:
    # given a well-formed cursor whose id no serial column can hold
    cursor = base64.urlsafe_b64encode(f"{kind}:{2**31}".encode()).decode().rstrip("=")

    # when it is used to page
    response = await client.post(
        "/graphql",
        json={"query": document, "variables": {"a": cursor}},
        headers=actors.headers("alice"),
    )

    # then it is refused as a cursor, before it reaches the database
    assert graphql_codes(response) == ["BAD_USER_INPUT"]
    assert response.json()["errors"][0]["message"] == "page token is not valid"


# A literal past CPython's int-conversion limit (4,300 digits): int() raises ValueError.
HUGE = "9" * 4301


@pytest.mark.parametrize(
    "query",
    [
        f"{{ products(first: {HUGE}) {{ edges {{ node {{ id }} }} }} }}",
        f"{{ me {{ orders(first: {HUGE}) {{ edges {{ node {{ id }} }} }} }} }}",
    ],
    ids=["products", "User.orders"],
)
async def test_a_huge_first_literal_is_bad_user_input_not_a_500(
    client: httpx.AsyncClient, query: str
) -> None:
    # given an anonymous client; when `first` is an integer literal of 4,301 digits
    response = await client.post("/graphql", json={"query": query})

    # then it is refused like any other out-of-range `first`, not answered with a 500
    assert response.status_code == 200, response.text[:300]
    codes = {e["extensions"]["code"] for e in response.json()["errors"]}
    assert codes <= {"BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"}, codes


async def test_a_huge_first_literal_over_a_websocket_gets_an_answer(stack: Stack) -> None:
    # given an acknowledged socket; when it subscribes to the same document
    async with GraphQLSocket.open(stack.gateway_url, None) as socket_:
        await socket_.subscribe(
            "1", f"{{ products(first: {HUGE}) {{ edges {{ node {{ id }} }} }} }}"
        )
        message = await socket_.receive(within=10)

    # then the operation ends with an error message, not a bare `complete`
    assert message["type"] == "error", message
    assert [e["extensions"]["code"] for e in message["payload"]] == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("as_variable", [False, True], ids=["in the document", "as a variable"])
async def test_graphql_input_errors_do_not_echo_the_password(
    client: httpx.AsyncClient, as_variable: bool
) -> None:
    # given a registration with one field too many (a client trying `role: "admin"`)
    password = f"echo-{uuid.uuid4().hex}"
    fields = {"sid": "1", "username": "abc", "email": "a@b.c", "password": password}
    if as_variable:
        body = {
            "query": "mutation($i: RegisterInput!) { register(input: $i) { sid } }",
            "variables": {"i": {**fields, "role": "admin"}},
        }
    else:
        literal = ", ".join(f'{k}: "{v}"' for k, v in fields.items())
        body = {"query": f'mutation {{ register(input: {{{literal}, role: "admin"}}) {{ sid }} }}'}

    # when it is sent
    response = await client.post("/graphql", json=body)

    # then it is refused without repeating the password (REST already answers "unknown field")
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert password not in response.text


async def test_update_user_errors_do_not_echo_the_current_password(
    client: httpx.AsyncClient,
) -> None:
    # given a customer who sends their current and new password with an unknown field
    alice = await make_user(client)
    body = {
        "query": "mutation($s: String!, $i: UpdateUserInput!)"
        " { updateUser(sid: $s, input: $i) { sid } }",
        "variables": {
            "s": alice.sid,
            "i": {"password": "a new password 1", "currentPassword": alice.password, "x": 1},
        },
    }

    # when it is sent
    response = await client.post("/graphql", json=body, headers=alice.auth)

    # then neither password comes back in the message
    assert_safe(response, secrets=[alice.password, "a new password 1"])
