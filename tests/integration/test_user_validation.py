"""Bad account input gets a clear 400 / BAD_USER_INPUT and changes nothing; duplicates a 409."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.conftest import Stack
from tests.factories import error_codes, gql, make_user, user_data

INVALID = [
    ("sid", "", "sid must be 1 to 15 letters or digits"),
    ("sid", "1234567890123456", "sid must be 1 to 15 letters or digits"),
    ("sid", "12-34", "sid must be 1 to 15 letters or digits"),
    ("username", "ab", "username must be 3 to 50"),
    ("username", "x" * 51, "username must be 3 to 50"),
    ("username", "bad\x00name", "username must not contain NUL bytes"),
    ("username", "b\u043ess", "username must be 3 to 50 ASCII"),  # a Cyrillic о
    ("username", "us\u00e9r1", "username must be 3 to 50 ASCII"),
    ("username", "\u0661\u0662\u0663", "username must be 3 to 50 ASCII"),  # Arabic-Indic digits
    ("email", "not-an-email", "email must be a valid ASCII address"),
    ("email", "a@" + "b" * 250 + ".com", "email must be a valid ASCII address"),
    # ASCII, as openapi.yaml's `format: email` (RFC 5321) says: PostgreSQL's lower() folds
    # only ASCII here, so "ÜBER@" and "über@" would be two accounts' addresses
    ("email", "\u00dcBER@example.com", "email must be a valid ASCII address"),
    ("email", "user@b\u00fccher.example", "email must be a valid ASCII address"),
    ("password", "short", "password must be 8 to 1024 characters"),
    ("password", "p" * 1025, "password must be 8 to 1024 characters"),
    ("password", "nul\x00password", "password must not contain NUL bytes"),
]


@pytest.mark.parametrize(("field", "value", "message"), INVALID)
async def test_invalid_registration_is_refused(
    client: httpx.AsyncClient, field: str, value: str, message: str
) -> None:
    data = user_data(**{field: value})

    rest = await client.post("/api/v1/users/create", json=data)
    graphql = await gql(
        client,
        "mutation($i: RegisterInput!) { register(input: $i) { sid } }",
        {"i": user_data(**{field: value})},
    )

    assert rest.status_code == 400
    assert rest.json()["error"]["code"] == "BAD_USER_INPUT"
    assert message in rest.json()["error"]["message"]
    assert error_codes(graphql) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "body",
    [
        {"sid": 123, "username": "abc", "email": "a@b.co", "password": "12345678"},
        {"username": "abc", "email": "a@b.co", "password": "12345678"},
    ],
)
async def test_wrong_types_and_missing_fields_are_refused(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/api/v1/users/create", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("field", ["sid", "username", "email"])
async def test_duplicates_name_the_field(client: httpx.AsyncClient, field: str) -> None:
    first = await make_user(client)
    taken = {"sid": first.sid, "username": first.username, "email": first.email.upper()}[field]

    response = await client.post("/api/v1/users/create", json=user_data(**{field: taken}))

    assert response.status_code == 409
    assert response.json()["error"] == {"code": "CONFLICT", "message": f"{field} is already taken"}


async def test_update_to_a_taken_email_conflicts_case_insensitively(
    client: httpx.AsyncClient,
) -> None:
    alice, bob = await make_user(client), await make_user(client)

    response = await client.put(
        f"/api/v1/users/{alice.sid}",
        json={"email": bob.email.upper(), "current_password": alice.password},
        headers=alice.auth,
    )

    assert response.status_code == 409
    assert response.json()["error"]["message"] == "email is already taken"


async def test_unknown_user_is_not_found_for_admin(client: httpx.AsyncClient) -> None:
    from tests.conftest import ADMIN
    from tests.factories import login

    token = await login(client, ADMIN["username"], ADMIN["password"])

    response = await client.get(
        "/api/v1/users/NOSUCHSID", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


_SET_LEGACY = {
    "username": "UPDATE users SET username = $1 WHERE sid = $2",
    "email": "UPDATE users SET email = $1 WHERE sid = $2",
}


async def _legacy_value(stack: Stack, sid: str, column: str, value: str) -> None:
    """Give an account a value written before the current rules (straight into its row)."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(_SET_LEGACY[column], value, sid)
    finally:
        await conn.close()


async def test_a_name_from_before_the_ascii_rule_can_be_sent_back_unchanged(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given an account whose username was registered when any script's letters were allowed
    user = await make_user(client)
    legacy = "b\u043ess_" + user.sid  # with a Cyrillic о
    await _legacy_value(stack, user.sid, "username", legacy)

    # when its owner saves their profile, re-sending the name with a new email, and then tries
    # to change the name to another that is not ASCII
    saved = await client.put(
        f"/api/v1/users/{user.sid}",
        json={"username": legacy, "email": f"new_{user.email}", "current_password": user.password},
        headers=user.auth,
    )
    renamed = await client.put(
        f"/api/v1/users/{user.sid}", json={"username": "b\u043ess_x"}, headers=user.auth
    )

    # then the unchanged name is kept and the new one refused
    assert saved.status_code == 200, saved.text
    assert saved.json()["username"] == legacy
    assert renamed.status_code == 400
    assert "ASCII" in renamed.json()["error"]["message"]


async def test_an_email_from_before_the_ascii_rule_can_be_sent_back_unchanged(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given an account whose email was registered when addresses needed not be ASCII
    user = await make_user(client)
    legacy = f"\u00fcber_{user.sid}@example.com"
    await _legacy_value(stack, user.sid, "email", legacy)

    # when its owner saves their profile, re-sending the address, then changes it to another
    # that is not ASCII
    proof = {"current_password": user.password}
    saved = await client.put(
        f"/api/v1/users/{user.sid}", json={"email": legacy, **proof}, headers=user.auth
    )
    changed = await client.put(
        f"/api/v1/users/{user.sid}",
        json={"email": f"\u00e9_{user.email}", **proof},
        headers=user.auth,
    )

    # then the unchanged address is kept and the new one refused
    assert saved.status_code == 200, saved.text
    assert saved.json()["email"] == legacy
    assert changed.status_code == 400
    assert "ASCII" in changed.json()["error"]["message"]
