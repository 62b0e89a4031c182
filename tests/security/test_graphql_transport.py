"""Matrix, GraphQL transport and limits: each hostile request to /graphql and its exact refusal.

HTTP-level refusals carry their status and `{"errors": [{"extensions": {"code"}}]}`; document
refusals are 200 with GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED (and `limit`). Nothing
ends in a 5xx, a traceback or a change to the data, and each refusal is quick.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from graphql import get_introspection_query

from tests.conftest import Stack
from tests.factories import make_user
from tests.graphqlws import GraphQLSocket
from tests.security.conftest import assert_safe, graphql_codes, unchanged

MAX_BYTES = 64 * 1024
README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
JSON = {"Content-Type": "application/json"}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _body(query: str, variables: str = "{}") -> bytes:
    return f'{{"query": {json.dumps(query)}, "variables": {variables}}}'.encode()


async def _chunks(size: int) -> AsyncIterator[bytes]:
    """A body sent chunked, with no Content-Length to refuse it by."""
    chunk = b" " * 8192
    for _ in range(size // len(chunk) + 1):
        yield chunk


def _big_query() -> bytes:
    return _body("{ welcome }" + " " * (MAX_BYTES + 10))


# (case, request arguments for client.request, expected HTTP status, expected extensions.code)
TRANSPORT: list[tuple[str, Callable[[], dict[str, Any]], int, str]] = [
    ("oversized body, declared", lambda: {"content": _big_query(), "headers": JSON}, 413,
     "PAYLOAD_TOO_LARGE"),
    ("oversized body, chunked", lambda: {"content": _chunks(MAX_BYTES + 1), "headers": JSON},
     413, "PAYLOAD_TOO_LARGE"),
    ("variables nested 30 000 deep", lambda: {"content": _body("{ welcome }",
     '{"v": ' + _nested(30_000) + "}"), "headers": JSON}, 400, "BAD_REQUEST"),
    ("variables nested 5 000 deep", lambda: {"content": _body("{ welcome }",
     '{"v": ' + _nested(5000) + "}"), "headers": JSON}, 400, "BAD_REQUEST"),
    ("variables nested 40 deep", lambda: {"content": _body("{ welcome }",
     '{"v": ' + _nested(40) + "}"), "headers": JSON}, 400, "BAD_REQUEST"),
    ("extensions nested 5 000 deep", lambda: {"content": b'{"query": "{ welcome }", '
     b'"extensions": {"x": ' + _nested(5000).encode() + b"}}", "headers": JSON}, 400,
     "BAD_REQUEST"),
    ("malformed JSON", lambda: {"content": b'{"query": "{ welcome }"', "headers": JSON}, 400,
     "BAD_REQUEST"),
    ("NaN in variables", lambda: {"content": _body("{ welcome }", '{"n": NaN}'),
     "headers": JSON}, 400, "BAD_REQUEST"),
    ("invalid UTF-8", lambda: {"content": b'{"query": "{ welcome \xff\xfe }"}', "headers": JSON},
     400, "BAD_REQUEST"),
    ("a batch (JSON array)", lambda: {"json": [{"query": "{ welcome }"}] * 2}, 400, "BAD_REQUEST"),
    ("body is a JSON string", lambda: {"json": "{ welcome }"}, 400, "BAD_REQUEST"),
    ("query is not a string", lambda: {"json": {"query": ["{ welcome }"]}}, 400, "BAD_REQUEST"),
    ("variables is a list", lambda: {"json": {"query": "{ welcome }", "variables": [1]}}, 400,
     "BAD_REQUEST"),
    ("no query at all", lambda: {"json": {"variables": {}}}, 400, "BAD_REQUEST"),
    ("operationName is a number", lambda: {"json": {"query": "{ welcome }", "operationName": 5}},
     400, "BAD_REQUEST"),
    ("a mutation and a query, no operationName", lambda: {"json": {"query": 'mutation M { login('
     'username: "x", password: "password-1") { token } } query Q { welcome }'}}, 400,
     "BAD_REQUEST"),
    ("text/plain (a CSRF-able simple request)", lambda: {"content": _body("{ welcome }"),
     "headers": {"Content-Type": "text/plain"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("form-urlencoded", lambda: {"data": {"query": "{ welcome }"}}, 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("multipart", lambda: {"files": {"query": ("q", b"{ welcome }")}}, 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("application/graphql", lambda: {"content": b"{ welcome }",
     "headers": {"Content-Type": "application/graphql"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("no Content-Type", lambda: {"content": _body("{ welcome }")}, 415, "UNSUPPORTED_MEDIA_TYPE"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "make_request", "status", "code"), TRANSPORT, ids=[row[0] for row in TRANSPORT]
)
async def test_hostile_posts_are_refused_with_their_status(
    client: httpx.AsyncClient,
    stack: Stack,
    case: str,
    make_request: Callable[[], dict[str, Any]],
    status: int,
    code: str,
) -> None:
    # given a hostile POST to /graphql
    started = time.monotonic()
    async with unchanged(stack):
        # when it is sent
        response = await client.post("/graphql", **make_request())

    # then it is refused with its status and code, quickly, and changed nothing
    assert_safe(response)
    assert response.status_code == status, response.text[:300]
    assert graphql_codes(response) == [code]
    assert time.monotonic() - started < 5


def _get(query: str | list[str], **params: str | list[str]) -> dict[str, Any]:
    """GET /graphql's query parameters; a list is the parameter given once per item."""
    return {"query": query, **params}


# GET: (case, query parameters, expected status, expected code or None when it succeeds)
GETS: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("a query over GET", _get("{ welcome }"), 200, None),
    ("a mutation over GET", _get('mutation { login(username: "x", password: "y") { token } }'),
     405, "METHOD_NOT_ALLOWED"),
    ("deeply nested variables over GET", _get("{ welcome }", variables=_nested(5000)), 400,
     "BAD_REQUEST"),
    # A field given twice has no one meaning: a proxy or cache may read the other value.
    ("query twice over GET", _get(["{ welcome }", "{ __typename }"]), 400, "BAD_REQUEST"),
    ("variables twice over GET", _get("{ welcome }", variables=["{}", '{"a": 1}']), 400,
     "BAD_REQUEST"),
    ("operationName twice over GET", _get("query A { welcome } query B { welcome }",
     operationName=["A", "B"]), 400, "BAD_REQUEST"),
    ("extensions twice over GET", _get("{ welcome }", extensions=["{}", "{}"]), 400,
     "BAD_REQUEST"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "params", "status", "code"), GETS, ids=[row[0] for row in GETS])
async def test_get_allows_queries_only(
    client: httpx.AsyncClient,
    stack: Stack,
    case: str,
    params: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    # given a GET /graphql; when it is sent
    async with unchanged(stack):
        response = await client.get("/graphql", params=params)

    # then only a plain query runs; mutations name the method that works
    assert_safe(response)
    assert response.status_code == status, response.text[:300]
    if code is None:
        assert response.json()["data"] == {"welcome": response.json()["data"]["welcome"]}
    else:
        assert graphql_codes(response) == [code]
    if status == 405:
        assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("field", ["variables", "extensions"])
async def test_get_names_the_parameter_that_is_not_json(
    client: httpx.AsyncClient, stack: Stack, field: str
) -> None:
    # given a GET whose `variables` or `extensions` parameter is not JSON, as a hand-typed
    # curl URL easily has
    params = {"query": "{ welcome }", field: "{bad"}

    # when it is sent
    response = await client.get("/graphql", params=params)

    # then the 400 names that parameter, not a body the client never sent
    assert response.status_code == 400, response.text
    assert graphql_codes(response) == ["BAD_REQUEST"]
    message = response.json()["errors"][0]["message"]
    assert f"`{field}`" in message, message
    assert "body" not in message, message


async def test_head_runs_no_mutation(client: httpx.AsyncClient, stack: Stack) -> None:
    # given a registration document, known to the gateway by its hash too (HEAD is a GET
    # without a body, and a CORS-safelisted method: any web page can make a browser send one)
    register = "mutation R($i: RegisterInput!) { register(input: $i) { sid } }"
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": _sha256(register)}}
    n = uuid.uuid4().hex[:10]
    first = {"sid": f"P{n}", "username": f"post_{n}", "email": f"post_{n}@example.com",
             "password": "head-request-1"}  # fmt: skip
    stored = await client.post(
        "/graphql", json={"query": register, "variables": {"i": first}, "extensions": persisted}
    )
    assert stored.json()["data"]["register"]["sid"] == first["sid"], stored.text
    other = {"sid": f"H{n}", "username": f"head_{n}", "email": f"head_{n}@example.com",
             "password": "head-request-2"}  # fmt: skip
    variables = json.dumps({"i": other})

    # when it is sent with HEAD, as a document and by its hash
    async with unchanged(stack):
        plain = await client.head("/graphql", params={"query": register, "variables": variables})
        hashed = await client.head(
            "/graphql", params={"extensions": json.dumps(persisted), "variables": variables}
        )

    # then neither runs: 405, as over GET, naming POST
    assert (plain.status_code, plain.headers["allow"]) == (405, "POST")
    assert (hashed.status_code, hashed.headers["allow"]) == (405, "POST")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """Send a GET of `target` over a raw socket (httpx refuses over-long URLs); (status, body)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_a_url_over_64_kib_is_refused_by_the_server(stack: Stack) -> None:
    # given a GET whose query string is longer than the HTTP parser accepts
    target = "/graphql?query=%7Bwelcome%7D" + "+" * (MAX_BYTES + 100)

    # when it is sent
    status, _ = await raw_get(stack.gateway_url, target)

    # then uvicorn refuses it before the application sees it: a 400, not a 5xx
    assert status == 400


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_other_methods_are_405(client: httpx.AsyncClient, method: str) -> None:
    # given /graphql; when called with another method
    response = await client.request(method, "/graphql", json={"query": "{ welcome }"})

    # then 405 in the GraphQL error shape, naming the methods that work
    assert response.status_code == 405
    assert graphql_codes(response) == ["METHOD_NOT_ALLOWED"]
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def _aliases(n: int, field: str = "welcome") -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(n)) + " }"


_LOGIN = 'l{0}: login(username: "nobody_at_all", password: "wrong-password-{0}") {{ token }}'


def _logins(n: int) -> str:
    """`n` aliased logins in one mutation (an account that does not exist)."""
    return "mutation { " + " ".join(_LOGIN.format(i) for i in range(n)) + " }"


def _depth(levels: int) -> str:
    """`me { orders { edges { node { user { orders … } } } } }`, `levels` selections deep."""
    parts = ["me"] + ["orders(first: 2)", "edges", "node", "user"] * 3
    opened = parts[:levels]
    return "{ " + " { ".join(opened) + " { __typename }" + " }" * len(opened)


def _fragment_bomb(n: int) -> str:
    spreads = "".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }} " for i in range(n))
    return "query { ...F0 } " + spreads + f"fragment F{n} on Query {{ welcome }}"


_INTROSPECTION = get_introspection_query(
    descriptions=True, input_value_deprecation=True, directive_is_repeatable=True
)

# Documents: (case, query, variables, expected code or None for success, expected `limit`)
DOCUMENTS: list[tuple[str, str, dict[str, Any], str | None, str | None]] = [
    ("depth 10 is allowed", _depth(10), {}, None, None),
    ("depth 11 is refused", _depth(11), {}, "GRAPHQL_VALIDATION_FAILED", "depth"),
    ("15 aliases are allowed", _aliases(15), {}, None, None),
    ("16 aliases are refused", _aliases(16), {}, "GRAPHQL_VALIDATION_FAILED", "aliases"),
    ("aliases counted across fragments", "query { ...A ...B } fragment A on Query { "
     + " ".join(f"a{i}: welcome" for i in range(8)) + " } fragment B on Query { "
     + " ".join(f"b{i}: welcome" for i in range(8)) + " }", {}, "GRAPHQL_VALIDATION_FAILED",
     "aliases"),
    ("one login is allowed", _logins(1), {}, None, None),
    ("two aliased logins are refused", _logins(2), {}, "GRAPHQL_VALIDATION_FAILED",
     "accountMutations"),
    ("15 aliased logins are refused", _logins(15), {}, "GRAPHQL_VALIDATION_FAILED",
     "accountMutations"),
    ("login and register together", "mutation { " + _LOGIN.format(0) + ' register(input: '
     '{sid: "99999999", username: "x_never", email: "x_never@example.com", password: '
     '"never-registered"}) { id } }', {}, "GRAPHQL_VALIDATION_FAILED", "accountMutations"),
    ("a login spread twice by a fragment", "mutation { ...L ...L } fragment L on Mutation { "
     + _LOGIN.format(0) + " }", {}, "GRAPHQL_VALIDATION_FAILED", "accountMutations"),
    ("two password changes", "mutation($i: UpdateUserInput!) { a: updateUser(sid: \"1\", "
     "input: $i) { id } b: updateUser(sid: \"2\", input: {password: \"new-password\"}) "
     "{ id } }", {"i": {"password": "new-password"}}, "GRAPHQL_VALIDATION_FAILED",
     "accountMutations"),
    ("over 2000 tokens", "{ " + "welcome " * 2001 + "}", {}, "GRAPHQL_PARSE_FAILED", None),
    # Within every limit above, yet each pair of the 300 is compared: quadratic validation.
    ("300 copies of one field", "{ " + "welcome " * 300 + "}", {}, "GRAPHQL_VALIDATION_FAILED",
     None),
    ("300 copies through nested selections", "{ " + "products { edges { node { id id id id id "
     "id id id id id } } } " * 30 + "}", {}, "GRAPHQL_VALIDATION_FAILED", None),
    ("one field twice, in a fragment and beside it", "query { welcome ...W } fragment W on "
     "Query { welcome }", {}, None, None),
    ("nested 400 selections deep", "{" + " me {" * 400 + " sid" + " }" * 401, {},
     "GRAPHQL_PARSE_FAILED", None),
    ("a fragment bomb (2^60 expansions)", _fragment_bomb(60), {}, "GRAPHQL_VALIDATION_FAILED",
     "cost"),
    ("cost over the limit (100 × 100 orders)", "{ orders(first: 100) { edges { node { user "
     "{ orders(first: 100) { edges { node { id } } } } } } } }", {},
     "GRAPHQL_VALIDATION_FAILED", "cost"),
    ("cost through a variable `first`", "query($n: Int) { orders(first: $n) { edges { node { "
     "user { orders(first: $n) { edges { node { id } } } } } } } }", {"n": 100},
     "GRAPHQL_VALIDATION_FAILED", "cost"),
    ("cost through a variable's default", "query Q($n: Int = 100) { orders(first: $n) { edges "
     "{ node { id user { orders(first: $n) { edges { node { id product { id } } } } } } } } }",
     {}, "GRAPHQL_VALIDATION_FAILED", "cost"),
    ("cost through a default in a fragment", "query Q($n: Int = 100) { ...O } fragment O on "
     "Query { orders(first: $n) { edges { node { user { orders(first: $n) { edges { cursor } } "
     "} } } } }", {}, "GRAPHQL_VALIDATION_FAILED", "cost"),
    ("first: 1000 written in the document", "{ products(first: 1000) { edges { node { id } } } }",
     {}, "BAD_USER_INPUT", None),
    ("first: $n with n = 1 000 000", "query($n: Int) { products(first: $n) { edges { node "
     "{ id name } } } }", {"n": 1_000_000}, "BAD_USER_INPUT", None),
    ("first: $n defaulting to 1 000 000", "query($n: Int = 1000000) { products(first: $n) "
     "{ edges { node { id name } } } }", {}, "BAD_USER_INPUT", None),
    ("cost through an integral float `first` (Int takes 100.0)", "query($n: Int) { orders("
     "first: $n) { edges { node { user { orders(first: $n) { edges { node { id } } } } } } } }",
     {"n": 100.0},
     "GRAPHQL_VALIDATION_FAILED", "cost"),
    ("a 100-product page costs little", "{ products(first: 100) { edges { node { id name } } } }",
     {}, None, None),
    ("GraphiQL's introspection query", _INTROSPECTION, {}, None, None),
    ("introspection nested 4 lists deep", "{ __schema { types { fields { type { fields { type "
     "{ fields { name } } } } } } } }", {}, "GRAPHQL_VALIDATION_FAILED", "introspection"),
    ("a syntax error", "{ welcome", {}, "GRAPHQL_PARSE_FAILED", None),
    ("an unknown field", "{ secrets }", {}, "GRAPHQL_VALIDATION_FAILED", None),
    ("an unused variable", "query($x: Int) { welcome }", {}, "GRAPHQL_VALIDATION_FAILED", None),
    ("an Int over 32 bits", "{ product(id: 2147483648) { id } }", {}, "BAD_USER_INPUT", None),
    ("a variable of the wrong type", "query($id: Int!) { product(id: $id) { id } }",
     {"id": "1; DROP TABLE products"}, "BAD_USER_INPUT", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "query", "variables", "code", "limit"), DOCUMENTS, ids=[row[0] for row in DOCUMENTS]
)
async def test_documents_over_a_limit_are_refused_before_running(
    client: httpx.AsyncClient,
    stack: Stack,
    case: str,
    query: str,
    variables: dict[str, Any],
    code: str | None,
    limit: str | None,
) -> None:
    # given a document (possibly over a limit)
    started = time.monotonic()
    async with unchanged(stack):
        # when it is posted
        response = await client.post("/graphql", json={"query": query, "variables": variables})

    # then it runs, or is refused with its code (and the limit it broke) without running
    assert_safe(response)
    assert response.status_code == 200
    body = response.json()
    if code is None:
        assert "errors" not in body or all(
            e["extensions"]["code"] == "UNAUTHENTICATED" for e in body["errors"]
        ), body.get("errors")
    else:
        assert graphql_codes(response) == [code] or set(graphql_codes(response)) == {code}
        assert body.get("data") is None
    if limit is not None:
        assert body["errors"][0]["extensions"]["limit"] == limit
    assert time.monotonic() - started < 2


async def test_15_aliased_logins_check_no_password_at_all(client: httpx.AsyncClient) -> None:
    # given a fresh customer and 15 aliased logins with wrong passwords (the alias maximum)
    user = await make_user(client)
    aliases = " ".join(
        f'a{i}: login(username: "{user.username}", password: "wrong-{i}-password") {{ token }}'
        for i in range(15)
    )

    # when the request is sent six times (more than the 5 attempts an account has)
    request = {"query": f"mutation {{ {aliases} }}"}
    codes = [
        c for _ in range(6) for c in graphql_codes(await client.post("/graphql", json=request))
    ]

    # then each is refused before it runs: no password checked, no attempt counted
    assert codes == ["GRAPHQL_VALIDATION_FAILED"] * 6
    right = await client.post(
        "/api/v1/users/login", json={"username": user.username, "password": user.password}
    )
    assert right.status_code == 200


@pytest.mark.parametrize("first", [0, 101, 1000, 1_000_000])
async def test_a_bad_first_gets_the_same_answer_however_it_arrives(
    client: httpx.AsyncClient, first: int
) -> None:
    # given the same out-of-range `first`: written in the document, as a variable (sent twice,
    # so that the second runs on the fast path) and as a variable's default
    selection = "products(first: FIRST) { edges { node { id name } } }".replace
    bodies = [
        {"query": "{ " + selection("FIRST", str(first)) + " }"},
        {"query": "query($n: Int) { " + selection("FIRST", "$n") + " }", "variables": {"n": first}},
        {"query": "query($n: Int) { " + selection("FIRST", "$n") + " }", "variables": {"n": first}},
        {"query": f"query($n: Int = {first}) {{ " + selection("FIRST", "$n") + " }"},
    ]

    # when each is posted
    responses = [await client.post("/graphql", json=body) for body in bodies]

    # then each gets the resolver's own answer, not a cost refusal
    for response in responses:
        assert_safe(response)
        body = response.json()
        errors = [{k: e[k] for k in ("message", "path", "extensions")} for e in body["errors"]]
        assert (body["data"], errors) == (
            None,
            [
                {
                    "message": "first must be 1 to 100",
                    "path": ["products"],
                    "extensions": {"code": "BAD_USER_INPUT"},
                }
            ],
        )


@pytest.mark.parametrize("value", ["99999999999", '"7"', "1.5", "true"])
async def test_a_bad_argument_value_gets_the_same_code_however_it_arrives(
    client: httpx.AsyncClient, stack: Stack, value: str
) -> None:
    # given the same bad value for product's `id: Int!`: written in the document, as a variable,
    # as a variable's default, and written in the document over a WebSocket
    written = f"{{ product(id: {value}) {{ id }} }}"
    bodies = [
        {"query": written},
        {
            "query": "query($i: Int!) { product(id: $i) { id } }",
            "variables": {"i": json.loads(value)},
        },
        {"query": f"query($i: Int = {value}) {{ product(id: $i) {{ id }} }}"},
    ]

    # when each is sent
    codes = [graphql_codes(await client.post("/graphql", json=body)) for body in bodies]
    async with GraphQLSocket.open(stack.gateway_url, None) as socket:
        await socket.subscribe("1", written)
        refused = await socket.receive(within=10)  # the protocol's `error`: it never ran

    # then each is the caller's bad input (DESIGN §6), never a different code by the route taken
    assert codes == [["BAD_USER_INPUT"]] * 3
    assert refused["type"] == "error", refused
    assert [e["extensions"]["code"] for e in refused["payload"]] == ["BAD_USER_INPUT"]


async def test_a_document_too_large_to_validate_says_so(client: httpx.AsyncClient) -> None:
    # given 900 sibling fields: within the token and cost limits, beyond graphql-core's budget
    # for comparing fields of one selection
    query = "{ " + " ".join(["welcome"] * 900) + " }"

    # when it is posted
    response = await client.post("/graphql", json={"query": query})

    # then it is refused as a validation failure that says what to change
    assert graphql_codes(response) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "too many fields to compare" in response.json()["errors"][0]["message"]


# Registrations of documents refused anyway: (case, document, expected code)
REFUSED_REGISTRATIONS: list[tuple[str, str, str]] = [
    ("a syntax error", "{ welcome", "GRAPHQL_PARSE_FAILED"),
    ("an unknown field", "{ secrets }", "GRAPHQL_VALIDATION_FAILED"),
    ("over the depth limit", _depth(11), "GRAPHQL_VALIDATION_FAILED"),
    ("over the alias limit", _aliases(16), "GRAPHQL_VALIDATION_FAILED"),
    ("over the cost limit", _fragment_bomb(60), "GRAPHQL_VALIDATION_FAILED"),
]


@pytest.mark.parametrize(
    ("case", "query", "code"), REFUSED_REGISTRATIONS, ids=[r[0] for r in REFUSED_REGISTRATIONS]
)
async def test_a_refused_document_is_not_kept_as_a_persisted_query(
    client: httpx.AsyncClient, case: str, query: str, code: str
) -> None:
    # given a document that is refused, sent with its hash to register it (made unique)
    query = f"{query} # {time.monotonic_ns()}"
    digest = hashlib.sha256(query.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    # when it is registered, and then its hash alone is sent
    registered = await client.post("/graphql", json={"query": query, "extensions": persisted})
    later = await client.post("/graphql", json={"extensions": persisted})

    # then it was refused, and took no place in the store: its hash is unknown
    assert_safe(registered)
    assert set(graphql_codes(registered)) == {code}
    assert graphql_codes(later) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_websocket_message_over_the_body_limit_closes_the_socket_as_readme_says(
    stack: Stack,
) -> None:
    # given an acknowledged graphql-transport-ws connection
    async with GraphQLSocket.open(stack.gateway_url, None) as socket:
        # when one message is larger than REQUEST_MAX_BYTES (64 KiB on the session stack)
        query = "{ welcome }" + " " * (65 * 1024)
        await socket.subscribe("1", query)

        # then the gateway closes the socket with 1009 "message too big": no HTTP status
        # exists after the upgrade, so there is no 413 to send
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await socket.receive(within=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009

    # and README's table of limits says so, where it names the WebSocket message
    (row,) = [line for line in README.splitlines() if "WebSocket message |" in line]
    assert "1009" in row
