"""Account rules, against in-memory stores: ownership, login throttling, token versions."""

from __future__ import annotations

import asyncio

import pytest

from db_service.errors import DomainError, ErrorCode
from db_service.services.orders import OrderPageRequest
from db_service.services.users import LoginPolicy, UserService
from tests.unit.fakes import FakePasswords
from tests.unit.services.conftest import LOGIN_MAX_ATTEMPTS, World

CLIENT = "192.0.2.1"


async def test_a_login_gives_a_token_that_authenticates(world: World) -> None:
    user = await world.make_user("11111111")

    result = await world.user_service.login(
        username=user.username, password="password-of-11111111", client=CLIENT
    )

    assert await world.auth.caller(f"Bearer {result.token}") == user


async def test_a_wrong_password_is_unauthenticated(world: World) -> None:
    user = await world.make_user("11111111")

    with pytest.raises(DomainError) as refused:
        await world.user_service.login(username=user.username, password="nope", client=CLIENT)

    assert refused.value.code is ErrorCode.UNAUTHENTICATED


async def test_logins_beyond_the_limit_are_refused_even_with_the_right_password(
    world: World,
) -> None:
    user = await world.make_user("11111111")
    for _ in range(LOGIN_MAX_ATTEMPTS):
        with pytest.raises(DomainError):
            await world.user_service.login(username=user.username, password="nope", client=CLIENT)

    with pytest.raises(DomainError) as refused:
        await world.user_service.login(
            username=user.username, password="password-of-11111111", client=CLIENT
        )

    assert refused.value.code is ErrorCode.RATE_LIMITED
    assert refused.value.retry_after_s is not None


async def test_the_right_password_gets_in_once_the_window_ends(world: World) -> None:
    user = await world.make_user("11111111")
    for _ in range(LOGIN_MAX_ATTEMPTS + 1):
        with pytest.raises(DomainError):
            await world.user_service.login(username=user.username, password="nope", client=CLIENT)

    world.users.windows.reset()
    result = await world.user_service.login(
        username=user.username, password="password-of-11111111", client=CLIENT
    )

    assert result.user == user


async def test_a_new_password_revokes_the_tokens_issued_before(world: World) -> None:
    user = await world.make_user("11111111")
    old = await world.user_service.login(
        username=user.username, password="password-of-11111111", client=CLIENT
    )

    await world.user_service.update_user(
        user,
        user.sid,
        username=None,
        email=None,
        password="a-brand-new-password",
        current_password="password-of-11111111",
        client=CLIENT,
    )

    with pytest.raises(DomainError) as refused:
        await world.auth.caller(f"Bearer {old.token}")
    assert refused.value.code is ErrorCode.UNAUTHENTICATED


async def test_deactivation_revokes_the_users_tokens(world: World) -> None:
    user = await world.make_user("11111111")
    token = (
        await world.user_service.login(
            username=user.username, password="password-of-11111111", client=CLIENT
        )
    ).token

    await world.user_service.deactivate_user(user, user.sid)

    with pytest.raises(DomainError):
        await world.auth.caller(f"Bearer {token}")


async def test_changing_ones_password_needs_the_current_one(world: World) -> None:
    user = await world.make_user("11111111")

    with pytest.raises(DomainError) as refused:
        await world.user_service.update_user(
            user,
            user.sid,
            username=None,
            email=None,
            password="a-brand-new-password",
            current_password="wrong-current-password",
            client=CLIENT,
        )

    assert refused.value.code is ErrorCode.FORBIDDEN


async def test_a_customer_may_not_read_or_change_another_account(world: World) -> None:
    alice, bob = await world.make_user("11111111"), await world.make_user("22222222")

    with pytest.raises(DomainError) as read:
        await world.user_service.get_user(alice, bob.sid)
    with pytest.raises(DomainError) as deactivate:
        await world.user_service.deactivate_user(alice, bob.sid)

    assert (read.value.code, deactivate.value.code) == (ErrorCode.FORBIDDEN, ErrorCode.FORBIDDEN)
    assert world.users.rows[bob.sid][0].is_active


async def test_a_taken_username_is_already_exists(world: World) -> None:
    alice, bob = await world.make_user("11111111"), await world.make_user("22222222")

    with pytest.raises(DomainError) as refused:
        await world.user_service.update_user(
            bob,
            bob.sid,
            username=alice.username,
            email=None,
            password=None,
            current_password=None,
            client=CLIENT,
        )

    assert refused.value.code is ErrorCode.ALREADY_EXISTS
    assert refused.value.message == "username is already taken"


async def test_a_revoked_token_lists_no_orders_on_the_one_statement_path(world: World) -> None:
    # given a token, then a password change that revokes it
    user = await world.make_user("11111111")
    token = (
        await world.user_service.login(
            username=user.username, password="password-of-11111111", client=CLIENT
        )
    ).token
    await world.users.update(user.sid, password_hash="hashed:another-password")

    # when its own orders are listed by the token's claims alone
    with pytest.raises(DomainError) as refused:
        await world.order_service.list_orders_as(
            world.codec.verify(token), OrderPageRequest(page_size=10)
        )

    # then the old token version is refused
    assert refused.value.code is ErrorCode.UNAUTHENTICATED


class _CountingPasswords(FakePasswords):
    """Hashes like the fake, counting them and giving the event loop a turn as Argon2's
    thread would, so that concurrent registrations really overlap."""

    def __init__(self) -> None:
        self.hashed = 0

    async def hash(self, password: str) -> str:
        self.hashed += 1
        await asyncio.sleep(0)
        return await super().hash(password)


async def test_concurrent_registrations_of_one_name_hash_one_password(world: World) -> None:
    # given a db_service whose Argon2 slots are scarce (two per core)
    passwords = _CountingPasswords()
    service = UserService(world.users, passwords, world.codec, LoginPolicy(5, 60))

    # when 20 registrations of one username (and email) arrive at once, a double-click times ten
    outcomes = await asyncio.gather(
        *(
            service.create_user(
                sid=f"3000{n:04d}",
                username="carol",
                email="carol@example.com",
                password="pw-12345678",
            )
            for n in range(20)
        ),
        return_exceptions=True,
    )

    # then one account exists, the others are told the name is taken at once: only one of them
    # waited for a hash (they queued for Argon2 slots, and under load ran out of time: 504s)
    created = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(created) == 1, outcomes
    assert len(refused) == 19, outcomes
    assert {(e.code, e.message) for e in refused} == {
        (ErrorCode.ALREADY_EXISTS, "username is already taken")
    }
    assert passwords.hashed == 1
