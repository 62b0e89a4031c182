"""Accounts end to end through both APIs: register, log in, read, update, deactivate."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import asyncpg
import httpx
import pytest

from scripts.infra import EmbeddedPostgres
from tests.conftest import ADMIN, ROOT, Stack
from tests.factories import admin_token, error_codes, gql, login, make_user, user_data
from tests.ownstack import own_services

REGISTER = """
mutation($input: RegisterInput!) {
  register(input: $input) { id sid username email role isActive createdAt }
}"""
LOGIN = """
mutation($u: String!, $p: String!) {
  login(username: $u, password: $p) { token expiresIn user { sid username role } }
}"""
ME = "{ me { sid username email role isActive } }"


async def test_graphql_register_login_me_round_trip(client: httpx.AsyncClient) -> None:
    data = user_data()

    registered = await gql(client, REGISTER, {"input": data})
    logged_in = await gql(client, LOGIN, {"u": data["username"], "p": data["password"]})
    token = logged_in["data"]["login"]["token"]
    me = await gql(client, ME, token=token)

    assert registered["data"]["register"]["sid"] == data["sid"]
    assert registered["data"]["register"]["role"] == "CUSTOMER"
    assert logged_in["data"]["login"]["expiresIn"] == 3600
    assert me["data"]["me"] == {
        "sid": data["sid"],
        "username": data["username"],
        "email": data["email"],
        "role": "CUSTOMER",
        "isActive": True,
    }


async def test_rest_register_login_get_round_trip(client: httpx.AsyncClient) -> None:
    data = user_data()

    created = await client.post("/api/v1/users/create", json=data)
    logged_in = await client.post(
        "/api/v1/users/login", json={"username": data["username"], "password": data["password"]}
    )
    token = logged_in.json()["token"]
    fetched = await client.get(
        f"/api/v1/users/{data['sid']}", headers={"Authorization": f"Bearer {token}"}
    )

    assert created.status_code == 201
    assert set(created.json()) == {
        "id",
        "sid",
        "username",
        "email",
        "role",
        "is_active",
        "created_at",
    }
    assert logged_in.status_code == 200
    assert logged_in.json()["token_type"] == "Bearer"
    assert logged_in.json()["user"]["sid"] == data["sid"]
    assert fetched.status_code == 200
    assert fetched.json()["username"] == data["username"]
    assert fetched.json()["role"] == "customer"


async def test_request_id_is_echoed_or_created(client: httpx.AsyncClient) -> None:
    given = await client.get("/api/v1", headers={"X-Request-ID": "abc-123"})
    created = await client.get("/api/v1")

    assert given.headers["x-request-id"] == "abc-123"
    assert len(created.headers["x-request-id"]) == 32


async def test_update_own_profile_and_password(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    new_name = f"{user.username}_x"

    updated = await client.put(
        f"/api/v1/users/{user.sid}",
        json={
            "username": new_name,
            "password": "a brand new password",
            "current_password": user.password,
        },
        headers=user.auth,
    )

    assert updated.status_code == 200
    assert updated.json()["username"] == new_name
    assert await login(client, new_name, "a brand new password")


async def test_graphql_update_and_deactivate_self(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    email = f"new_{user.email}"

    updated = await gql(
        client,
        "mutation($s: String!, $e: String!, $p: String!) {"
        " updateUser(sid: $s, input: {email: $e, currentPassword: $p}) { email } }",
        {"s": user.sid, "e": email, "p": user.password},
        token=user.token,
    )
    deactivated = await gql(
        client,
        "mutation($s: String!) { deactivateUser(sid: $s) { isActive } }",
        {"s": user.sid},
        token=user.token,
    )
    after = await gql(client, ME, token=user.token)

    assert updated["data"]["updateUser"]["email"] == email
    assert deactivated["data"]["deactivateUser"]["isActive"] is False
    # Deactivation revokes the token at once.
    assert error_codes(after) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", None), ("PUT", {"username": "stolen_name"}), ("DELETE", None)],
)
async def test_customer_cannot_touch_another_user_rest(
    client: httpx.AsyncClient, method: str, body: dict[str, str] | None
) -> None:
    alice, bob = await make_user(client), await make_user(client)

    response = await client.request(
        method, f"/api/v1/users/{bob.sid}", json=body, headers=alice.auth
    )
    still = await client.get(f"/api/v1/users/{bob.sid}", headers=bob.auth)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert still.json()["username"] == bob.username
    assert still.json()["is_active"] is True


@pytest.mark.parametrize(
    "operation",
    [
        "query($s: String!) { user(sid: $s) { username } }",
        'mutation($s: String!) { updateUser(sid: $s, input: {username: "stolen_name"}) { sid } }',
        "mutation($s: String!) { deactivateUser(sid: $s) { sid } }",
    ],
)
async def test_customer_cannot_touch_another_user_graphql(
    client: httpx.AsyncClient, operation: str
) -> None:
    alice, bob = await make_user(client), await make_user(client)

    body = await gql(client, operation, {"s": bob.sid}, token=alice.token)
    still = await gql(client, ME, token=bob.token)

    assert error_codes(body) == ["FORBIDDEN"]
    assert still["data"]["me"]["username"] == bob.username
    assert still["data"]["me"]["isActive"] is True


@pytest.mark.parametrize(
    "body",
    [{"role": "admin"}, {"is_active": True, "role": "admin"}, {"token_version": 0}],
)
async def test_customer_cannot_become_admin_by_any_rest_field(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    user = await make_user(client)

    response = await client.put(f"/api/v1/users/{user.sid}", json=body, headers=user.auth)
    registered = await client.post("/api/v1/users/create", json={**user_data(), **body})
    me = await client.get(f"/api/v1/users/{user.sid}", headers=user.auth)

    assert response.status_code == 400
    assert registered.status_code == 400
    assert me.json()["role"] == "customer"


async def test_customer_cannot_become_admin_through_graphql_input(
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(client)

    body = await gql(
        client,
        "mutation($s: String!) { updateUser(sid: $s, input: {role: ADMIN}) { role } }",
        {"s": user.sid},
        token=user.token,
    )
    registered = await gql(client, REGISTER, {"input": {**user_data(), "role": "ADMIN"}})
    me = await gql(client, ME, token=user.token)

    # A field the input type does not have is bad input, written in the document or sent
    # in a variable alike (DESIGN §6).
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert error_codes(registered) == ["BAD_USER_INPUT"]
    assert me["data"]["me"]["role"] == "CUSTOMER"


async def test_admin_lists_users_and_customer_cannot(client: httpx.AsyncClient) -> None:
    customer = await make_user(client)
    admin_token = await login(client, ADMIN["username"], ADMIN["password"])

    listed = await client.get(
        "/api/v1/users?limit=100", headers={"Authorization": f"Bearer {admin_token}"}
    )
    connection = await gql(
        client,
        "{ users(first: 2) { edges { node { sid role } cursor }"
        " pageInfo { hasNextPage endCursor } } }",
        token=admin_token,
    )
    refused_rest = await client.get("/api/v1/users", headers=customer.auth)
    refused_gql = await gql(client, "{ users { edges { node { sid } } } }", token=customer.token)

    assert listed.status_code == 200
    assert any(u["sid"] == ADMIN["sid"] and u["role"] == "admin" for u in listed.json())
    page = connection["data"]["users"]
    assert len(page["edges"]) == 2
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
    assert refused_rest.status_code == 403
    assert error_codes(refused_gql) == ["FORBIDDEN"]


async def test_users_connection_pages_do_not_overlap(client: httpx.AsyncClient) -> None:
    await make_user(client)
    admin_token = await login(client, ADMIN["username"], ADMIN["password"])
    query = "query($a: String) { users(first: 1, after: $a) { edges { node { sid } cursor } } }"

    first = await gql(client, query, {"a": None}, token=admin_token)
    cursor = first["data"]["users"]["edges"][0]["cursor"]
    second = await gql(client, query, {"a": cursor}, token=admin_token)

    assert (
        first["data"]["users"]["edges"][0]["node"]["sid"]
        != (second["data"]["users"]["edges"][0]["node"]["sid"])
    )


async def test_concurrent_registrations_of_one_username_create_one_user(
    client: httpx.AsyncClient,
) -> None:
    username = user_data()["username"]

    responses = await asyncio.gather(
        *(client.post("/api/v1/users/create", json=user_data(username=username)) for _ in range(20))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19
    conflicts = [r.json()["error"] for r in responses if r.status_code == 409]
    assert all(e == {"code": "CONFLICT", "message": "username is already taken"} for e in conflicts)


async def test_passwords_and_hashes_never_appear_in_responses(client: httpx.AsyncClient) -> None:
    data = user_data()
    admin_token = await login(client, ADMIN["username"], ADMIN["password"])
    admin = {"Authorization": f"Bearer {admin_token}"}

    bodies = [
        (await client.post("/api/v1/users/create", json=data)).text,
        (
            await client.post(
                "/api/v1/users/login",
                json={"username": data["username"], "password": data["password"]},
            )
        ).text,
        (await client.get("/api/v1/users?limit=100", headers=admin)).text,
        (await client.get(f"/api/v1/users/{data['sid']}", headers=admin)).text,
        str(
            await gql(
                client, "{ users(first: 100) { edges { node { sid email } } } }", token=admin_token
            )
        ),
        (
            await client.post(
                "/api/v1/users/login",
                json={"username": data["username"], "password": "wrong-password"},
            )
        ).text,
    ]

    for body in bodies:
        assert data["password"] not in body
        assert ADMIN["password"] not in body
        assert "$argon2" not in body


async def _second_admin(env: dict[str, str]) -> dict[str, str]:
    """Another admin in the database `env` points at, made by the command line."""
    admin = {"sid": "A0000002", "username": "second_admin", "password": "second-admin-pw-1"}
    made = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "db_service", "create-admin", "--sid", admin["sid"],
         "--username", admin["username"], "--password-stdin"],
        input=admin["password"] + "\n", env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return admin


async def test_the_last_active_admin_cannot_be_deactivated(
    stack: Stack, postgres: EmbeddedPostgres
) -> None:
    # given a shop of its own, whose only admin is the one its db_service was started with
    database = postgres.ensure_database(f"admins_{uuid.uuid4().hex[:8]}")
    with own_services(stack, ("db_service", "gateway"), DATABASE_URL=database) as own:
        async with httpx.AsyncClient(base_url=own.gateway_url, timeout=30) as c:
            first = await login(c, ADMIN["username"], ADMIN["password"])

            # when that admin deactivates their own account
            alone = await c.delete(
                f"/api/v1/users/{ADMIN['sid']}", headers={"Authorization": f"Bearer {first}"}
            )

            # then it is refused: nobody could make an admin through the API afterwards
            assert alone.status_code == 409, alone.text
            assert alone.json()["error"]["code"] == "FAILED_PRECONDITION"

            # and when a second admin exists and the two deactivate each other at once
            second = await _second_admin({**own.env, "DATABASE_URL": database})
            other = await login(c, second["username"], second["password"])
            answers = await asyncio.gather(
                c.delete(
                    f"/api/v1/users/{second['sid']}", headers={"Authorization": f"Bearer {first}"}
                ),
                c.delete(
                    f"/api/v1/users/{ADMIN['sid']}", headers={"Authorization": f"Bearer {other}"}
                ),
            )

    # then exactly one of them goes, and one active admin is left
    assert sorted(a.status_code for a in answers)[0] == 200
    assert [a.status_code for a in answers].count(200) == 1, [a.text for a in answers]
    conn = await asyncpg.connect(database)
    try:
        active = await conn.fetchval(
            "SELECT count(*) FROM users WHERE role = 'admin' AND is_active"
        )
    finally:
        await conn.close()
    assert active == 1


async def test_a_very_long_sid_is_not_found_in_a_few_words(client: httpx.AsyncClient) -> None:
    # given an admin, and a sid far longer than any (its echo once overflowed gRPC's trailers)
    token = await admin_token(client)
    headers = {"Authorization": f"Bearer {token}"}
    sid = "x" * 20_000

    # when it is looked up, through REST and GraphQL
    rest = await client.get(f"/api/v1/users/{sid}", headers=headers)
    orders = await client.get(f"/api/v1/orders/user/{sid}", headers=headers)
    graphql = await gql(client, "query($s: String!) { user(sid: $s) { sid } }", {"s": sid}, token)

    # then each is not found, with a message that does not repeat the whole sid
    for response in (rest, orders):
        assert response.status_code == 404, response.text[:300]
        assert response.json()["error"]["code"] == "NOT_FOUND"
        assert len(response.text) < 1000
    assert [e["extensions"]["code"] for e in graphql["errors"]] == ["NOT_FOUND"]
