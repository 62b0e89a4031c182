"""Limits on what one GraphQL operation may ask for: depth, aliases, tokens, cost, introspection,
and account mutations.

    schema = build_schema(GraphQLLimits(max_depth=10, max_cost=5000, introspection=False))

Tokens are bounded by the parser itself (graphql-core stops at `max_tokens`), so a huge
document is never built. Everything else is measured by `OperationLimits` between parsing and
validation, in time linear in the document (see gateway.graphql.analysis), and an operation over
a limit is refused before validation or execution with `extensions.code`
GRAPHQL_VALIDATION_FAILED and `extensions.limit` naming the limit. Strawberry's own depth and
alias limiters are not used: they re-walk a fragment at every spread, so a 1 kB document of
fragments spreading each other twice keeps them busy for minutes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, OperationDefinitionNode, parse
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter, SchemaExtension
from strawberry.schema.schema import validate_document

from gateway.graphql.analysis import Measure, first_variables, measure_operation
from gateway.graphql.doccache import TextLRU
from gateway.graphql.pagination import DEFAULT_PAGE, MAX_PAGE

# GraphiQL's introspection query nests list fields three deep (types → fields → args); any
# deeper is a query that multiplies the schema by itself.
MAX_INTROSPECTION_LISTS = 3

# Parsed and validated documents, by text: GraphQL parsing and validation are most of the cost
# of a small query. Bounded, so distinct texts sent by an attacker only evict each other: the
# documents by text in entries and characters (doccache), the results per document in entries.
DOCUMENT_CACHE_SIZE = 1000
DOCUMENT_CACHE_TEXTS = 4096
DOCUMENT_CACHE_CHARS = 512 * 1024
_validate = functools.lru_cache(maxsize=DOCUMENT_CACHE_SIZE)(validate_document)
_first_variables = functools.lru_cache(maxsize=DOCUMENT_CACHE_SIZE)(first_variables)
_parsed: TextLRU[tuple[str, tuple[tuple[str, Any], ...]], DocumentNode] = TextLRU(
    max_entries=DOCUMENT_CACHE_TEXTS, max_chars=DOCUMENT_CACHE_CHARS
)


def _parse(query: str, **options: Any) -> DocumentNode:
    key = (query, tuple(sorted(options.items())))
    document = _parsed.get(key)
    if document is None:
        document = parse(query, **options)
        _parsed.put(key, document, size=len(query))
    return document


@functools.lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def _measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    first_inputs: tuple[tuple[str, int | str | None], ...],
) -> Measure:
    return measure_operation(
        schema,
        document,
        operation_name=operation_name,
        variables=dict(first_inputs),
        default_first=DEFAULT_PAGE,
        max_first=MAX_PAGE,
    )


# Stands for every sent value of a `first` variable that is neither an Int nor null: none of
# them coerces to an Int (nor does this string), so all measure alike, and the cache key
# holds no client-chosen text or structure.
_NOT_AN_INT = "not an Int"


def _first_input(value: Any) -> int | str | None:
    """A `first` variable's sent value as the measure's cache key holds it."""
    if value is None or type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)  # Int coerces 100.0 to 100, so the two measure alike
    return _NOT_AN_INT


class CachedParse(SchemaExtension):
    """Parses each distinct document text once (Strawberry's ParserCache, minus its flaw of
    raising syntax errors out of the hook, where they lose their GRAPHQL_PARSE_FAILED code)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query:
            # A syntax error is not cached: Strawberry parses again and reports it itself.
            with contextlib.suppress(GraphQLError):
                context.graphql_document = _parse(context.query, **context.parse_options)
        yield


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


@dataclass(frozen=True, slots=True)
class Prepared:
    """A document that parsed and validated once (validation does not depend on variables or
    on which of its operations runs; the limits may, through `first_variables`)."""

    document: DocumentNode
    limits: GraphQLLimits
    # One operation and no `first` variable: within the limits once means always.
    fixed_measure: bool

    @classmethod
    def of(cls, document: DocumentNode, limits: GraphQLLimits) -> Prepared:
        operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
        fixed = operations == 1 and not _first_variables(document)
        return cls(document, limits, fixed)

    def exceeded(
        self, schema: GraphQLSchema, operation_name: str | None, variables: dict[str, Any] | None
    ) -> GraphQLError | None:
        """The refusal of this request, if its operation or variables take it over a limit."""
        if self.fixed_measure:
            return None
        return exceeded(self.limits, schema, self.document, operation_name, variables)


_prepared: TextLRU[tuple[GraphQLSchema, str], Prepared] = TextLRU(
    max_entries=DOCUMENT_CACHE_TEXTS, max_chars=DOCUMENT_CACHE_CHARS
)


def prepared(schema: GraphQLSchema, query: str) -> Prepared | None:
    """The document of `query` if it passed validation before and is still cached."""
    return _prepared.get((schema, query))


def exceeded(
    limits: GraphQLLimits,
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> GraphQLError | None:
    """The refusal of the first limit the operation is over, with these variables, if any."""
    # Only the variables given as `first` change the measure, so only they are in the key:
    # product(id: $id) over 1,000 ids is one entry, not 1,000. Sent or not is in the key too:
    # a variable not sent takes its default (in the document), one sent as null does not.
    variables = variables or {}
    first_inputs = tuple(
        sorted(
            (name, _first_input(variables[name]))
            for name in _first_variables(document)
            if name in variables
        )
    )
    try:
        measure = _measure(schema, document, operation_name, first_inputs)
    except RecursionError:
        return _refusal("depth", "the operation is nested too deeply", limits.max_depth)
    return _first_exceeded(limits, measure)


class OperationLimits(SchemaExtension):
    """Refuses an operation whose depth, aliases, account mutations, cost or introspection
    nesting is over a limit.

    A document that passes is remembered (`prepared`), so the gateway's fast path can run it
    again without Strawberry's per-request machinery.
    """

    def __init__(self, limits: GraphQLLimits) -> None:
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            schema = context.schema._schema
            error = exceeded(
                self.limits, schema, document, context.operation_name, context.variables
            )
            # Strawberry skips its own validation when errors (even none) are already there:
            # within the limits, the validation of a document seen before comes from the cache.
            errors = (
                [error]
                if error is not None
                else _validate(schema, document, tuple(context.validation_rules))
            )
            context.pre_execution_errors = errors
            if not errors and context.query:
                entry = Prepared.of(document, self.limits)
                _prepared.put((schema, context.query), entry, size=len(context.query))
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
        extensions={"code": "GRAPHQL_VALIDATION_FAILED", "limit": limit, "max": maximum},
    )


def limit_extensions(limits: GraphQLLimits) -> list[Callable[[], SchemaExtension]]:
    """The schema extensions enforcing `limits`, as factories (one instance per operation)."""
    extensions: list[Callable[[], SchemaExtension]] = [
        functools.partial(MaxTokensLimiter, max_token_count=limits.max_tokens),
        CachedParse,
        functools.partial(OperationLimits, limits),
    ]
    if not limits.introspection:
        extensions.append(DisableIntrospection)
    return extensions
