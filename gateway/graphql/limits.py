"""Limits on what one GraphQL operation may ask for: depth, aliases, tokens, cost, introspection,
and account mutations.

    limits = GraphQLLimits(max_depth=10, max_cost=5000, introspection=False)
    refusal = exceeded(limits, schema, document, operation_name, variables)

Tokens are bounded by the parser itself (graphql-core stops at `max_tokens`), so a huge
document is never built. Everything else is measured between parsing and validation, in time
linear in the document (see gateway.graphql.analysis), and an operation over a limit is
refused before validation or execution with `extensions.code` GRAPHQL_VALIDATION_FAILED and
`extensions.limit` naming the limit. Strawberry's own depth and alias limiters are not used:
they re-walk a fragment at every spread, so a 1 kB document of fragments spreading each other
twice keeps them busy for minutes.

HTTP requests are checked by the pipeline (gateway.graphql.pipeline), which keeps the measures
in its own bounded cache; subscriptions, which Strawberry's WebSocket view runs, by the schema
extensions of `limit_extensions`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema
from graphql.validation.rules import overlapping_fields_can_be_merged
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter, SchemaExtension

from gateway.errors import ApiCode
from gateway.graphql.analysis import Measure, first_variables, measure_operation
from gateway.graphql.pagination import DEFAULT_PAGE, MAX_PAGE

# GraphiQL's introspection query nests list fields three deep (types → fields → args); any
# deeper is a query that multiplies the schema by itself.
MAX_INTROSPECTION_LISTS = 3
# graphql-core compares every pair of same-named fields of a selection (its rule
# OverlappingFieldsCanBeMerged), in time quadratic in their number: at its default budget
# (500,000) an anonymous document of 700 `welcome`s, within every other limit, cost 100 ms of
# CPU to validate. Real documents spend almost none of it (GraphiQL's introspection query 0, a
# page of orders with fragments 19); past this budget validation stops, GRAPHQL_VALIDATION_FAILED.
VALIDATION_BUDGET = 10_000


def bound_validation() -> None:
    """Give graphql-core's comparison of same-named fields VALIDATION_BUDGET (the rule's
    documented module attribute, read when each validation starts; one per process)."""
    overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = VALIDATION_BUDGET


@dataclass(frozen=True, slots=True)
class GraphQLLimits:
    """Per-operation limits; the defaults are the gateway's (README "Security and limits")."""

    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    max_cost: int = 5000
    # login, register, a password change: each costs db_service an Argon2 hash on one of its
    # few hashing threads, so a request carries one, however many aliases it may have.
    max_account_mutations: int = 1
    introspection: bool = True
    field_suggestions: bool = True


MeasureKey = tuple[str | None, tuple[tuple[str, int | str | None], ...]]

# Stands for every sent value of a `first` variable that is neither an Int nor null: none of
# them coerces to an Int (nor does this string), so all measure alike, and the measure's key
# holds no client-chosen text or structure.
_NOT_AN_INT = "not an Int"


def _first_input(value: Any) -> int | str | None:
    """A `first` variable's sent value as the measure's key holds it."""
    if value is None or type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)  # Int coerces 100.0 to 100, so the two measure alike
    return _NOT_AN_INT


def measure_key(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> MeasureKey:
    """What a measure of `document` depends on: the operation, and the variables given as
    `first` (so product(id: $id) over 1,000 ids is one measure, not 1,000). Sent or not is in
    the key too: a variable not sent takes its default (in the document), one sent as null
    does not."""
    variables = variables or {}
    first_inputs = tuple(
        sorted(
            (name, _first_input(variables[name]))
            for name in first_variables(document)
            if name in variables
        )
    )
    return operation_name, first_inputs


def measure(schema: GraphQLSchema, document: DocumentNode, key: MeasureKey) -> Measure | None:
    """The measure of the operation `key` names (None: nested past Python's recursion limit)."""
    operation_name, first_inputs = key
    try:
        return measure_operation(
            schema,
            document,
            operation_name=operation_name,
            variables=dict(first_inputs),
            default_first=DEFAULT_PAGE,
            max_first=MAX_PAGE,
        )
    except RecursionError:
        return None


def refusal(limits: GraphQLLimits, measured: Measure | None) -> GraphQLError | None:
    """The refusal of the first limit `measured` is over, if any."""
    if measured is None:
        return _refusal("depth", "the operation is nested too deeply", limits.max_depth)
    return _first_exceeded(limits, measured)


def exceeded(
    limits: GraphQLLimits,
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> GraphQLError | None:
    """The refusal of the first limit the operation is over, with these variables, if any."""
    key = measure_key(document, operation_name, variables)
    return refusal(limits, measure(schema, document, key))


class OperationLimits(SchemaExtension):
    """Refuses an operation Strawberry runs itself (anything sent over a WebSocket) whose depth,
    aliases, account mutations, cost or introspection nesting is over a limit, before
    Strawberry validates it (HTTP requests are checked by the pipeline)."""

    def __init__(self, limits: GraphQLLimits, schema: Callable[[], GraphQLSchema]) -> None:
        self.limits = limits
        self.schema = schema

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            error = exceeded(
                self.limits, self.schema(), document, context.operation_name, context.variables
            )
            if error is not None:
                # Strawberry does not validate what already has errors: refused as it stands.
                context.pre_execution_errors = [error]
        yield


def _first_exceeded(limits: GraphQLLimits, measure: Measure) -> GraphQLError | None:
    if measure.depth > limits.max_depth:
        message = f"the operation is {measure.depth} levels deep; at most {limits.max_depth}"
        return _refusal("depth", message, limits.max_depth)
    if measure.aliases > limits.max_aliases:
        message = f"the operation uses {measure.aliases} aliases; at most {limits.max_aliases}"
        return _refusal("aliases", message, limits.max_aliases)
    if measure.account_mutations > limits.max_account_mutations:
        message = (
            f"the operation has {measure.account_mutations} account mutations (login, register,"
            f" a password change); at most {limits.max_account_mutations}"
        )
        return _refusal("accountMutations", message, limits.max_account_mutations)
    if measure.introspection_lists > MAX_INTROSPECTION_LISTS:
        message = f"introspection may nest list fields at most {MAX_INTROSPECTION_LISTS} deep"
        return _refusal("introspection", message, MAX_INTROSPECTION_LISTS)
    if measure.cost > limits.max_cost:
        message = (
            f"the operation costs {measure.cost}; at most {limits.max_cost}"
            f" (a list field costs its `first`, at most {MAX_PAGE}, times its selection)"
        )
        return _refusal("cost", message, limits.max_cost)
    return None


def _refusal(limit: str, message: str, maximum: int) -> GraphQLError:
    return GraphQLError(
        message,
        extensions={"code": ApiCode.GRAPHQL_VALIDATION_FAILED, "limit": limit, "max": maximum},
    )


def limit_extensions(
    limits: GraphQLLimits, schema: Callable[[], GraphQLSchema]
) -> list[Callable[[], SchemaExtension]]:
    """The schema extensions enforcing `limits` on subscriptions, as factories (one instance
    per operation); `schema` gives the graphql-core schema once it is built."""
    extensions: list[Callable[[], SchemaExtension]] = [
        functools.partial(MaxTokensLimiter, max_token_count=limits.max_tokens),
        functools.partial(OperationLimits, limits, schema),
    ]
    if not limits.introspection:
        extensions.append(DisableIntrospection)
    return extensions
