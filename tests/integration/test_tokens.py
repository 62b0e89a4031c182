"""Every kind of bad token is refused, by the gateway and by db_service itself."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import grpc
import httpx
import jwt
import pytest

from protos import db_service_pb2 as pb
from protos import db_service_pb2_grpc
from tests.conftest import JWT_SECRET, Stack
from tests.factories import Account, change_password, error_codes, gql, make_user


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(user: Account, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": user.sid,
        "role": "customer",
        "ver": 1,
        "iat": now,
        "exp": now + 600,
        "iss": "merch-store",
        "jti": "x",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _tampered(user: Account) -> str:
    header, _, signature = user.token.split(".")
    return f"{header}.{_b64(_claims(user, role='admin'))}.{signature}"


pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

BAD_TOKENS: dict[str, Callable[[Account], str | None]] = {
    "missing": lambda u: None,
    "malformed": lambda u: "not-a-jwt",
    "alg none": lambda u: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(u))}.",
    "HS512": lambda u: jwt.encode(_claims(u), JWT_SECRET, algorithm="HS512"),
    "tampered": _tampered,
    "wrong secret": lambda u: jwt.encode(_claims(u), "another-secret-" * 4, algorithm="HS256"),
    "expired": lambda u: jwt.encode(
        _claims(u, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        JWT_SECRET,
        algorithm="HS256",
    ),
    "without exp": lambda u: jwt.encode(_claims(u, exp=None), JWT_SECRET, algorithm="HS256"),
    "without sub": lambda u: jwt.encode(_claims(u, sub=None), JWT_SECRET, algorithm="HS256"),
    "stale version": lambda u: jwt.encode(_claims(u, ver=0), JWT_SECRET, algorithm="HS256"),
    "unknown user": lambda u: jwt.encode(
        _claims(u, sub="NOSUCHUSER"), JWT_SECRET, algorithm="HS256"
    ),
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_tokens_are_refused_by_rest(client: httpx.AsyncClient, kind: str) -> None:
    user = await make_user(client)
    token = BAD_TOKENS[kind](user)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    response = await client.get(f"/api/v1/users/{user.sid}", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_tokens_are_refused_by_graphql(client: httpx.AsyncClient, kind: str) -> None:
    user = await make_user(client)

    body = await gql(client, "{ me { sid } }", token=BAD_TOKENS[kind](user) or None)

    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["data"] is None or body["data"]["me"] is None


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_db_service_checks_tokens_itself(
    client: httpx.AsyncClient, stack: Stack, kind: str
) -> None:
    user = await make_user(client)
    token = BAD_TOKENS[kind](user)
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)

    async with grpc.aio.insecure_channel(stack.db_addr) as channel:
        stub = db_service_pb2_grpc.DBServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetUser(pb.GetUserRequest(sid=user.sid), metadata=metadata, timeout=5)
        ok = await stub.GetUser(
            pb.GetUserRequest(sid=user.sid),
            metadata=(("authorization", f"Bearer {user.token}"),),
            timeout=5,
        )

    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ok.sid == user.sid


async def test_token_older_than_password_change_is_refused(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    old_token = user.token

    changed = await client.put(
        f"/api/v1/users/{user.sid}",
        json={"password": "another good password", "current_password": user.password},
        headers=user.auth,
    )
    with_old = await client.get(
        f"/api/v1/users/{user.sid}", headers={"Authorization": f"Bearer {old_token}"}
    )

    assert changed.status_code == 200
    assert with_old.status_code == 401


async def test_a_revoked_customer_token_is_unauthenticated_on_admin_operations_too(
    client: httpx.AsyncClient,
) -> None:
    # given a customer's token, revoked by a password change, and a valid customer token
    user, other = await make_user(client), await make_user(client)
    await change_password(client, user)

    # when each is used on the operations only an admin may call, in both APIs
    async def answers(account: Account) -> tuple[list[int], list[str]]:
        rest = [
            await client.get("/api/v1/users", headers=account.auth),
            await client.post(
                "/api/v1/products",
                json={"name": "Nope", "category": "X", "price": "1.00"},
                headers=account.auth,
            ),
            await client.put("/api/v1/products/1", json={"stock": 1}, headers=account.auth),
        ]
        graphql = [
            await gql(client, "{ users { edges { node { sid } } } }", token=account.token),
            await gql(
                client,
                'mutation { createProduct(input: {name: "Nope", category: "X", price: "1.00"})'
                " { id } }",
                token=account.token,
            ),
            await gql(
                client,
                "mutation { updateProduct(id: 1, input: {stock: 1}) { id } }",
                token=account.token,
            ),
        ]
        return [r.status_code for r in rest], [c for body in graphql for c in error_codes(body)]

    revoked, valid = await answers(user), await answers(other)

    # then the revoked token is told to log in again (401), as everywhere else; only a token
    # that still stands is told the operation is for administrators (403)
    assert revoked == ([401, 401, 401], ["UNAUTHENTICATED"] * 3)
    assert valid == ([403, 403, 403], ["FORBIDDEN"] * 3)


async def test_token_of_deactivated_user_is_refused(client: httpx.AsyncClient) -> None:
    user = await make_user(client)

    gone = await client.delete(f"/api/v1/users/{user.sid}", headers=user.auth)
    after = await client.get(f"/api/v1/users/{user.sid}", headers=user.auth)
    relogin = await client.post(
        "/api/v1/users/login", json={"username": user.username, "password": user.password}
    )

    assert gone.status_code == 200
    assert gone.json()["is_active"] is False
    assert after.status_code == 401
    assert relogin.status_code == 401


async def test_issued_token_has_the_documented_claims(client: httpx.AsyncClient) -> None:
    user = await make_user(client)

    header = jwt.get_unverified_header(user.token)
    claims = jwt.decode(user.token, JWT_SECRET, algorithms=["HS256"], issuer="merch-store")

    assert header["alg"] == "HS256"
    assert claims["sub"] == user.sid
    assert claims["role"] == "customer"
    assert claims["ver"] == 1
    assert claims["exp"] - claims["iat"] == 3600
    assert {"iss", "jti"} <= set(claims)
