"""Field permissions, answered from the gateway's early token check (db_service checks again)."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from gateway.errors import ApiCode
from gateway.graphql.context import Info


class IsAuthenticated(BasePermission):
    message = "a valid bearer token is required"
    error_extensions = {"code": ApiCode.UNAUTHENTICATED}  # noqa: RUF012 - Strawberry's own attribute

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.scope.identity is not None


class IsAdmin(BasePermission):
    """Use after IsAuthenticated, so a missing token is UNAUTHENTICATED rather than FORBIDDEN.
    A caller whose claim is not admin is refused once db_service has confirmed the token
    (RequestScope.require_admin): a revoked one is UNAUTHENTICATED."""

    message = "this operation is for administrators"
    error_extensions = {"code": ApiCode.FORBIDDEN}  # noqa: RUF012 - Strawberry's own attribute

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        scope = info.context.scope
        if scope.identity is None:
            return False
        await scope.require_admin()
        return True
