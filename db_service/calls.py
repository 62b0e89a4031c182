"""What one RPC call knows about itself: request id and caller, for its log record."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import grpc

# The servicer context as our handlers see it (messages are typed by the handlers' signatures).
Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(slots=True)
class CallInfo:
    request_id: str
    user: str = "anonymous"
    outcome: str = "ok"


current_call: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar(
    "current_call", default=None
)


def metadata_value(context: Context, key: str) -> str | None:
    """The first value of an invocation metadata entry (keys are lower case on the wire)."""
    for item_key, value in context.invocation_metadata() or ():
        if item_key == key:
            return value.decode() if isinstance(value, bytes) else value
    return None


def note_user(sid: str) -> None:
    """Record the authenticated caller of the current RPC for its log record."""
    call = current_call.get()
    if call is not None:
        call.user = sid


def note_outcome(outcome: str) -> None:
    """Record how the current RPC ended, when it did not end well."""
    call = current_call.get()
    if call is not None:
        call.outcome = outcome
