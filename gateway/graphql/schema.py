"""The GraphQL schema: every domain's queries and mutations merged into the root types."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLObjectType, GraphQLSchema
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, get_object_definition

from gateway.graphql.catalog.mutations import CatalogMutations
from gateway.graphql.catalog.queries import CatalogQueries
from gateway.graphql.context import ContextPerOperation
from gateway.graphql.errors import ErrorCodes
from gateway.graphql.limits import GraphQLLimits, bound_validation, limit_extensions
from gateway.graphql.logs.subscriptions import LogSubscriptions
from gateway.graphql.orders.mutations import OrderMutations
from gateway.graphql.orders.queries import OrderQueries
from gateway.graphql.recording import RecordResolverCalls
from gateway.graphql.scalars import DECIMAL
from gateway.graphql.users.mutations import UserMutations
from gateway.graphql.users.queries import UserQueries

WELCOME = "Welcome to the SUSTech Merch Store! Browse products, register, log in and order."


@strawberry.type
class RootQueries:
    @strawberry.field(description="A greeting; needs no token.")
    def welcome(self) -> str:
        return WELCOME


Query = merge_types("Query", (RootQueries, UserQueries, CatalogQueries, OrderQueries))
Mutation = merge_types("Mutation", (UserMutations, CatalogMutations, OrderMutations))
Subscription = merge_types("Subscription", (LogSubscriptions,))


class Schema(strawberry.Schema):
    """Strawberry's schema, minus its habit of logging every expected error with a traceback,
    plus `graphql_schema`: the graphql-core schema the HTTP pipeline validates and executes.

    Unexpected errors are logged once, by ErrorCodes, where they are masked.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Strawberry keeps its graphql-core schema private; its public converter hands out the
        # very same type objects (each type is converted once and cached), so a GraphQLSchema
        # over the same roots has the same types, fields, resolvers and directives.
        self.graphql_schema = GraphQLSchema(
            query=self._graphql_root(self.query),
            mutation=self._graphql_root(self.mutation),
            subscription=self._graphql_root(self.subscription),
        )

    def _graphql_root(self, root: type | None) -> GraphQLObjectType | None:
        if root is None:
            return None
        return self.schema_converter.from_object(get_object_definition(root, strict=True))

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(limits: GraphQLLimits | None = None) -> Schema:
    """The schema with its limits; the defaults suit development and the exported SDL.

    Its extensions serve subscriptions (Strawberry's WebSocket view); HTTP requests take the
    pipeline (gateway.graphql.pipeline), which applies the same limits, records and codes.
    """
    limits = limits or GraphQLLimits()
    bound_validation()
    schema = Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            ContextPerOperation,
            *limit_extensions(limits, lambda: schema.graphql_schema),
            RecordResolverCalls,
            functools.partial(ErrorCodes, field_suggestions=limits.field_suggestions),
        ],
        config=StrawberryConfig(disable_field_suggestions=not limits.field_suggestions),
        scalar_overrides={Decimal: DECIMAL},
    )
    return schema
