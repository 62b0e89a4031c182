"""Account use cases: register, log in, read, list, update, deactivate, bootstrap the admin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from db_service import validation
from db_service.errors import DomainError, ErrorCode
from db_service.models import Page, Role, User
from db_service.ports import Demoted, LastAdmin, PasswordHasher, Revoked, Taken, UserStore
from db_service.services.auth import not_yours, refused, require_admin, require_self_or_admin
from protos.page_tokens import encode_token
from protos.tokens import TokenCodec

log = logging.getLogger(__name__)

_BAD_LOGIN = "invalid username or password"


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    expires_in: int
    user: User


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Login attempts per (account, client) and window; logins and registrations (each an
    Argon2 hash) per client and window."""

    max_attempts: int
    window_s: int
    client_max_attempts: int = 20
    client_window_s: int = 60


class UserService:
    """Every rule about accounts."""

    def __init__(
        self,
        users: UserStore,
        passwords: PasswordHasher,
        codec: TokenCodec,
        login_policy: LoginPolicy,
    ) -> None:
        self._users = users
        self._passwords = passwords
        self._codec = codec
        self._policy = login_policy
        # The sids, usernames and emails being registered in this process now, each with the
        # registration's end: one alike waits for it instead of hashing too (see create_user).
        self._registering: dict[str, asyncio.Future[None]] = {}

    async def register(
        self, *, sid: str, username: str, email: str, password: str, client: str
    ) -> User:
        """A customer registering themselves, counted in their client's window."""
        await self._count_client_attempt(client)
        return await self.create_user(sid=sid, username=username, email=email, password=password)

    async def create_user(
        self, *, sid: str, username: str, email: str, password: str, role: Role = Role.CUSTOMER
    ) -> User:
        sid = validation.sid(sid)
        username = validation.username(username)
        email = validation.email(email)
        password = validation.password(password)
        # A registration of the same sid, username or email already under way here is waited
        # for, then the names are checked: 20 clicks of "register" cost one Argon2 hash, not
        # 20 queued for two slots (the last ones ran out of time). Across replicas the unique
        # indexes decide.
        keys = (f"sid:{sid}", f"username:{username.lower()}", f"email:{email.lower()}")
        while under_way := {self._registering[k] for k in keys if k in self._registering}:
            await asyncio.wait(under_way)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._registering[key] = done
        try:
            # Checked before hashing so a duplicate costs no Argon2 work.
            await self._refuse_taken(sid=sid, username=username, email=email)
            password_hash = await self._passwords.hash(password)
            return await self._users.insert(
                sid=sid, username=username, email=email, password_hash=password_hash, role=role
            )
        except Taken as exc:
            raise _already_exists(exc) from None
        finally:
            for key in keys:
                if self._registering.get(key) is done:
                    del self._registering[key]
            done.set_result(None)

    async def login(self, *, username: str, password: str, client: str) -> LoginResult:
        if not username or len(username) > 50 or "\x00" in username:
            raise DomainError(ErrorCode.UNAUTHENTICATED, _BAD_LOGIN)
        if len(password) > validation.PASSWORD_MAX:
            raise validation.invalid("password is too long")
        await self._count_client_attempt(client)
        key = _attempts_key(username)
        await self._count_account_attempt(key, client)
        found = await self._users.get_login(username)
        # Unknown users are verified against a dummy hash: same answer, about the same time.
        ok = await self._passwords.verify(found[1] if found else None, password)
        if not ok or found is None or not found[0].is_active:
            raise DomainError(ErrorCode.UNAUTHENTICATED, _BAD_LOGIN)
        user = found[0]
        await self._users.clear_login_attempts(key, client)
        token = self._codec.issue(sid=user.sid, role=user.role.value, version=user.token_version)
        return LoginResult(token=token, expires_in=self._codec.ttl_s, user=user)

    async def get_user(self, caller: User, sid: str) -> User:
        require_self_or_admin(caller, sid)
        user = await self._users.get_by_sid(sid) if validation.is_sid(sid) else None
        if user is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"user {sid!r} not found")
        return user

    async def get_users_by_ids(self, caller: User, ids: list[int]) -> list[User]:
        """Users by id, for batch loaders; a customer only ever gets themselves back."""
        if len(ids) > validation.PAGE_SIZE_MAX:
            raise validation.invalid(f"at most {validation.PAGE_SIZE_MAX} ids per call")
        if not caller.is_admin:
            return [caller] if caller.id in ids else []
        return await self._users.get_by_ids(ids)

    async def list_users(
        self, caller: User, *, page_size: int, page_token: str, offset: int
    ) -> Page[User]:
        require_admin(caller)
        size = validation.page_size(page_size)
        after = validation.page_token("user", page_token)
        rows = await self._users.list_page(
            after_id=after, offset=validation.offset(offset), limit=size + 1
        )
        next_token = encode_token("user", rows[size - 1].id) if len(rows) > size else ""
        return Page(items=rows[:size], next_page_token=next_token)

    async def update_user(
        self,
        caller: User,
        sid: str,
        *,
        username: str | None,
        email: str | None,
        password: str | None,
        current_password: str | None,
        client: str,
    ) -> User:
        """Change an account; callers changing their own password or email prove they know
        the current password (an admin changing another account does not)."""
        require_self_or_admin(caller, sid)
        if not validation.is_sid(sid):
            raise DomainError(ErrorCode.NOT_FOUND, f"user {sid!r} not found")
        if username is not None:
            username = await self._kept_or_valid(sid, "username", username, validation.username)
        if email is not None:
            email = await self._kept_or_valid(sid, "email", email, validation.email)
        password = validation.password(password) if password is not None else None
        if caller.sid == sid and (password is not None or email is not None):
            await self._check_current_password(caller, current_password, client)
        # The hash may wait for a slot: the caller's token is checked again where the change
        # commits, so a revocation answered meanwhile is not overtaken by it.
        password_hash = await self._passwords.hash(password) if password is not None else None
        try:
            user = await self._users.update(
                sid, username=username, email=email, password_hash=password_hash, actor=caller
            )
        except Taken as exc:
            raise _already_exists(exc) from None
        except Revoked:
            raise refused() from None
        except Demoted:  # an admin no more since the call was authenticated; its token holds
            raise not_yours() from None
        if user is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"user {sid!r} not found")
        return user

    async def _kept_or_valid(
        self, sid: str, field: str, value: str, check: Callable[[str], str]
    ) -> str:
        """`value` for the account's `field` ("username", "email"): a new one must pass
        `check`; the account's own value from before the rule (usernames and emails became
        ASCII only) may be sent back unchanged (a profile form that re-sends every field, an
        ADMIN_USERNAME set back then)."""
        try:
            return check(value)
        except DomainError:
            current = await self._users.get_by_sid(sid)
            if current is not None and getattr(current, field) == value:
                return value
            raise

    async def deactivate_user(self, caller: User, sid: str) -> User:
        require_self_or_admin(caller, sid)
        try:
            user = (
                await self._users.update(sid, deactivate=True, actor=caller)
                if validation.is_sid(sid)
                else None
            )
        except Revoked:
            raise refused() from None
        except Demoted:  # an admin no more since the call was authenticated; its token holds
            raise not_yours() from None
        except LastAdmin:
            # Nobody could make another admin through the API afterwards.
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                "the last active admin cannot be deactivated: make another admin first",
            ) from None
        if user is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"user {sid!r} not found")
        return user

    async def ensure_admin(
        self, *, sid: str, username: str, password: str, promote: bool = False
    ) -> User:
        """Create the configured admin, or bring an existing one's password and role up to date.

        Never takes over another account: a username that belongs to another account, or a sid
        that belongs to a customer (unless `promote` says so explicitly), is refused. A refusal's
        `field` says which of the three inputs ("sid", "username", "password") it is about.
        """
        try:
            return await self._ensure_admin(sid, username, password, promote)
        except DomainError as exc:
            # Another replica or worker starting at the same time created it between our look
            # and our insert: bring that account up to date, once.
            raced = exc.code is ErrorCode.ALREADY_EXISTS
            if not raced or await self._users.get_by_sid(sid) is None:
                raise
            return await self._ensure_admin(sid, username, password, promote)

    async def _ensure_admin(self, sid: str, username: str, password: str, promote: bool) -> User:
        sid = validation.sid(sid)
        username = await self._kept_or_valid(sid, "username", username, validation.username)
        password = validation.password(password)
        named = await self._users.get_login(username)
        if named is not None and named[0].sid != sid:
            raise DomainError(
                ErrorCode.ALREADY_EXISTS,
                f"username {username!r} belongs to another account (sid {named[0].sid!r})",
                field="username",
            )
        existing = await self._users.get_by_sid(sid)
        if existing is None:
            email = f"{username}@admin.invalid"
            try:
                user = await self.create_user(
                    sid=sid, username=username, email=email, password=password, role=Role.ADMIN
                )
            except DomainError as exc:
                if exc.field != "email":
                    raise
                # Nobody typed this email: say where it comes from, the username to change.
                raise DomainError(
                    exc.code,
                    f"the admin's email {email!r}, made from its username, belongs to another"
                    " account",
                    field="username",
                ) from None
            log.info("created admin %s", sid)
            return user
        if not existing.is_admin and not promote:
            raise DomainError(
                ErrorCode.FAILED_PRECONDITION,
                f"sid {sid!r} belongs to a customer account, which is never promoted implicitly",
                field="sid",
            )
        current_hash = named[1] if named is not None else None
        if (
            existing.is_admin
            and existing.is_active
            and existing.username == username
            and await self._passwords.verify(current_hash, password)
        ):
            # Already as configured: leave it alone, so a restart does not revoke its tokens.
            return existing
        password_hash = await self._passwords.hash(password)
        try:
            updated = await self._users.update(
                sid,
                username=username,
                password_hash=password_hash,
                role=Role.ADMIN,
                activate=True,
            )
        except Taken as exc:
            raise _already_exists(exc) from None
        assert updated is not None
        log.info("updated admin %s", sid)
        return updated

    async def _check_current_password(
        self, caller: User, current_password: str | None, client: str
    ) -> None:
        """A stolen token alone must not take an account over: the current password is asked
        for, and guessing it counts like a login: toward the client's limit (each guess is a
        hash), the account's login throttle, and a throttle under the account's sid, which a
        rename (no password needed) cannot reset."""
        if not current_password:
            raise validation.invalid(
                "the current password is required to change the password or email"
            )
        if len(current_password) > validation.PASSWORD_MAX:
            raise validation.invalid("current password is too long")
        await self._count_client_attempt(client)
        keys = (_attempts_key(caller.username), _guesses_key(caller.sid))
        for key in keys:
            await self._count_account_attempt(key, client)
        found = await self._users.get_login(caller.username)
        if not await self._passwords.verify(found[1] if found else None, current_password):
            raise DomainError(ErrorCode.FORBIDDEN, "current password is wrong")
        for key in keys:
            await self._users.clear_login_attempts(key, client)

    async def _count_account_attempt(self, username_key: str, client: str) -> None:
        attempts, retry_after = await self._users.count_login_attempt(
            username_key, client, window_s=self._policy.window_s
        )
        if attempts > self._policy.max_attempts:
            raise DomainError(
                ErrorCode.RATE_LIMITED,
                f"too many login attempts; retry in {retry_after} s",
                retry_after_s=retry_after,
            )

    async def _count_client_attempt(self, client: str) -> None:
        attempts, retry_after = await self._users.count_client_attempt(
            client, window_s=self._policy.client_window_s
        )
        if attempts > self._policy.client_max_attempts:
            raise DomainError(
                ErrorCode.RATE_LIMITED,
                f"too many logins and registrations from your address; retry in {retry_after} s",
                retry_after_s=retry_after,
            )

    async def _refuse_taken(self, *, sid: str, username: str, email: str) -> None:
        field = await self._users.taken_field(sid=sid, username=username, email=email)
        if field is not None:
            raise DomainError(ErrorCode.ALREADY_EXISTS, f"{field} is already taken", field=field)


def _already_exists(exc: Taken) -> DomainError:
    return DomainError(ErrorCode.ALREADY_EXISTS, f"{exc.field} is already taken", field=exc.field)


def _guesses_key(sid: str) -> str:
    """What guesses of an account's current password are counted under besides its name: its
    sid, which never changes. No username has a colon, so no login shares the key."""
    return f"sid:{sid}"


def _attempts_key(username: str) -> str:
    """What a username's login attempts are counted under: case-insensitive, and within
    login_attempts.username_key's 50 characters, which lower() can exceed for a name that
    is not ASCII ("İ" becomes two characters), as accounts made before usernames were
    ASCII only may have."""
    return username.lower()[:50]
