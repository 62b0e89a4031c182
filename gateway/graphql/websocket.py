"""graphql-transport-ws as Strawberry speaks it, plus the `error` message for a lost session.

When a subscription's token expires or is revoked, its source raises UNAUTHENTICATED and
Strawberry reports that as one more `next` (no data, the error) followed by `complete`. The
protocol has a message for exactly this, `error`: "operation execution error(s)", after which
nothing more is sent for the operation. So such a `next` goes out as an `error` with the same
errors, and the `complete` behind it is dropped. Everything else is Strawberry's.
"""

from __future__ import annotations

from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message

from gateway.errors import ApiCode
from gateway.graphql.context import Context


def _credentials_refused(payload: Any) -> bool:
    """A result with no data whose every error is UNAUTHENTICATED: the operation cannot go on."""
    if not isinstance(payload, dict) or payload.get("data") is not None:
        return False
    errors = payload.get("errors") or []
    return bool(errors) and all(
        (error.get("extensions") or {}).get("code") == ApiCode.UNAUTHENTICATED for error in errors
    )


class GraphQLTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler; see the module docstring for the one change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._errored: set[str] = set()

    async def send_message(self, message: Message) -> None:
        if message["type"] == "next" and _credentials_refused(message["payload"]):
            self._errored.add(message["id"])
            await super().send_message(
                {"id": message["id"], "type": "error", "payload": message["payload"]["errors"]}
            )
            return
        if message["type"] == "complete" and message["id"] in self._errored:
            self._errored.discard(message["id"])
            return
        await super().send_message(message)
