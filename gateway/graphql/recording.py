"""One log record per GraphQL resolver call that matters: root fields and backend-reaching fields.

Plain attribute reads (`Product.name`) are not recorded: they cost nothing and would drown the
stream. The check for them is the first thing `resolve` does, so they stay cheap.

Neither is a subscription's root field: it is resolved once per event it delivers, and a
record per delivered record would feed the `logs` stream its own records without end. The
subscription records itself once, when it ends (gateway.graphql.logs.subscriptions).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any

from graphql import (
    GraphQLFieldResolver,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationType,
    SchemaMetaFieldDef,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
)
from graphql.execution import MiddlewareManager
from strawberry.extensions import SchemaExtension

from gateway.graphql.context import Context
from gateway.graphql.errors import outcome_of

# Non-root fields whose resolvers call a backend themselves. Fields that go through a
# DataLoader (Order.product, Order.user) are recorded once per batch by the loader instead.
BACKEND_FIELDS: frozenset[tuple[str, str]] = frozenset({("User", "orders")})


def _message(operation: str, kwargs: dict[str, Any]) -> str:
    """A seed-style line for the account operations; never built from a password."""
    if operation == "Mutation.register":
        # graphql-core passes the arguments as it coerced them: an input object is a dict.
        data = kwargs.get("input")
        username = data.get("username", "") if isinstance(data, dict) else ""
        return f"User '{username}' is created"
    if operation == "Mutation.login":
        return f"User '{kwargs.get('username', '')}' logged in"
    return ""


def record_resolver_call(
    _next: Callable[..., Any],
    root: Any,
    info: GraphQLResolveInfo[Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Call the resolver `_next`, recording the call if it is a root or backend field.

    A graphql-core middleware; the compiled executor calls it around the same resolvers.
    """
    # The hot path: every plain attribute read of every row passes here.
    if info.path.prev is not None and info.field_name != "orders":
        return _next(root, info, *args, **kwargs)
    parent = info.parent_type.name
    if info.path.prev is not None and (parent, info.field_name) not in BACKEND_FIELDS:
        return _next(root, info, *args, **kwargs)
    operation = f"{parent}.{info.field_name}"
    if info.path.prev is None and info.operation.operation is OperationType.MUTATION:
        # Mutation fields run one after another, each seeing what the last one left: rows the
        # request's DataLoaders cached before it (a product's stock) are not what it sees.
        info.context.loaders.reset()
    started = time.perf_counter()
    try:
        result = _next(root, info, *args, **kwargs)
    except Exception as exc:
        _record(info.context, operation, started, exc, kwargs)
        raise
    if isawaitable(result):
        return _recorded(result, info.context, operation, started, kwargs)
    _record(info.context, operation, started, None, kwargs)
    return result


async def _recorded(
    result: Awaitable[Any],
    context: Context,
    operation: str,
    started: float,
    kwargs: dict[str, Any],
) -> Any:
    try:
        value = await result
    except Exception as exc:
        _record(context, operation, started, exc, kwargs)
        raise
    except asyncio.CancelledError as exc:
        # Cancelled because a non-null sibling failed (or the client went away): the call may
        # have reached a backend all the same, so it is recorded too.
        _record(context, operation, started, exc, kwargs)
        raise
    _record(context, operation, started, None, kwargs)
    return value


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


def recorded_resolvers(schema: GraphQLSchema) -> frozenset[GraphQLFieldResolver]:
    """The resolvers of root fields (the meta fields among them) and of BACKEND_FIELDS."""
    roots = [t for t in (schema.query_type, schema.mutation_type) if t is not None]
    fields = [field for root in roots for field in root.fields.values()]
    fields += [SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef]
    for type_name, field_name in BACKEND_FIELDS:
        owner = schema.get_type(type_name)
        assert isinstance(owner, GraphQLObjectType), type_name
        fields.append(owner.fields[field_name])
    return frozenset(field.resolve for field in fields if field.resolve is not None)


class RecordedFields(MiddlewareManager):
    """record_resolver_call as graphql-core middleware around the resolvers of root fields
    (the meta fields `__typename`, `__schema` and `__type` among them) and BACKEND_FIELDS only,
    so the plain fields of a 50-row page are not each called through it."""

    def __init__(self, schema: GraphQLSchema) -> None:
        super().__init__(record_resolver_call)
        self.recorded = recorded_resolvers(schema)

    def get_field_resolver(self, field_resolver: GraphQLFieldResolver) -> GraphQLFieldResolver:
        if field_resolver in self.recorded:
            return super().get_field_resolver(field_resolver)
        return field_resolver


class RecordResolverCalls(SchemaExtension):
    """record_resolver_call for the operations Strawberry runs itself (subscriptions).

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
        # A subscription's root field is resolved once per event it delivers: see above.
        if info.operation.operation is OperationType.SUBSCRIPTION:
            return _next(root, info, *args, **kwargs)
        return record_resolver_call(_next, root, info, *args, **kwargs)
