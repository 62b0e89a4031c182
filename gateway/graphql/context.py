"""The typed per-request GraphQL context, and one per operation on a WebSocket."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types import Info as _Info

from gateway.graphql.loaders import Loaders
from gateway.middleware import new_request_id
from gateway.scope import RequestScope

if TYPE_CHECKING:
    from gateway.runtime import Runtime


@dataclass(slots=True)
class Context:
    """What every resolver gets: the request scope and this request's DataLoaders."""

    scope: RequestScope
    runtime: Runtime
    request: Any
    response: Any
    loaders: Loaders
    # Set by Strawberry from graphql-transport-ws `connection_init` (browsers cannot send
    # headers on a WebSocket, so the token travels here).
    connection_params: dict[str, object] | None = None

    @classmethod
    def create(
        cls, scope: RequestScope, runtime: Runtime, request: Any = None, response: Any = None
    ) -> Context:
        return cls(
            scope=scope,
            runtime=runtime,
            request=request,
            response=response,
            loaders=Loaders(scope, runtime),
        )

    def for_operation(self) -> Context:
        """A context for one operation on this connection: the connection's credentials and
        client address (the key of db_service's per-client limits), but a request id and
        DataLoaders of its own."""
        scope = dataclasses.replace(self.scope, request_id=new_request_id())
        operation = Context.create(scope, self.runtime, self.request, self.response)
        operation.connection_params = self.connection_params
        return operation


class ContextPerOperation(SchemaExtension):
    """Runs each operation of a WebSocket connection in a context of its own.

    Strawberry makes one context per connection and hands it to every operation on it; a
    connection may stay open for hours, so its DataLoaders would serve stock and prices cached
    by the first operation, and every record would carry the same request id. HTTP requests
    already get a context each and are left alone. List it first, so that every other
    extension sees the operation's context:

        schema = strawberry.Schema(query=Query, extensions=[ContextPerOperation, ...])
    """

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context) and isinstance(context.request, WebSocket):
            self.execution_context.context = context.for_operation()
        yield


Info = _Info[Context, None]
