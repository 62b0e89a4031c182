"""A subscription lasts no longer than its token: it ends, with the protocol's `error` message
and UNAUTHENTICATED, when the token expires or db_service revokes it (deactivation, a new
password), the latter within SESSION_RECHECK_S; and with the same `error` message, FORBIDDEN,
within SESSION_RECHECK_S of its admin becoming a customer."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from protos.tokens import TokenCodec
from tests.conftest import JWT_SECRET, ROOT, Stack
from tests.factories import Account, admin_token, login
from tests.graphqlws import RECORDED_REQUEST, GraphQLSocket
from tests.ownstack import OwnStack, own_services

LOGS = "subscription { logs { operation } }"
RECHECK_S = 1.0
# Generous for a loaded 2-core machine, yet far below the 30 s default interval.
RECHECK_SLACK_S = 5.0
_admins = itertools.count(1)


@pytest.fixture(scope="module")
def quick_recheck(stack: Stack) -> Iterator[OwnStack]:
    """A gateway of its own that re-checks subscription tokens every RECHECK_S seconds."""
    with own_services(stack, ("gateway",), SESSION_RECHECK_S=str(RECHECK_S)) as own:
        yield own


async def _make_admin(client: httpx.AsyncClient, stack: Stack) -> Account:
    """A new admin of this test's own (the CLI makes admins), logged in."""
    n = next(_admins)
    run = os.getpid() % 10_000
    admin = Account(
        sid=f"SA{run:04d}{n:03d}",
        username=f"session_admin_{run}_{n}",
        email=f"session_admin_{run}_{n}@admin.invalid",
        password=f"session admin password {n}",
    )
    created = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "db_service", "create-admin", "--sid", admin.sid,
         "--username", admin.username, "--password", admin.password],
        env={**stack.env, "ADMIN_SID": "", "ADMIN_USERNAME": "", "ADMIN_PASSWORD": ""},
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    admin.token = await login(client, admin.username, admin.password)
    return admin


def _short_lived(token: str, ttl_s: int) -> tuple[str, float]:
    """A token for the same admin (same version) that expires in `ttl_s`: (token, its exp)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    codec = TokenCodec(JWT_SECRET, claims["iss"], ttl_s=ttl_s)
    short = codec.issue(sid=claims["sub"], role=claims["role"], version=claims["ver"])
    return short, float(jwt.decode(short, options={"verify_signature": False})["exp"])


def _error_code(message: dict[str, Any]) -> str:
    assert message["type"] == "error", message
    code: str = message["payload"][0]["extensions"]["code"]
    return code


async def test_logs_subscription_ends_when_its_token_expires(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given an admin token that expires in a few seconds, streaming the log
    token, expires_at = _short_lived(await admin_token(client), ttl_s=6)
    async with GraphQLSocket.open(stack.gateway_url, token) as socket:
        await socket.subscribe("1", LOGS)
        live = await socket.messages_while_calling(client, "1", until="next", within=5)

        # when the token's lifetime passes
        messages = await socket.messages_while_calling(client, "1", until="error", within=15)
        ended_at = time.time()

    # then the stream ends with the protocol's error message, UNAUTHENTICATED, at expiry
    assert live[-1]["type"] == "next"
    assert _error_code(messages[-1]) == "UNAUTHENTICATED"
    assert ended_at >= expires_at - 1
    assert [m["type"] for m in messages[:-1]] == ["next"] * (len(messages) - 1)


async def test_gql_client_sees_its_logs_subscription_end_when_its_token_expires(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given gql streaming the log on a token that expires in seconds
    token, expires_at = _short_lived(await admin_token(client), ttl_s=6)
    transport = WebsocketsTransport(
        url=stack.gateway_url.replace("http://", "ws://") + "/graphql",
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    ended = asyncio.Event()

    async def call_until_ended() -> None:
        # Records flow while the stream is live, so that the client has something to read.
        while not ended.is_set():
            await client.get(RECORDED_REQUEST)
            try:
                await asyncio.wait_for(ended.wait(), 0.5)
            except TimeoutError:
                continue

    async def stream() -> int:
        received = 0
        async for _ in session.subscribe(gql(LOGS)):
            received += 1
        return received

    # when the token's lifetime passes
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        caller = asyncio.create_task(call_until_ended())
        try:
            with pytest.raises(TransportQueryError) as refused:
                await asyncio.wait_for(stream(), 30)
        finally:
            ended.set()
            await caller

    # then the client's stream ends with UNAUTHENTICATED at expiry, not in a hang
    assert [e["extensions"]["code"] for e in refused.value.errors or []] == ["UNAUTHENTICATED"]
    assert time.time() >= expires_at - 1


async def test_logs_subscription_ends_soon_after_the_admin_is_deactivated(
    client: httpx.AsyncClient, stack: Stack, quick_recheck: OwnStack
) -> None:
    # given a second admin streaming the log
    admin = await _make_admin(client, stack)
    root = {"Authorization": f"Bearer {await admin_token(client)}"}
    async with GraphQLSocket.open(quick_recheck.gateway_url, admin.token) as socket:
        await socket.subscribe("1", LOGS)
        await socket.messages_while_calling(client, "1", until="next", within=10)

        # when the root admin deactivates that admin
        deactivated = await client.delete(f"/api/v1/users/{admin.sid}", headers=root)
        assert deactivated.status_code == 200, deactivated.text
        revoked_at = time.monotonic()
        messages = await socket.messages_while_calling(client, "1", until="error", within=30)

    # then the stream ends with UNAUTHENTICATED within the re-check interval
    assert _error_code(messages[-1]) == "UNAUTHENTICATED"
    assert time.monotonic() - revoked_at < RECHECK_S + RECHECK_SLACK_S


async def test_logs_subscription_ends_soon_after_the_admin_password_changes(
    client: httpx.AsyncClient, stack: Stack, quick_recheck: OwnStack
) -> None:
    # given a second admin streaming the log
    admin = await _make_admin(client, stack)
    root = {"Authorization": f"Bearer {await admin_token(client)}"}
    async with GraphQLSocket.open(quick_recheck.gateway_url, admin.token) as socket:
        await socket.subscribe("1", LOGS)
        await socket.messages_while_calling(client, "1", until="next", within=10)

        # when the root admin gives that admin a new password (which revokes older tokens)
        changed = await client.put(
            f"/api/v1/users/{admin.sid}", json={"password": "a brand new password"}, headers=root
        )
        assert changed.status_code == 200, changed.text
        revoked_at = time.monotonic()
        messages = await socket.messages_while_calling(client, "1", until="error", within=30)

    # then the stream ends with UNAUTHENTICATED within the re-check interval
    assert _error_code(messages[-1]) == "UNAUTHENTICATED"
    assert time.monotonic() - revoked_at < RECHECK_S + RECHECK_SLACK_S


async def _make_customer(database_url: str, sid: str) -> None:
    """Make an admin a customer, as an operator would in the database (no API demotes one):
    its tokens are not revoked by that, only its role changes."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        await conn.execute("UPDATE users SET role = 'customer' WHERE sid = $1", sid)
    finally:
        await conn.close()


async def test_logs_subscription_ends_as_forbidden_soon_after_the_admin_becomes_a_customer(
    client: httpx.AsyncClient, stack: Stack, quick_recheck: OwnStack
) -> None:
    # given a second admin streaming the log
    admin = await _make_admin(client, stack)
    async with GraphQLSocket.open(quick_recheck.gateway_url, admin.token) as socket:
        await socket.subscribe("1", LOGS)
        await socket.messages_while_calling(client, "1", until="next", within=10)

        # when that admin becomes a customer, its token still standing
        await _make_customer(stack.database_url, admin.sid)
        demoted_at = time.monotonic()
        messages = await socket.messages_while_calling(client, "1", until="error", within=30)
        ended_in = time.monotonic() - demoted_at
        after = await socket.messages_until_quiet("1", quiet_s=1, within=10)

    # then the stream ends within the re-check interval as a revoked one does, with the
    # protocol's error message (the refusal a new subscription would get) and nothing after it,
    # not a `next` carrying the error and a `complete`
    assert _error_code(messages[-1]) == "FORBIDDEN"
    assert ended_in < RECHECK_S + RECHECK_SLACK_S
    assert [m["type"] for m in messages[:-1]] == ["next"] * (len(messages) - 1)
    assert after == []
