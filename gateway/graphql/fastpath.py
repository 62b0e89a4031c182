"""The fast path of /graphql: a POSTed query or mutation whose document passed before.

Strawberry's view and `Schema.execute` build an execution context, a runner for every
extension and a middleware manager, and open and close each extension's hooks, on every
request; for product(id) that was about a third of the gateway's CPU (bench/README.md). Once a
document has gone through that whole path without a pre-execution error, OperationLimits
remembers it (`limits.prepared`), and this module runs it again the short way:

- the same parsed, validated document, its limits checked again for this request's `first`
  variables (a request over a limit takes the full path, which refuses it);
- graphql-core's `execute` over the same schema and resolvers, with the same context, and the
  same recording of resolver calls (RecordResolverCalls as graphql-core middleware, one shared
  instance: it keeps no per-request state), wrapped around the resolvers of the fields it
  records only, so the plain fields of a 50-row page are not each called through it;
- the same error codes (gateway.graphql.errors) and the same JSON as Strawberry's view.

Anything else — GET, a document not seen, variables that fail coercion (answered before any
resolver runs), persisted-query registration errors — takes the full path, so every refusal
is still produced in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any

import strawberry
from graphql import (
    ExecutionResult,
    GraphQLFieldResolver,
    GraphQLObjectType,
    GraphQLSchema,
    OperationType,
    SchemaMetaFieldDef,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
    execute,
    get_operation_ast,
)
from graphql.execution.middleware import MiddlewareManager
from strawberry.execution import optimized_is_awaitable
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.base import BaseSchema

from gateway.graphql.context import Context
from gateway.graphql.errors import coded_execution_error
from gateway.graphql.limits import prepared
from gateway.graphql.persisted import PersistedQueries, PersistedQueryError
from gateway.graphql.recording import BACKEND_FIELDS, RecordResolverCalls

_FAST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


class _RecordedFields(MiddlewareManager):
    """Middleware around the resolvers of root fields (the meta fields `__typename`,
    `__schema` and `__type` among them) and BACKEND_FIELDS, and no others."""

    def __init__(self, schema: GraphQLSchema, *middlewares: Any) -> None:
        super().__init__(*middlewares)
        roots = [t for t in (schema.query_type, schema.mutation_type) if t is not None]
        fields = [field for root in roots for field in root.fields.values()]
        fields += [SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef]
        for type_name, field_name in BACKEND_FIELDS:
            owner = schema.get_type(type_name)
            assert isinstance(owner, GraphQLObjectType), type_name
            fields.append(owner.fields[field_name])
        self._recorded = {field.resolve for field in fields if field.resolve is not None}

    def get_field_resolver(self, field_resolver: GraphQLFieldResolver) -> GraphQLFieldResolver:
        if field_resolver in self._recorded:
            return super().get_field_resolver(field_resolver)
        return field_resolver


class FastPath:
    def __init__(self, schema: BaseSchema, persisted: PersistedQueries) -> None:
        if not isinstance(schema, strawberry.Schema):
            raise TypeError("the fast path runs a strawberry.Schema")
        self._schema = schema._schema
        self._persisted = persisted
        self._middleware = _RecordedFields(self._schema, RecordResolverCalls())
        self._executor = execution_context_class_kwargs(schema.execution_context_class)

    def passed(self, query: str) -> bool:
        """Whether `query` has parsed, validated and stayed within the limits (and is still
        remembered), so that it may run here."""
        return prepared(self._schema, query) is not None

    async def run(
        self, payload: dict[str, Any], context: Callable[[], Awaitable[Context]]
    ) -> dict[str, Any] | None:
        """The response body for `payload`, or None when it must take the full path."""
        query = payload.get("query")
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        extensions = payload.get("extensions")
        if not (
            (query is None or type(query) is str)
            and (variables is None or type(variables) is dict)
            and (operation_name is None or type(operation_name) is str)
            and (extensions is None or type(extensions) is dict)
        ):
            return None
        try:
            query = self._persisted.resolve(query, extensions)
        except PersistedQueryError:
            return None
        if not query:
            return None
        entry = prepared(self._schema, query)
        if entry is None:
            return None
        # Passed before, so a registration may be kept now (persisted keeps only such texts).
        self._persisted.keep(query, extensions)
        operation = get_operation_ast(entry.document, operation_name)
        if operation is None or operation.operation not in _FAST_OPERATIONS:
            return None  # ambiguous or unknown operation name, or a subscription
        if entry.exceeded(self._schema, operation_name, variables):
            return None
        result = execute(
            self._schema,
            entry.document,
            root_value=None,
            context_value=await context(),
            variable_values=variables,
            operation_name=operation_name,
            middleware=self._middleware,
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # typed as -> bool
            operation_extensions=extensions,
            **self._executor,
        )
        if isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        errors = result.errors
        if errors and result.data is None and any(e.path is None for e in errors):
            # The variables failed coercion: refused before any resolver ran, so the full
            # path can answer it with its request-error codes.
            return None
        body: dict[str, Any] = {"data": result.data}
        if errors:
            body["errors"] = [coded_execution_error(e).formatted for e in errors]
        return body
