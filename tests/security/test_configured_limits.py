"""Matrix, production settings and configured limits, on a db_service and gateway of their own.

The pair runs with MERCH_ENV=production (GraphiQL, introspection and field suggestions off),
an 8 KiB request limit and an order rate limit of 3 per 3 s, beside the session stack and on
its database, so each setting is shown to be honoured where it is configured.

The account limits (logins and registrations per client, login throttling per account and
client) run on a db_service of their own with a database of its own, so that no other test's
logins count, behind two gateways: one that trusts 127.0.0.1 as a proxy (its X-Forwarded-For
names the client, so each test can be a client of its own), and one that trusts nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from scripts.infra import EmbeddedPostgres
from tests.conftest import PRODUCTION_HASH_COST, Stack
from tests.factories import make_user, user_data
from tests.graphqlws import PROTOCOL, GraphQLSocket
from tests.ownstack import OwnStack, own_services
from tests.security.conftest import Actors, assert_safe, graphql_codes, stock_of, unchanged

LIMIT_BYTES = 8192
ORDERS_PER_WINDOW, WINDOW_S = 3, 3
WEBSOCKETS_MAX = 3


@pytest.fixture(scope="module")
def production(stack: Stack) -> Iterator[OwnStack]:
    with own_services(
        stack,
        ("db_service", "gateway"),
        MERCH_ENV="production",
        **PRODUCTION_HASH_COST,  # production refuses the suite's cheap one
        REQUEST_MAX_BYTES=str(LIMIT_BYTES),
        ORDER_RATE_LIMIT=str(ORDERS_PER_WINDOW),
        ORDER_RATE_WINDOW_S=str(WINDOW_S),
        WEBSOCKETS_MAX=str(WEBSOCKETS_MAX),
    ) as own:
        yield own


@pytest.fixture
async def prod(production: OwnStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=production.gateway_url, timeout=30) as c:
        yield c


# (case, query, expected code or None for success, text that must not appear in the message)
PRODUCTION_DOCUMENTS: list[tuple[str, str, str | None, str | None]] = [
    ("introspection of the schema", "{ __schema { types { name } } }",
     "GRAPHQL_VALIDATION_FAILED", None),
    ("introspection of a type", '{ __type(name: "User") { fields { name } } }',
     "GRAPHQL_VALIDATION_FAILED", None),
    ("__typename still answers", "{ __typename }", None, None),
    ("no field suggestions", "{ welcom }", "GRAPHQL_VALIDATION_FAILED", "Did you mean"),
    ("no argument suggestions", "{ product(idd: 1) { id } }", "GRAPHQL_VALIDATION_FAILED",
     "Did you mean"),
    ("no type suggestions", "query($i: RegisterInputs) { welcome }",
     "GRAPHQL_VALIDATION_FAILED", "Did you mean"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "query", "code", "hidden"),
    PRODUCTION_DOCUMENTS,
    ids=[row[0] for row in PRODUCTION_DOCUMENTS],
)
async def test_production_hides_the_schema(
    prod: httpx.AsyncClient, case: str, query: str, code: str | None, hidden: str | None
) -> None:
    # given a production gateway; when the document is posted
    response = await prod.post("/graphql", json={"query": query})

    # then introspection is refused and no message spells out the schema
    assert_safe(response)
    assert response.status_code == 200
    if code is None:
        assert response.json()["data"] == {"__typename": "Query"}
    else:
        assert set(graphql_codes(response)) == {code}
    if hidden is not None:
        assert hidden not in response.text


@pytest.mark.parametrize(
    ("case", "path", "headers"),
    [
        ("GraphiQL page", "/graphql", {"Accept": "text/html"}),
        ("GraphiQL assets", "/graphiql-static/graphiql.min.js", {}),
    ],
)
async def test_production_serves_no_graphiql(
    prod: httpx.AsyncClient, case: str, path: str, headers: dict[str, str]
) -> None:
    # given a production gateway; when a browser asks for GraphiQL
    response = await prod.get(path, headers=headers)

    # then there is none
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()


# (case, method, path, request arguments, expected status, expected code)
SIZES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    ("GraphQL body over the configured limit", "POST", "/graphql",
     {"json": {"query": "{ welcome }" + " " * LIMIT_BYTES}}, 413, "PAYLOAD_TOO_LARGE"),
    ("GraphQL query string over the configured limit", "GET", "/graphql",
     {"params": {"query": "{ welcome }" + " " * LIMIT_BYTES}}, 414, "URI_TOO_LONG"),
    ("REST body over the configured limit", "POST", "/api/v1/users/login",
     {"json": {"username": "x" * LIMIT_BYTES, "password": "y"}}, 413, "PAYLOAD_TOO_LARGE"),
    ("GraphQL body under the configured limit", "POST", "/graphql",
     {"json": {"query": "{ welcome }" + " " * (LIMIT_BYTES - 100)}}, 200, ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "method", "path", "arguments", "status", "code"), SIZES, ids=[r[0] for r in SIZES]
)
async def test_request_size_limit_is_the_configured_one(
    prod: httpx.AsyncClient,
    case: str,
    method: str,
    path: str,
    arguments: dict[str, Any],
    status: int,
    code: str,
) -> None:
    # given REQUEST_MAX_BYTES=8192; when a request around that size is sent
    response = await prod.request(method, path, **arguments)

    # then it is refused above the limit (in each API's error shape) and served below it
    assert_safe(response)
    assert response.status_code == status, response.text[:200]
    if path == "/graphql" and code:
        assert graphql_codes(response) == [code]
    elif code:
        assert response.json()["error"]["code"] == code


async def _metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


async def _until_open_sockets(client: httpx.AsyncClient, count: int) -> None:
    deadline = time.monotonic() + 10
    while (found := await _metric(client, "gateway_websockets_open")) != count:
        assert time.monotonic() < deadline, f"{found} WebSockets open, waited for {count}"
        await asyncio.sleep(0.05)


async def test_websockets_beyond_the_limit_are_refused_with_503_until_one_closes(
    production: OwnStack, prod: httpx.AsyncClient
) -> None:
    # given WEBSOCKETS_MAX=3 and no socket open (an earlier test's may still be closing)
    await _until_open_sockets(prod, 0)
    refused = await _metric(prod, "gateway_websockets_refused_total")
    url = production.gateway_url.replace("http://", "ws://") + "/graphql"
    async with contextlib.AsyncExitStack() as sockets:
        first = await sockets.enter_async_context(GraphQLSocket.open(production.gateway_url, None))
        for _ in range(WEBSOCKETS_MAX - 1):
            await sockets.enter_async_context(GraphQLSocket.open(production.gateway_url, None))
        # when one more is opened
        with pytest.raises(websockets.InvalidStatus) as refusal:
            await websockets.connect(url, subprotocols=[PROTOCOL])
        # then its upgrade is refused before the handshake: 503, when to retry, our error shape
        response = refusal.value.response
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        body = orjson.loads(response.body)
        assert body["errors"][0]["extensions"] == {"code": "UNAVAILABLE", "retryAfter": 1}
        assert f"{WEBSOCKETS_MAX} WebSockets open" in body["errors"][0]["message"]
        assert await _metric(prod, "gateway_websockets_refused_total") == refused + 1
        # and the sockets already open go on
        await first.send({"type": "ping"})
        assert (await first.receive(within=5))["type"] == "pong"
    # when they close, a new one is served again
    await _until_open_sockets(prod, 0)
    async with GraphQLSocket.open(production.gateway_url, None) as again:
        await again.send({"type": "ping"})
        assert (await again.receive(within=5))["type"] == "pong"


PLACE = "mutation($p: Int!) { placeOrder(productId: $p, quantity: 1) { id } }"


async def test_orders_over_the_rate_limit_are_429_with_retry_after(
    prod: httpx.AsyncClient, stack: Stack, actors: Actors
) -> None:
    # given a shopper who has placed the 3 orders a window allows
    user = await make_user(prod)
    product_id = actors.product["id"]
    key = uuid.uuid4().hex
    order = {"product_id": product_id, "quantity": 1}
    first = await prod.post(
        "/api/v1/orders", json=order, headers={**user.auth, "Idempotency-Key": key}
    )
    for _ in range(ORDERS_PER_WINDOW - 1):
        assert (await prod.post("/api/v1/orders", json=order, headers=user.auth)).status_code == 201
    assert first.status_code == 201
    stock = await stock_of(prod, product_id)

    # when a 4th (REST) and a 5th (GraphQL) order are attempted in the same window
    async with unchanged(stack):
        rest = await prod.post("/api/v1/orders", json=order, headers=user.auth)
        graphql = await prod.post(
            "/graphql", json={"query": PLACE, "variables": {"p": product_id}}, headers=user.auth
        )
        # and the first order is retried with its key (a replay places nothing)
        replay = await prod.post(
            "/api/v1/orders", json=order, headers={**user.auth, "Idempotency-Key": key}
        )

    # then both are refused with when to come back, the replay answers, and stock is untouched
    assert rest.status_code == 429
    assert rest.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(rest.headers["retry-after"]) <= WINDOW_S
    error = graphql.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= error["extensions"]["retryAfter"] <= WINDOW_S
    assert replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert await stock_of(prod, product_id) == stock


async def test_the_rate_limit_window_passes(prod: httpx.AsyncClient, actors: Actors) -> None:
    # given a shopper refused for ordering too often
    user = await make_user(prod)
    order = {"product_id": actors.product["id"], "quantity": 1}
    statuses = [
        (await prod.post("/api/v1/orders", json=order, headers=user.auth)).status_code
        for _ in range(ORDERS_PER_WINDOW + 1)
    ]
    assert statuses == [201] * ORDERS_PER_WINDOW + [429]

    # when the window has passed (polled, with a deadline)
    deadline = time.monotonic() + WINDOW_S + 5
    while True:
        again = await prod.post("/api/v1/orders", json=order, headers=user.auth)
        if again.status_code != 429 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)  # the polling interval of a wait bounded by the deadline

    # then ordering works again
    assert again.status_code == 201


AUTH_PER_CLIENT, FAILURES_PER_ACCOUNT = 8, 2
WEBSOCKETS_PER_CLIENT = 2


@pytest.fixture(scope="module")
def accounts(stack: Stack, postgres: EmbeddedPostgres) -> Iterator[tuple[OwnStack, OwnStack]]:
    """(a gateway trusting 127.0.0.1 as a proxy, one trusting nobody), on one db_service."""
    with (
        own_services(
            stack,
            ("db_service", "gateway"),
            DATABASE_URL=postgres.ensure_database("merch_account_limits"),
            CLIENT_AUTH_LIMIT=str(AUTH_PER_CLIENT),
            CLIENT_AUTH_WINDOW_S="60",
            LOGIN_MAX_FAILURES=str(FAILURES_PER_ACCOUNT),
            LOGIN_WINDOW_S="60",
            TRUSTED_PROXIES="127.0.0.1",
            WEBSOCKETS_PER_CLIENT_MAX=str(WEBSOCKETS_PER_CLIENT),
        ) as trusting,
        own_services(
            stack, ("gateway",), DB_SERVICE_ADDR=trusting.db_addr, TRUSTED_PROXIES=""
        ) as untrusting,
    ):
        yield trusting, untrusting


@pytest.fixture
async def behind_proxy(accounts: tuple[OwnStack, OwnStack]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=accounts[0].gateway_url, timeout=30) as c:
        yield c


def _from(address: str | None = None) -> dict[str, str]:
    """Headers that make the proxy-trusting gateway see a client of this (or a new) address."""
    n = uuid.uuid4().int
    return {"X-Forwarded-For": address or f"198.51.{n % 250}.{(n >> 8) % 250 + 1}"}


LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"


async def test_logins_and_registrations_over_the_client_limit_are_429(
    behind_proxy: httpx.AsyncClient,
) -> None:
    # given a client that has used up its logins and registrations (each an Argon2 hash)
    c = behind_proxy
    client, neighbour = _from(), _from()
    user = user_data()
    assert (await c.post("/api/v1/users/create", json=user, headers=client)).status_code == 201
    right = {"username": user["username"], "password": user["password"]}
    for _ in range(AUTH_PER_CLIENT - 1):
        answer = await c.post("/api/v1/users/login", json=right, headers=client)
        assert answer.status_code == 200, answer.text

    # when it logs in and registers again, through REST and GraphQL
    rest_login = await c.post("/api/v1/users/login", json=right, headers=client)
    rest_register = await c.post("/api/v1/users/create", json=user_data(), headers=client)
    graphql = await c.post(
        "/graphql",
        json={"query": LOGIN, "variables": {"u": user["username"], "p": user["password"]}},
        headers=client,
    )
    other = await c.post("/api/v1/users/login", json=right, headers=neighbour)

    # then each is 429 with when to come back, while another address still gets in
    for response in (rest_login, rest_register):
        assert_safe(response)
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "RATE_LIMITED"
        assert 1 <= int(response.headers["retry-after"]) <= 60
    error = graphql.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= error["extensions"]["retryAfter"] <= 60
    assert other.status_code == 200, other.text


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    accounts: tuple[OwnStack, OwnStack],
) -> None:
    # given a gateway that trusts no proxy, and a client that names a new address each time
    async with httpx.AsyncClient(base_url=accounts[1].gateway_url, timeout=30) as c:
        statuses = [
            (
                await c.post(
                    "/api/v1/users/login",
                    json={"username": f"nobody_{i}", "password": "not-a-password"},
                    headers=_from(),
                )
            ).status_code
            for i in range(AUTH_PER_CLIENT + 1)
        ]

    # then the header buys no fresh budget: the peer's address is the client
    assert statuses == [401] * AUTH_PER_CLIENT + [429]


async def test_failed_logins_from_one_client_never_lock_the_owner_out(
    behind_proxy: httpx.AsyncClient,
) -> None:
    # given a customer, and a stranger who failed their password until refused
    c = behind_proxy
    home = _from()
    user = user_data()
    assert (await c.post("/api/v1/users/create", json=user, headers=home)).status_code == 201
    stranger = _from()
    wrong = {"username": user["username"], "password": "not-the-password"}
    statuses = [
        (await c.post("/api/v1/users/login", json=wrong, headers=stranger)).status_code
        for _ in range(FAILURES_PER_ACCOUNT + 1)
    ]
    assert statuses == [401] * FAILURES_PER_ACCOUNT + [429]

    # when the owner logs in from their own address
    right = {"username": user["username"], "password": user["password"]}
    response = await c.post("/api/v1/users/login", json=right, headers=home)

    # then they get in: the throttle holds the stranger's address, not the account
    assert_safe(response)
    assert response.status_code == 200, response.text


async def test_wrong_current_passwords_count_toward_the_login_throttle(
    behind_proxy: httpx.AsyncClient,
) -> None:
    # given a customer whose token is used, from one address, to guess their password
    c = behind_proxy
    thief = _from()
    user = user_data()
    credentials = {"username": user["username"], "password": user["password"]}
    assert (await c.post("/api/v1/users/create", json=user, headers=thief)).status_code == 201
    logged_in = await c.post("/api/v1/users/login", json=credentials, headers=thief)
    headers = {"Authorization": f"Bearer {logged_in.json()['token']}", **thief}
    guess = {"password": "a-new-password", "current_password": "a-guess"}

    # when the guesses go on past the account's limit
    answers = [
        await c.put(f"/api/v1/users/{user['sid']}", json=guess, headers=headers)
        for _ in range(FAILURES_PER_ACCOUNT + 1)
    ]
    right = {"password": "a-new-password", "current_password": user["password"]}
    after = await c.put(f"/api/v1/users/{user['sid']}", json=right, headers=headers)
    login = await c.post("/api/v1/users/login", json=credentials, headers=thief)

    # then they are 403 until the limit, then 429 like logins, even with the right password
    assert [a.status_code for a in answers] == [403] * FAILURES_PER_ACCOUNT + [429]
    assert answers[-1].json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    assert after.status_code == 429
    assert login.status_code == 429


async def test_renaming_the_account_buys_no_more_guesses_of_its_password(
    behind_proxy: httpx.AsyncClient,
) -> None:
    # given a stolen token, and the guesses of the current password it had until the limit
    c = behind_proxy
    thief = _from()
    user = user_data()
    assert (await c.post("/api/v1/users/create", json=user, headers=_from())).status_code == 201
    credentials = {"username": user["username"], "password": user["password"]}
    logged_in = await c.post("/api/v1/users/login", json=credentials, headers=_from())
    headers = {"Authorization": f"Bearer {logged_in.json()['token']}", **thief}
    guess = {"password": "a-new-password", "current_password": "a-guess"}
    path = f"/api/v1/users/{user['sid']}"
    spent = [
        (await c.put(path, json=guess, headers=headers)).status_code
        for _ in range(FAILURES_PER_ACCOUNT)
    ]

    # when the thief renames the account (no password needed for that) and guesses again
    renamed = await c.put(path, json={"username": f"re_{user['username']}"[:50]}, headers=headers)
    again = await c.put(path, json=guess, headers=headers)

    # then the account's budget of guesses is spent whatever its name
    assert spent == [403] * FAILURES_PER_ACCOUNT
    assert renamed.status_code == 200, renamed.text
    assert again.status_code == 429, again.text


async def test_guesses_of_a_current_password_count_toward_the_client_limit(
    behind_proxy: httpx.AsyncClient,
) -> None:
    # given a client with tokens of several accounts (each guess is an Argon2 hash)
    c = behind_proxy
    thief = _from()
    tokens = []
    for _ in range(AUTH_PER_CLIENT // FAILURES_PER_ACCOUNT + 1):
        user = user_data()
        assert (await c.post("/api/v1/users/create", json=user, headers=_from())).status_code == 201
        credentials = {"username": user["username"], "password": user["password"]}
        logged_in = await c.post("/api/v1/users/login", json=credentials, headers=_from())
        tokens.append((user["sid"], logged_in.json()["token"]))

    # when it guesses each one's password, within each account's own limit
    statuses = []
    for sid, token in tokens:
        headers = {"Authorization": f"Bearer {token}", **thief}
        guess = {"password": "a-new-password", "current_password": "a-guess"}
        for _ in range(FAILURES_PER_ACCOUNT):
            response = await c.put(f"/api/v1/users/{sid}", json=guess, headers=headers)
            statuses.append(response.status_code)

    # then the client's own limit (logins, registrations and such guesses) stops it
    assert statuses[:AUTH_PER_CLIENT] == [403] * AUTH_PER_CLIENT
    assert set(statuses[AUTH_PER_CLIENT:]) == {429}


async def _socket_login(gateway_url: str, headers: dict[str, str], user: dict[str, str]) -> Any:
    """A login over graphql-transport-ws from the client the headers name; its result."""
    url = gateway_url.replace("http://", "ws://") + "/graphql"
    variables = {"u": user["username"], "p": user["password"]}
    async with websockets.connect(url, subprotocols=[PROTOCOL], additional_headers=headers) as ws:
        await ws.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        payload = {"query": LOGIN, "variables": variables}
        await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": payload}).decode())
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
        assert message["type"] == "next", message
        return message["payload"]


async def test_a_login_over_a_websocket_counts_against_its_own_client(
    behind_proxy: httpx.AsyncClient, accounts: tuple[OwnStack, OwnStack]
) -> None:
    # given a client that has used up its logins over HTTP, and an account
    c, gateway_url = behind_proxy, accounts[0].gateway_url
    spent = _from()
    user = user_data()
    assert (await c.post("/api/v1/users/create", json=user, headers=_from())).status_code == 201
    right = {"username": user["username"], "password": user["password"]}
    for _ in range(AUTH_PER_CLIENT):
        await c.post("/api/v1/users/login", json=right, headers=spent)

    # when that client logs in over a socket, and so do more other clients than one's budget
    refused = await _socket_login(gateway_url, spent, user)
    others = [await _socket_login(gateway_url, _from(), user) for _ in range(AUTH_PER_CLIENT + 1)]

    # then the spent client is refused there too, and the others are not held to one budget
    assert [e["extensions"]["code"] for e in refused.get("errors", [])] == ["RATE_LIMITED"]
    assert [r.get("errors") for r in others] == [None] * (AUTH_PER_CLIENT + 1)


async def test_websockets_of_one_client_beyond_its_limit_are_429_while_others_connect(
    accounts: tuple[OwnStack, OwnStack], behind_proxy: httpx.AsyncClient
) -> None:
    # given WEBSOCKETS_PER_CLIENT_MAX=2 on a gateway that tells clients apart by the
    # X-Forwarded-For of its trusted proxy, and a client holding two sockets
    url = accounts[0].gateway_url.replace("http://", "ws://") + "/graphql"
    client, neighbour = _from(), _from()
    await _until_open_sockets(behind_proxy, 0)

    def connect(headers: dict[str, str]) -> Any:
        return websockets.connect(url, subprotocols=[PROTOCOL], additional_headers=headers)

    async with contextlib.AsyncExitStack() as sockets:
        for _ in range(WEBSOCKETS_PER_CLIENT):
            await sockets.enter_async_context(connect(client))
        # when it opens one more, and another client opens one
        with pytest.raises(websockets.InvalidStatus) as refusal:
            await connect(client)
        other = await sockets.enter_async_context(connect(neighbour))
        # then its own is refused before the handshake, as a rate limit with when to retry,
        # while the other client is served: one client cannot take every socket of the gateway
        response = refusal.value.response
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
        error = orjson.loads(response.body)["errors"][0]
        assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 1}
        assert f"this client has {WEBSOCKETS_PER_CLIENT} WebSockets open" in error["message"]
        await other.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
        assert orjson.loads(await asyncio.wait_for(other.recv(), 10))["type"] == "connection_ack"
