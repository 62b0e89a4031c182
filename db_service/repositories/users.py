"""SQL for users, their login attempts and the per-client window of logins and registrations."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import asyncpg

from db_service.models import Role, User
from db_service.outbox import UNBOUNDED, Outbox
from db_service.ports import Demoted, LastAdmin, Revoked, Taken
from db_service.repositories import outbox, windows
from db_service.repositories.transactions import transaction

COLUMNS = (
    "id",
    "sid",
    "username",
    "email",
    "role",
    "is_active",
    "token_version",
    "created_at",
    "updated_at",
)
_COLUMNS = "id, sid, username, email, role, is_active, token_version, created_at, updated_at"
_IS_ACTIVE_ADMIN = "SELECT true FROM users WHERE sid = $1 AND role = 'admin' AND is_active"
# The rows an identity change locks, in id order and in one statement, so that two changes
# (or a change and a placement, which share-locks its callers by id) wait for each other but
# never deadlock: the target ($1), the acting user ($2, NULL for none) and, when the last
# active admin may be deactivated ($3), every active admin. A lock that waited reads the row as
# last committed.
_LOCK_FOR_CHANGE = (
    "SELECT id, sid, role, is_active, token_version FROM users"
    " WHERE sid = $1 OR id = $2 OR ($3 AND role = 'admin' AND is_active) ORDER BY id FOR UPDATE"
)

# The acting user's row, share-locked for a write's transaction while its token still holds;
# its role, for a caller that acted as an admin. Taken before any other row the write locks, as
# a placement takes its callers' rows first: a revocation (which locks the row for update)
# then waits for the write, or the write sees the revocation.
_ACTOR_HOLDS = "SELECT role FROM users WHERE id = $1 AND is_active AND token_version = $2 FOR SHARE"

# Which field a unique-constraint violation is about, by constraint name.
UNIQUE_FIELD = {
    "users_sid_key": "sid",
    "users_username_key": "username",
    "users_email_lower_key": "email",
}


def user_from_row(row: asyncpg.Record | Mapping[str, Any]) -> User:
    return User(
        id=row["id"],
        sid=row["sid"],
        username=row["username"],
        email=row["email"],
        role=Role(row["role"]),
        is_active=row["is_active"],
        token_version=row["token_version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def lock_actor(conn: outbox.Conn, actor: User) -> None:
    """In `conn`'s transaction: raise Revoked unless the actor, authenticated before it, is
    still active with the same token version, and Demoted when it acted as an admin and is
    one no more; otherwise its row stays share-locked until the transaction ends, so no
    revocation commits before the write."""
    role = await conn.fetchval(_ACTOR_HOLDS, actor.id, actor.token_version)
    if role is None:
        raise Revoked
    if actor.is_admin and role != Role.ADMIN.value:
        raise Demoted


def _check_acting(locked: list[asyncpg.Record], actor: User, target_sid: str) -> None:
    """Raise unless the actor, as its locked row has it now, may still make the change it
    was authenticated for: Revoked unless it is active with the token's version, Demoted
    unless it is still an admin when the account is another's."""
    row = next((r for r in locked if r["id"] == actor.id), None)
    if row is None or not row["is_active"] or row["token_version"] != actor.token_version:
        raise Revoked
    if row["sid"] != target_sid and row["role"] != Role.ADMIN.value:
        raise Demoted


@contextmanager
def _unique_as_taken() -> Iterator[None]:
    """A unique index's refusal as the domain's Taken, naming the field."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise Taken(UNIQUE_FIELD.get(exc.constraint_name or "", "value")) from None


class UserRepository:
    """Users and their login attempts in PostgreSQL. Changes to identity (registration,
    password, role, deactivation) write their outbox record in the same transaction."""

    def __init__(self, pool: asyncpg.Pool, outbox: Outbox = UNBOUNDED) -> None:
        self._pool = pool
        self._outbox = outbox

    async def get_by_sid(self, sid: str) -> User | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE sid = $1", sid)
        return user_from_row(row) if row else None

    async def get_by_ids(self, ids: list[int]) -> list[User]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM users WHERE id = ANY($1::int[])", ids
        )
        return [user_from_row(r) for r in rows]

    async def get_login(self, username: str) -> tuple[User, str] | None:
        """The user and password hash for a username, or None."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = $1", username
        )
        return (user_from_row(row), row["password_hash"]) if row else None

    async def taken_field(self, *, sid: str, username: str, email: str) -> str | None:
        """The first of sid, username, email that another user already has, or None."""
        row = await self._pool.fetchrow(
            "SELECT sid = $1 AS sid, username = $2 AS username, lower(email) = lower($3) AS email"
            " FROM users WHERE sid = $1 OR username = $2 OR lower(email) = lower($3) LIMIT 1",
            sid,
            username,
            email,
        )
        if row is None:
            return None
        return next(field for field in ("sid", "username", "email") if row[field])

    async def insert(
        self, *, sid: str, username: str, email: str, password_hash: str, role: Role
    ) -> User:
        with _unique_as_taken():
            return await self._insert(
                sid=sid, username=username, email=email, password_hash=password_hash, role=role
            )

    async def _insert(
        self, *, sid: str, username: str, email: str, password_hash: str, role: Role
    ) -> User:
        async with transaction(self._pool) as conn:
            row = await conn.fetchrow(
                "INSERT INTO users (sid, username, email, password_hash, role)"
                f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
                sid,
                username,
                email,
                password_hash,
                role.value,
            )
            assert row is not None
            message = f"User '{username}' is created ({role.value})"
            await outbox.write(
                conn, [self._outbox.event("User.registered", subject=sid, message=message)]
            )
        return user_from_row(row)

    async def update(
        self,
        sid: str,
        *,
        username: str | None = None,
        email: str | None = None,
        password_hash: str | None = None,
        role: Role | None = None,
        deactivate: bool = False,
        activate: bool = False,
        actor: User | None = None,
    ) -> User | None:
        """Change the given fields; a new password or deactivation revokes every token.
        With an `actor`, only while its token still holds (see UserStore.update)."""
        sets: list[str] = []
        args: list[Any] = [sid]
        for column, value in (
            ("username", username),
            ("email", email),
            ("password_hash", password_hash),
            ("role", role.value if role else None),
        ):
            if value is not None:
                args.append(value)
                sets.append(f"{column} = ${len(args)}")
        if deactivate:
            sets.append("is_active = false")
        if activate:
            sets.append("is_active = true")
        if password_hash is not None or deactivate:
            sets.append("token_version = token_version + 1")
        sets.append("updated_at = now()")
        update = f"UPDATE users SET {', '.join(sets)} WHERE sid = $1 RETURNING {_COLUMNS}"
        with _unique_as_taken():
            return await self._update(
                sid,
                update,
                args,
                identity=password_hash is not None or role is not None or deactivate or activate,
                new_password=password_hash is not None,
                deactivate=deactivate,
                actor=actor,
            )

    async def _update(
        self,
        sid: str,
        update: str,
        args: list[Any],
        *,
        identity: bool,
        new_password: bool,
        deactivate: bool = False,
        actor: User | None = None,
    ) -> User | None:
        """Run `update`; with an identity change, in one transaction with its outbox records.
        Raises LastAdmin rather than deactivate the only active admin, and Revoked (Demoted)
        when the actor's token (admin role) no longer holds once its row is locked."""
        if not identity and actor is None:
            row = await self._pool.fetchrow(update, *args)  # no identity change to record
            return user_from_row(row) if row else None
        async with transaction(self._pool) as conn:
            # The active admins' rows too when the target is one of them, so that two
            # deactivations of the last two admins wait for each other instead of each seeing
            # the other still active.
            admins = bool(deactivate and await conn.fetchval(_IS_ACTIVE_ADMIN, sid))
            locked = await conn.fetch(_LOCK_FOR_CHANGE, sid, actor.id if actor else None, admins)
            if actor is not None:
                _check_acting(locked, actor, sid)
            active_admins = [r["sid"] for r in locked if r["role"] == "admin" and r["is_active"]]
            if admins and active_admins == [sid]:
                raise LastAdmin
            before = next((r for r in locked if r["sid"] == sid), None)
            if before is None:
                return None
            row = await conn.fetchrow(update, *args)
            if row is None:
                return None
            user = user_from_row(row)
            await outbox.write(conn, self._identity_events(user, before, new_password))
        return user

    def _identity_events(
        self, user: User, before: asyncpg.Record, new_password: bool
    ) -> list[str | None]:
        """The outbox records of what an update changed: password, role, active or not."""
        name, events = user.username, []
        if new_password:
            events.append(("User.passwordChanged", f"Password of user '{name}' changed"))
        if user.role.value != before["role"]:
            events.append(
                (
                    "User.roleChanged",
                    f"Role of user '{name}' changed from {before['role']} to {user.role.value}",
                )
            )
        if user.is_active != before["is_active"]:
            operation = "User.activated" if user.is_active else "User.deactivated"
            verb = "activated" if user.is_active else "deactivated"
            events.append((operation, f"User '{name}' {verb}"))
        return [self._outbox.event(op, subject=user.sid, message=text) for op, text in events]

    async def list_page(self, *, after_id: int, offset: int, limit: int) -> list[User]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM users WHERE id > $1 ORDER BY id OFFSET $2 LIMIT $3",
            after_id,
            offset,
            limit,
        )
        return [user_from_row(r) for r in rows]

    async def count_login_attempt(
        self, username_key: str, client_key: str, *, window_s: int
    ) -> tuple[int, int]:
        """Count one attempt at an account from a client in the current window: (attempts so
        far, seconds until it ends).

        Keyed by account and client, so failures from one client never lock the account out
        for the others. Counted before the password is checked, so attempts racing each other
        are all counted.
        """
        return await windows.count_attempt(
            self._pool, "login_attempts", username_key, client_key, window_s=window_s
        )

    async def clear_login_attempts(self, username_key: str, client_key: str) -> None:
        await windows.clear(self._pool, "login_attempts", username_key, client_key)

    async def count_client_attempt(self, client_key: str, *, window_s: int) -> tuple[int, int]:
        """Count one login or registration from a client: (attempts so far, seconds left)."""
        return await windows.count_attempt(
            self._pool, "client_auth_windows", client_key, window_s=window_s
        )
