"""One log record per GraphQL resolver call that matters: root fields and backend-reaching fields.

Plain attribute reads (`Product.name`) are not recorded: they cost nothing and would drown the
stream. The check for them is the first thing `resolve` does, so they stay cheap.

Neither is a subscription's root field: it is resolved once per event it delivers, and a
record per delivered record would feed the `logs` stream its own records without end. The
subscription records itself once, when it ends (gateway.graphql.logs.subscriptions).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, OperationType
from strawberry.extensions import SchemaExtension

from gateway.errors import ApiError
from gateway.graphql.context import Context

# Non-root fields whose resolvers call a backend themselves. Fields that go through a
# DataLoader (Order.product, Order.user) are recorded once per batch by the loader instead.
BACKEND_FIELDS: frozenset[tuple[str, str]] = frozenset({("User", "orders")})


def outcome_of(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, ApiError):
        return exc.code
    if isinstance(exc, GraphQLError):
        code = (exc.extensions or {}).get("code")
        return str(code) if code else "GRAPHQL_ERROR"
    return "INTERNAL_SERVER_ERROR"


def _message(operation: str, kwargs: dict[str, Any]) -> str:
    """A seed-style line for the account operations; never built from a password."""
    if operation == "Mutation.register":
        return f"User '{getattr(kwargs.get('input'), 'username', '')}' is created"
    if operation == "Mutation.login":
        return f"User '{kwargs.get('username', '')}' logged in"
    return ""


class RecordResolverCalls(SchemaExtension):
    """Sends a record per root field and backend field through the gateway's LogShipper.

    schema = strawberry.Schema(query=Query, extensions=[RecordResolverCalls])
    """

    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        # The hot path: every plain attribute read of every row passes here.
        if info.path.prev is not None and info.field_name != "orders":
            return _next(root, info, *args, **kwargs)
        parent = info.parent_type.name
        if info.path.prev is not None and (parent, info.field_name) not in BACKEND_FIELDS:
            return _next(root, info, *args, **kwargs)
        if info.operation.operation is OperationType.SUBSCRIPTION:
            return _next(root, info, *args, **kwargs)
        operation = f"{parent}.{info.field_name}"
        started = time.perf_counter()
        try:
            result = _next(root, info, *args, **kwargs)
        except Exception as exc:
            self._record(info.context, operation, started, exc, kwargs)
            raise
        if isawaitable(result):
            return self._recorded(result, info.context, operation, started, kwargs)
        self._record(info.context, operation, started, None, kwargs)
        return result

    async def _recorded(
        self,
        result: Awaitable[Any],
        context: Context,
        operation: str,
        started: float,
        kwargs: dict[str, Any],
    ) -> Any:
        try:
            value = await result
        except Exception as exc:
            self._record(context, operation, started, exc, kwargs)
            raise
        self._record(context, operation, started, None, kwargs)
        return value

    @staticmethod
    def _record(
        context: Context,
        operation: str,
        started: float,
        exc: BaseException | None,
        kwargs: dict[str, Any],
    ) -> None:
        outcome = outcome_of(exc)
        context.runtime.record(
            kind="graphql",
            operation=operation,
            user=context.scope.user_label,
            outcome=outcome,
            started=started,
            request_id=context.scope.request_id,
            message=_message(operation, kwargs) if outcome == "ok" else "",
        )
