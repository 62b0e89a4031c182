"""UserRepository on PostgreSQL: the unique indexes become Taken, naming the field, and a new
password or deactivation bumps the token version."""

from __future__ import annotations

import asyncio
import threading

import asyncpg
import pytest
from argon2 import PasswordHasher

from db_service.errors import DomainError, ErrorCode
from db_service.models import Role, User
from db_service.passwords import Passwords
from db_service.ports import Taken
from db_service.repositories.users import UserRepository
from db_service.services.users import LoginPolicy, UserService
from protos.tokens import TokenCodec
from tests.integration.conftest import wait_for


async def _insert(users: UserRepository, sid: str, *, username: str = "", email: str = "") -> None:
    await users.insert(
        sid=sid,
        username=username or f"u{sid}",
        email=email or f"{sid}@example.com",
        password_hash="h",
        role=Role.CUSTOMER,
    )


@pytest.mark.parametrize(
    ("clash", "field"),
    [("sid", "sid"), ("username", "username"), ("email", "email")],
)
async def test_a_duplicate_insert_is_taken_naming_the_field(
    pool: asyncpg.Pool, unique: str, clash: str, field: str
) -> None:
    # given a user
    users = UserRepository(pool)
    await _insert(users, unique)
    other = str(int(unique) + 5_000_000)

    # when another one is inserted with one of its unique values (email in another case)
    values = {
        "sid": other,
        "username": f"u{other}",
        "email": f"{other}@example.com",
        clash: {"sid": unique, "username": f"u{unique}", "email": f"{unique}@EXAMPLE.com"}[clash],
    }
    with pytest.raises(Taken) as taken:
        await users.insert(**values, password_hash="h", role=Role.CUSTOMER)

    # then the repository says which field, with no asyncpg error escaping
    assert taken.value.field == field


async def test_an_update_to_a_taken_username_is_taken(pool: asyncpg.Pool, unique: str) -> None:
    users = UserRepository(pool)
    other = str(int(unique) + 5_000_000)
    await _insert(users, unique)
    await _insert(users, other)

    with pytest.raises(Taken) as taken:
        await users.update(other, username=f"u{unique}")

    assert taken.value.field == "username"


async def test_a_new_password_bumps_the_token_version(pool: asyncpg.Pool, unique: str) -> None:
    users = UserRepository(pool)
    await _insert(users, unique)
    before = await users.get_by_sid(unique)

    after = await users.update(unique, password_hash="new")

    assert before is not None
    assert after is not None
    assert after.token_version == before.token_version + 1


async def test_a_username_change_keeps_the_token_version(pool: asyncpg.Pool, unique: str) -> None:
    users = UserRepository(pool)
    await _insert(users, unique)

    after = await users.update(unique, username=f"renamed{unique}")

    assert after is not None
    assert after.token_version == 1


async def test_login_attempts_are_counted_per_account_and_client(
    pool: asyncpg.Pool, unique: str
) -> None:
    users = UserRepository(pool)

    counts = [
        (await users.count_login_attempt(unique, "192.0.2.1", window_s=60))[0] for _ in range(3)
    ]
    elsewhere, _ = await users.count_login_attempt(unique, "192.0.2.2", window_s=60)

    assert (counts, elsewhere) == ([1, 2, 3], 1)


async def test_two_replicas_starting_at_once_both_ensure_the_configured_admin(
    pool: asyncpg.Pool, unique: str
) -> None:
    # given two db_service processes (two workers, or replicas) starting on a database that
    # has no configured admin yet
    codec = TokenCodec("a-test-secret-0123456789-0123456789-0123", "merch-store", 600)

    def replica() -> UserService:
        return UserService(
            UserRepository(pool), Passwords(1), codec, LoginPolicy(max_attempts=5, window_s=60)
        )

    # when both run ensure_admin with the same ADMIN_* settings at the same time
    results = await asyncio.gather(
        *(
            replica().ensure_admin(
                sid=f"A{unique[1:]}", username=f"admin_{unique}", password="admin-password-123"
            )
            for _ in range(2)
        ),
        return_exceptions=True,
    )

    # then both start with the one admin (a refusal would stop that process: StartupRefused)
    assert [type(r).__name__ for r in results] == ["User", "User"], results
    assert {r.id for r in results if isinstance(r, User)} == {results[0].id}  # type: ignore[union-attr]


class _HeldHasher(PasswordHasher):
    """Argon2 that holds the hashing of `held` until `release` is set: a hash slot that is
    slow to come (HASH_CONCURRENCY busy with logins), made deterministic."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self.held = held
        self.entered = threading.Event()
        self.release = threading.Event()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        if password == self.held:
            self.entered.set()
            self.release.wait(timeout=30)
        return super().hash(password, salt=salt)


async def _admin(users: UserRepository, sid: str) -> User:
    return await users.insert(
        sid=sid, username=f"a{sid}", email=f"a{sid}@example.com", password_hash="h",
        role=Role.ADMIN,
    )  # fmt: skip


@pytest.mark.parametrize("revocation", ["deactivation", "password change"])
async def test_a_password_reset_by_an_admin_revoked_while_it_hashed_changes_nothing(
    pool: asyncpg.Pool, unique: str, revocation: str
) -> None:
    # given an admin resetting a customer's password, the new hash still being computed
    users = UserRepository(pool)
    hasher = _HeldHasher("a-new-password-123")
    service = UserService(
        users,
        Passwords(2, hasher=hasher),
        TokenCodec("a-test-secret-0123456789-0123456789-0123", "merch-store", 600),
        LoginPolicy(max_attempts=5, window_s=60),
    )
    acting, other = await _admin(users, f"{unique}1"), await _admin(users, f"{unique}2")
    await _insert(users, unique)
    victim = await users.get_by_sid(unique)
    assert victim is not None
    resetting = asyncio.create_task(
        service.update_user(
            acting, unique, username=None, email=None, password="a-new-password-123",
            current_password=None, client="192.0.2.1",
        )
    )  # fmt: skip
    try:
        await wait_for(hasher.entered.is_set, within=10, message="the reset never hashed")

        # when the acting admin's token is revoked meanwhile, and that is answered
        if revocation == "deactivation":
            await service.deactivate_user(other, acting.sid)
        else:
            await users.update(acting.sid, password_hash="another-hash")
    finally:
        hasher.release.set()
    outcome = (await asyncio.gather(resetting, return_exceptions=True))[0]

    # then the reset is refused like any call with a revoked token, and changes nothing
    assert isinstance(outcome, DomainError), outcome
    assert outcome.code is ErrorCode.UNAUTHENTICATED
    after = await users.get_by_sid(unique)
    assert after is not None
    assert after.token_version == victim.token_version
    login = await users.get_login(f"u{unique}")
    assert login is not None
    assert login[1] == "h"
