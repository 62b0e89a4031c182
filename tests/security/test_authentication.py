"""Matrix, authentication and JWT: forged, malformed and misplaced credentials, both APIs.

(tests/integration/test_tokens.py covers the classic forgeries: alg none, other algorithms,
tampering, wrong secret, expiry, missing claims, stale versions; these are the rest.)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import httpx
import jwt
import pytest

from tests.conftest import JWT_SECRET, Stack
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


@pytest.mark.parametrize(
    ("case", "credential"), BAD_CREDENTIALS, ids=[row[0] for row in BAD_CREDENTIALS]
)
@pytest.mark.parametrize("api", ["rest", "graphql"])
async def test_bad_credentials_are_401_in_both_apis(
    client: httpx.AsyncClient,
    stack: Stack,
    actors: Actors,
    api: str,
    case: str,
    credential: Callable[[Actors], str | bytes],
) -> None:
    # given alice's sid in a credential that must not be accepted
    headers = {"Authorization": credential(actors)}

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
