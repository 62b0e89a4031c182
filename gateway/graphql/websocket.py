"""graphql-transport-ws as Strawberry speaks it, plus the `error` message for a lost session,
and the GraphQL spec's rule that a document of several operations names the one to run.

When a subscription's token expires or is revoked (UNAUTHENTICATED), or its admin becomes a
customer (FORBIDDEN), its source raises that error and Strawberry reports it as one more `next`
(no data, the error) followed by `complete`. The protocol has a message for exactly this,
`error`: "operation execution error(s)", "before execution starts ... or during the execution",
after which nothing more is sent for the operation; it is also what a subscribe message refused
for the same reason at the start gets. So such a `next` goes out as an `error` with the same
errors, and the `complete` behind it is dropped: a client learns that the caller may not go on
the same way whether that is found at the start or midway, and for either reason. (A query or
mutation on the socket refused as a whole for the caller gets the same `error`.)

Strawberry runs the first operation of a document when no operationName is sent; the HTTP
pipeline refuses that (GetOperation), so a subscribe message doing it is refused here with an
`error`, before anything runs. So is a subscribe message while MAX_OPERATIONS operations of the
connection still run, with a code (Strawberry's own bound is 100, refused without one: one socket
ran 100 `logs` subscriptions, each a Kafka consumer in logging_service), and one with a payload
field of the wrong type (`variables: [1]`), with the code and message HTTP gives it. A payload
that is not an object closes the socket as an invalid message (4400), and so does a message
that is not an object, or whose `id` is not a string. Everything else is Strawberry's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected
from strawberry.http.exceptions import WebSocketDisconnected as StrawberryWebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage,
    Message,
    SubscribeMessage,
)
from uvicorn.protocols.utils import ClientDisconnected
from websockets.exceptions import InvalidState

from gateway.errors import ApiCode
from gateway.graphql.analysis import OPERATION_NAME_NEEDED
from gateway.graphql.context import Context

# Operations one connection may run at once; more is RATE_LIMITED until one ends.
MAX_OPERATIONS = 10
# What sending on a socket the client has closed raises, by layer (Strawberry, Starlette,
# uvicorn, websockets): an operation still answering then is no bug to log with a traceback.
_GONE = (
    StrawberryWebSocketDisconnected,
    WebSocketDisconnect,
    WebSocketDisconnected,
    ClientDisconnected,
    InvalidState,
)

log = logging.getLogger(__name__)


# The refusals of the caller: the operation cannot go on for them, whatever it would do next.
_CALLER_REFUSED = frozenset({ApiCode.UNAUTHENTICATED, ApiCode.FORBIDDEN})


def _caller_refused(payload: Any) -> bool:
    """A result with no data whose every error refuses the caller (UNAUTHENTICATED, or
    FORBIDDEN): the operation cannot go on."""
    if not isinstance(payload, dict) or payload.get("data") is not None:
        return False
    errors = payload.get("errors") or []
    return bool(errors) and all(
        (error.get("extensions") or {}).get("code") in _CALLER_REFUSED for error in errors
    )


def _several_operations(query: object, max_tokens: int) -> bool:
    """Whether `query` parses as a document of more than one operation. The parse stops at
    `max_tokens`, as the pipeline's does; a document that does not parse within it is left to
    Strawberry to refuse."""
    if not isinstance(query, str):
        return False
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except (GraphQLError, RecursionError):
        return False
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions) > 1


# The payload's fields as the HTTP pipeline takes them: (name, type, what it must be, nullable).
_FIELDS = (
    ("query", str, "a string", False),
    ("variables", dict, "an object", True),
    ("operationName", str, "a string", True),
    ("extensions", dict, "an object", True),
)


def _wrong_field(payload: Mapping[str, Any]) -> str | None:
    """The message HTTP gives for the first field of the wrong type, if one is: without it
    `variables: [1]` ran on and answered a Python error's text under another code."""
    for name, kind, described, nullable in _FIELDS:
        value = payload.get(name)
        if not (isinstance(value, kind) or (nullable and value is None)):
            if_given = " or null, if provided" if nullable else ""
            return f"The GraphQL operation's `{name}` must be {described}{if_given}."
    return None


class GraphQLTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler; see the module docstring for the one change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._errored: set[str] = set()

    async def handle_message(self, message: Message) -> None:
        frame: object = message
        if not isinstance(frame, dict) or not isinstance(frame.get("id", ""), str):
            # Strawberry reads a message as an object and keys its operations by id: an array
            # raised TypeError, and so did a list as an id (unhashable), and the socket was cut
            # off (1006) with a traceback instead of the protocol's 4400.
            await self.handle_invalid_message("Failed to parse message")
            return
        await super().handle_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload: object = message["payload"]
        if not isinstance(payload, dict):
            # Strawberry reads it as a mapping: a list raised AttributeError, and the socket
            # was cut off (1006) with a traceback instead of the protocol's 4400.
            await self.handle_invalid_message("Invalid subscribe message")
            return
        # After Strawberry's own checks would pass: a socket not yet acknowledged, or an id in
        # use, is closed by it with the protocol's code.
        if self.connection_acknowledged and message["id"] not in self.operations:
            wrong = _wrong_field(payload)
            if wrong is not None:
                await self._refuse(message["id"], wrong, ApiCode.BAD_REQUEST)
                return
            if len(self.operations) >= MAX_OPERATIONS:
                await self._refuse(
                    message["id"],
                    f"at most {MAX_OPERATIONS} operations run at once on one connection",
                    ApiCode.RATE_LIMITED,
                )
                return
            if payload.get("operationName") is None and _several_operations(
                payload.get("query"), self.context.runtime.settings.graphql_max_tokens
            ):
                await self._refuse(message["id"], OPERATION_NAME_NEEDED, ApiCode.BAD_REQUEST)
                return
        await super().handle_subscribe(message)

    async def handle_task_exception(self, error: Exception) -> None:
        """Strawberry's hook for an operation's failure: a socket closed under an operation
        still sending is the client leaving (a line at debug level); anything else is logged
        with its traceback, as Strawberry does."""
        if isinstance(error, _GONE):
            log.debug("an operation's socket closed before its answer was sent (%r)", error)
            return
        await super().handle_task_exception(error)

    async def _refuse(self, operation_id: str, message: str, code: ApiCode) -> None:
        """The protocol's `error` for a subscribe message refused before anything ran."""
        error = GraphQLError(message, extensions={"code": code})
        refused: ErrorMessage = {"id": operation_id, "type": "error", "payload": [error.formatted]}
        await super().send_message(refused)

    async def send_message(self, message: Message) -> None:
        if message["type"] == "next" and _caller_refused(message["payload"]):
            self._errored.add(message["id"])
            await super().send_message(
                {"id": message["id"], "type": "error", "payload": message["payload"]["errors"]}
            )
            return
        if message["type"] == "complete" and message["id"] in self._errored:
            self._errored.discard(message["id"])
            return
        await super().send_message(message)
