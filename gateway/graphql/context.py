"""The typed per-request GraphQL context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strawberry.types import Info as _Info

from gateway.graphql.loaders import Loaders
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


Info = _Info[Context, None]
