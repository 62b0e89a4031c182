"""Matrix, authentication and JWT: forged, malformed and misplaced credentials, both APIs.

(tests/integration/test_tokens.py covers the classic forgeries: alg none, other algorithms,
tampering, wrong secret, expiry, missing claims, stale versions; these are the rest.)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import JWT_SECRET, Stack
from tests.factories import make_user, user_data
from tests.security.conftest import Actors, assert_safe, graphql_codes, unchanged

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def _claims(actors: Actors, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": actors.alice.sid,
        "role": "customer",
        "ver": 1,
        "iat": now,
        "exp": now + 600,
        "iss": "merch-store",
        "jti": "matrix",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(actors: Actors, **changes: object) -> str:
    return jwt.encode(_claims(actors, **changes), JWT_SECRET, algorithm="HS256")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _header_says_rs256(actors: Actors) -> str:
    _, payload, signature = _signed(actors).split(".")
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{signature}"


# (case, the Authorization header built for alice)
BAD_CREDENTIALS: list[tuple[str, Callable[[Actors], str | bytes]]] = [
    ("another issuer", lambda a: "Bearer " + _signed(a, iss="evil-corp")),
    ("no issuer", lambda a: "Bearer " + _signed(a, iss=None)),
    ("no iat", lambda a: "Bearer " + _signed(a, iat=None)),
    ("issued in the future", lambda a: "Bearer " + _signed(a, iat=int(time.time()) + 3600)),
    ("not valid yet (nbf)", lambda a: "Bearer " + _signed(a, nbf=int(time.time()) + 3600)),
    ("version as a string", lambda a: "Bearer " + _signed(a, ver="1")),
    ("subject as a number", lambda a: "Bearer " + _signed(a, sub=12345)),
    ("header says RS256", lambda a: "Bearer " + _header_says_rs256(a)),
    ("a 5 000-character token", lambda a: "Bearer " + "a" * 5000),
    ("Basic scheme", lambda a: "Basic " + base64.b64encode(b"alice:secret").decode()),
    ("Bearer with no token", lambda a: "Bearer"),
    ("a token without its scheme", lambda a: a.alice.token),
    ("non-ASCII bytes", lambda a: "Bearer \u00e9\u00e8\u00ff".encode("latin-1")),
]

# (case, a malformed Authorization header built around alice's real token) — raw bytes, as curl
# or a broken client sends them; each must be as good as no header at all.
MALFORMED_HEADERS: list[tuple[str, Callable[[Actors], bytes]]] = [
    ("a tab inside the token", lambda a: b"Bearer " + _split(a.alice.token, b"\t")),
    ("a tab for the space", lambda a: b"Bearer\t" + a.alice.token.encode()),
    ("non-ASCII UTF-8 after the token", lambda a: f"Bearer {a.alice.token}\u00e9".encode()),
    ("a non-ASCII byte inside the token", lambda a: b"Bearer " + _split(a.alice.token, b"\xff")),
    ("non-ASCII bytes alone", lambda a: b"Bearer \xc3\xa9\xff"),
    ("a 7 000-byte header", lambda a: b"Bearer " + a.alice.token.encode() + b"a" * 7000),
    ("Bearer with nothing", lambda a: b"Bearer"),
    # (Trailing spaces are not a case: HTTP strips them, so "Bearer  " arrives as "Bearer".)
    ("the scheme twice", lambda a: b"Bearer Bearer " + a.alice.token.encode()),
    ("two credentials", lambda a: f"Bearer {a.alice.token}, Bearer {a.alice.token}".encode()),
]
BAD_CREDENTIALS += MALFORMED_HEADERS

# (case, several Authorization headers): a proxy reading the last one would see another caller
# than one reading the first, so none counts, whichever holds the valid token.
SEVERAL_HEADERS: list[tuple[str, Callable[[Actors], list[str | bytes]]]] = [
    ("two headers, the valid one first", lambda a: [f"Bearer {a.alice.token}", "Bearer x"]),
    ("two headers, the valid one last", lambda a: ["Bearer x", f"Bearer {a.alice.token}"]),
]


def _split(token: str, junk: bytes) -> bytes:
    """The token with `junk` in the middle of its signature."""
    raw = token.encode()
    return raw[:-10] + junk + raw[-10:]


def _in_headers(credential: Callable[[Actors], Any]) -> Callable[[Actors], list[str | bytes]]:
    return lambda a: [credential(a)]


CREDENTIAL_HEADERS = [(case, _in_headers(make)) for case, make in BAD_CREDENTIALS] + SEVERAL_HEADERS


@pytest.mark.parametrize(
    ("case", "credential"), CREDENTIAL_HEADERS, ids=[row[0] for row in CREDENTIAL_HEADERS]
)
@pytest.mark.parametrize("api", ["rest", "graphql"])
async def test_bad_credentials_are_401_in_both_apis(
    client: httpx.AsyncClient,
    stack: Stack,
    actors: Actors,
    api: str,
    case: str,
    credential: Callable[[Actors], list[str | bytes]],
) -> None:
    # given alice's sid in Authorization headers that must not be accepted
    headers = [("Authorization", value) for value in credential(actors)]

    # when it is used to read her account
    async with unchanged(stack):
        if api == "rest":
            response = await client.get(f"/api/v1/users/{actors.alice.sid}", headers=headers)
        else:
            response = await client.post(
                "/graphql", json={"query": "{ me { sid } }"}, headers=headers
            )

    # then it is refused as unauthenticated, saying nothing more
    assert_safe(response, secrets=[actors.alice.token])
    if api == "rest":
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    else:
        assert graphql_codes(response) == ["UNAUTHENTICATED"]


PUBLIC_OPERATIONS = ["REST product", "REST login", "GraphQL product", "GraphQL login"]
GRAPHQL_LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"


async def _public_call(
    client: httpx.AsyncClient, operation: str, product_id: int, headers: dict[str, bytes]
) -> httpx.Response:
    """One public operation; the login ones log a fresh account in."""
    account = user_data()
    if "login" in operation:
        created = await client.post("/api/v1/users/create", json=account)
        assert created.status_code == 201, created.text
    credentials = {"username": account["username"], "password": account["password"]}
    if operation == "REST product":
        return await client.get(f"/api/v1/products/{product_id}", headers=headers)
    if operation == "REST login":
        return await client.post("/api/v1/users/login", json=credentials, headers=headers)
    if operation == "GraphQL product":
        query = {"query": f"{{ product(id: {product_id}) {{ id }} }}"}
        return await client.post("/graphql", json=query, headers=headers)
    variables = {"u": credentials["username"], "p": credentials["password"]}
    return await client.post(
        "/graphql", json={"query": GRAPHQL_LOGIN, "variables": variables}, headers=headers
    )


@pytest.mark.parametrize(
    ("case", "credential"), MALFORMED_HEADERS, ids=[row[0] for row in MALFORMED_HEADERS]
)
@pytest.mark.parametrize("operation", PUBLIC_OPERATIONS)
async def test_a_malformed_header_is_ignored_where_no_token_is_needed(
    client: httpx.AsyncClient,
    actors: Actors,
    operation: str,
    case: str,
    credential: Callable[[Actors], bytes],
) -> None:
    # given a malformed Authorization header on an operation anyone may call
    headers = {"Authorization": credential(actors)}

    # when the operation is called with it
    response = await _public_call(client, operation, actors.product["id"], headers)

    # then it is answered exactly as for an anonymous caller (the header is ignored)
    assert_safe(response, secrets=[actors.alice.token])
    assert response.status_code == 200, response.text
    if operation == "REST product":
        assert response.json()["id"] == actors.product["id"]
    elif operation == "REST login":
        assert response.json()["token"]
    else:
        body = response.json()
        assert "errors" not in body, body
        assert (body["data"].get("product") or body["data"].get("login")) is not None


async def test_more_than_one_space_after_the_scheme_is_accepted(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given alice's real token after two spaces (RFC 9110: the scheme, then 1*SP)
    headers = {"Authorization": f"Bearer  {actors.alice.token}"}

    # when it is used
    response = await client.get(f"/api/v1/users/{actors.alice.sid}", headers=headers)

    # then it is accepted like the usual single space
    assert response.status_code == 200


async def test_the_bearer_scheme_is_case_insensitive(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given alice's real token after "bearer" in lower case (RFC 9110: schemes ignore case)
    headers = {"Authorization": f"bearer {actors.alice.token}"}

    # when it is used
    response = await client.get(f"/api/v1/users/{actors.alice.sid}", headers=headers)

    # then it is accepted
    assert response.status_code == 200


async def test_a_token_in_the_query_string_is_ignored(
    client: httpx.AsyncClient, actors: Actors
) -> None:
    # given alice's token where tokens leak into logs: the URL
    response = await client.get(
        f"/api/v1/users/{actors.alice.sid}", params={"access_token": actors.alice.token}
    )

    # then it does not authenticate
    assert response.status_code == 401


async def test_a_forged_admin_role_claim_meets_db_service(
    client: httpx.AsyncClient, stack: Stack, actors: Actors
) -> None:
    # given a customer token claiming role admin (say the signing key leaked), valid otherwise
    forged = {"Authorization": "Bearer " + _signed(actors, role="admin")}

    # when it is used on admin-only operations of both APIs
    async with unchanged(stack):
        users = await client.get("/api/v1/users", headers=forged)
        created = await client.post(
            "/api/v1/products",
            json={"name": "Forged", "category": "X", "price": "1.00"},
            headers=forged,
        )
        graphql = await client.post(
            "/graphql", json={"query": "{ users { edges { node { sid } } } }"}, headers=forged
        )

    # then db_service, which reads the role from the database, refuses them all
    assert users.status_code == 403
    assert created.status_code == 403
    assert graphql_codes(graphql) == ["FORBIDDEN"]


# (case, login body) — none may log anyone in, answer 5xx or change data
BAD_LOGINS: list[tuple[str, dict[str, object], int]] = [
    ("SQL in the username", {"username": "x' OR '1'='1", "password": "whatever-1"}, 401),
    ("SQL in the password", {"username": "nobody_y", "password": "' OR '1'='1' --"}, 401),
    ("NUL in the username", {"username": "root\x00admin", "password": "whatever-1"}, 401),
    ("a 60 kB password", {"username": "nobody_x", "password": "p" * 60_000}, 401),
    ("an empty password", {"username": "nobody_x", "password": ""}, 401),
    ("a number as the password", {"username": "nobody_x", "password": 12345678}, 400),
    ("the username as a list", {"username": ["nobody_z"], "password": "x" * 8}, 400),
]


@pytest.mark.parametrize(("case", "body", "status"), BAD_LOGINS, ids=[r[0] for r in BAD_LOGINS])
async def test_hostile_logins_log_nobody_in(
    client: httpx.AsyncClient, stack: Stack, case: str, body: dict[str, object], status: int
) -> None:
    # given a hostile login body; when it is sent
    async with unchanged(stack):
        response = await client.post("/api/v1/users/login", json=body)

    # then nobody is logged in, nothing changes, and the answer gives nothing away
    assert_safe(response)
    assert response.status_code in {status, 400}
    assert "token" not in response.json()


UPDATE = "mutation($s: String!, $i: UpdateUserInput!) { updateUser(sid: $s, input: $i) { sid } }"

# (case, who changes alice's account, the change, which current password goes with it,
#  expected HTTP status and GraphQL code)
CHANGES: list[tuple[str, str, dict[str, str], str | None, int, str | None]] = [
    ("own password, no current password", "self", {"password": "a-new-password"}, None, 400,
     "BAD_USER_INPUT"),
    ("own email, no current password", "self", {"email": "new@example.com"}, None, 400,
     "BAD_USER_INPUT"),
    ("own password, empty current password", "self", {"password": "a-new-password"}, "", 400,
     "BAD_USER_INPUT"),
    ("own password, wrong current password", "self", {"password": "a-new-password"}, "wrong",
     403, "FORBIDDEN"),
    ("own email, wrong current password", "self", {"email": "new@example.com"}, "wrong", 403,
     "FORBIDDEN"),
    ("own password, a 2 kB current password", "self", {"password": "a-new-password"},
     "x" * 2000, 400, "BAD_USER_INPUT"),
    ("own username, no current password", "self", {"username": "renamed"}, None, 200, None),
    ("own password, right current password", "self", {"password": "a-new-password"}, "right",
     200, None),
    ("an admin resets a customer's password", "admin", {"password": "a-new-password"}, None, 200,
     None),
    ("an admin changes a customer's email", "admin", {"email": "new@example.com"}, None, 200,
     None),
]  # fmt: skip


@pytest.mark.parametrize("api", ["rest", "graphql"])
@pytest.mark.parametrize(
    ("case", "who", "change", "current", "status", "code"), CHANGES, ids=[c[0] for c in CHANGES]
)
async def test_changing_a_password_or_email_needs_the_current_password(
    client: httpx.AsyncClient,
    actors: Actors,
    api: str,
    case: str,
    who: str,
    change: dict[str, str],
    current: str | None,
    status: int,
    code: str | None,
) -> None:
    # given a customer (with a token that might be stolen) and a change to their account
    user = await make_user(client)
    change = {
        k: {"username": f"{user.username}_x", "email": f"{api}_{user.email}"}.get(k, v)
        for k, v in change.items()
    }
    secret = {"right": user.password, "wrong": "not-my-password"}.get(current or "", current)
    auth = {"Authorization": f"Bearer {user.token if who == 'self' else actors.admin}"}

    # when it is asked for through one API
    if api == "rest":
        extra = {} if secret is None else {"current_password": secret}
        response = await client.put(
            f"/api/v1/users/{user.sid}", json={**change, **extra}, headers=auth
        )
        error = response.json().get("error", {})
        answer = (response.status_code, error.get("code"), error.get("message"))
        expected_status = status
    else:
        extra = {} if secret is None else {"currentPassword": secret}
        variables = {"s": user.sid, "i": {**change, **extra}}
        response = await client.post(
            "/graphql", json={"query": UPDATE, "variables": variables}, headers=auth
        )
        errors = response.json().get("errors") or [{}]
        answer = (
            response.status_code,
            errors[0].get("extensions", {}).get("code"),
            errors[0].get("message"),
        )
        expected_status = 200

    # then it is refused without the right current password, and allowed otherwise
    assert_safe(response, secrets=[user.password])
    assert answer[:2] == (expected_status, code), response.text
    if code == "FORBIDDEN":
        assert answer[2] == "current password is wrong"
    if "password" in change:
        old = {"username": user.username, "password": user.password}
        again = await client.post("/api/v1/users/login", json=old)
        assert again.status_code == (401 if code is None else 200)
