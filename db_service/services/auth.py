"""Who is calling: every RPC but CreateUser and Login checks the bearer token here."""

from __future__ import annotations

from db_service import validation
from db_service.errors import DomainError, ErrorCode
from db_service.models import User
from db_service.ports import UserStore
from protos import tokens

_REFUSED = "a valid bearer token is required"


class Authenticator:
    """Verifies a token and that its user is still active and its version current."""

    def __init__(self, codec: tokens.TokenCodec, users: UserStore) -> None:
        self._codec = codec
        self._users = users

    async def caller(self, authorization: str | None) -> User:
        claims = self.claims(authorization)
        user = await self._users.get_by_sid(claims.sid) if validation.is_sid(claims.sid) else None
        # A deactivated user or a token older than the last password change is revoked.
        if user is None or not user.is_active or user.token_version != claims.version:
            raise refused()
        return user

    def claims(self, authorization: str | None) -> tokens.Claims:
        """The token's claims, checked without the database: signature, expiry, a valid sid.

        The caller is not authenticated until its row confirms them (active, current token
        version): `caller` reads it, and a statement may check it itself (see
        OrderRepository.list_page_as), which saves the round trip.
        """
        token = tokens.bearer_token(authorization)
        if token is None:
            raise refused()
        try:
            claims = self._codec.verify(token)
        except tokens.InvalidToken:
            raise refused() from None
        if not validation.is_sid(claims.sid):
            raise refused()
        return claims


def refused() -> DomainError:
    """The one answer to every failed authentication: nothing says which check failed."""
    return DomainError(ErrorCode.UNAUTHENTICATED, _REFUSED)


def require_self_or_admin(caller: User, sid: str) -> None:
    """Customers act only on their own account; asking about another one is forbidden."""
    if not caller.is_admin and caller.sid != sid:
        raise not_yours()


def not_yours() -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, "you may only act on your own account")


def require_admin(caller: User) -> None:
    if not caller.is_admin:
        raise not_admin()


def not_admin() -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, "this operation is for administrators")
