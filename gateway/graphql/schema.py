"""The GraphQL schema: every domain's queries and mutations merged into the root types."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import QueryDepthLimiter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gateway.graphql.catalog.mutations import CatalogMutations
from gateway.graphql.catalog.queries import CatalogQueries
from gateway.graphql.errors import ErrorCodes
from gateway.graphql.logs.subscriptions import LogSubscriptions
from gateway.graphql.orders.mutations import OrderMutations
from gateway.graphql.orders.queries import OrderQueries
from gateway.graphql.recording import RecordResolverCalls
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
    """Strawberry's schema, minus its habit of logging every expected error with a traceback.

    Unexpected errors are logged once, by ErrorCodes, where they are masked.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema() -> strawberry.Schema:
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[QueryDepthLimiter(max_depth=10), RecordResolverCalls, ErrorCodes],  # type: ignore[list-item]
    )
