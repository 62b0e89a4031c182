"""Per-account login throttling: refused after 5 attempts in a window, let in after the wait."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.conftest import LOGIN_WINDOW_S
from tests.factories import error_codes, gql, make_user

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"


async def test_throttling_kicks_in_and_lets_the_right_password_in_after_the_wait(
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(client)
    wrong = {"username": user.username, "password": "wrong password!"}

    failures = [await client.post("/api/v1/users/login", json=wrong) for _ in range(5)]
    limited = await client.post(
        "/api/v1/users/login", json={"username": user.username, "password": user.password}
    )

    assert [r.status_code for r in failures] == [401] * 5
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= LOGIN_WINDOW_S

    deadline = time.monotonic() + LOGIN_WINDOW_S + 5
    while True:
        ok = await client.post(
            "/api/v1/users/login", json={"username": user.username, "password": user.password}
        )
        if ok.status_code == 200 or time.monotonic() > deadline:
            break
        assert ok.status_code == 429
        await asyncio.sleep(0.25)
    assert ok.status_code == 200


async def test_throttling_holds_for_logins_racing_each_other(client: httpx.AsyncClient) -> None:
    user = await make_user(client)

    bodies = await asyncio.gather(
        *(gql(client, LOGIN, {"u": user.username, "p": f"wrong password {i}"}) for i in range(12))
    )

    codes = [code for body in bodies for code in error_codes(body)]
    # At most 5 passwords were ever checked in the window, however many logins raced.
    assert codes.count("UNAUTHENTICATED") == 5
    assert codes.count("RATE_LIMITED") == 7


async def test_unknown_user_and_wrong_password_answer_alike(client: httpx.AsyncClient) -> None:
    user = await make_user(client)

    unknown = await client.post(
        "/api/v1/users/login", json={"username": "nobody_here_123", "password": "whatever123"}
    )
    wrong = await client.post(
        "/api/v1/users/login", json={"username": user.username, "password": "whatever123"}
    )

    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


async def test_a_name_longer_once_lowercased_is_an_unknown_user(client: httpx.AsyncClient) -> None:
    # given a username of 26 characters that lowercases to 52 ("İ" becomes "i̇"), longer than
    # the column login attempts are counted under
    name = "\u0130" * 26
    assert len(name) == 26
    assert len(name.lower()) == 52

    # when someone logs in with it, or asks GraphQL to
    rest = await client.post(
        "/api/v1/users/login", json={"username": name, "password": "whatever123"}
    )
    graphql = await gql(client, LOGIN, {"u": name, "p": "whatever123"})

    # then it is an unknown user like any other, not a value out of range
    assert rest.status_code == 401, rest.text
    assert rest.json()["error"]["code"] == "UNAUTHENTICATED"
    assert error_codes(graphql) == ["UNAUTHENTICATED"]
