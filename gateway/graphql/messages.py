"""GraphQL object types backed by the backend's protobuf message, read field by field.

    @message_type
    @strawberry.type
    class Product:
        message: strawberry.Private[pb.Product]
        name: str = read(lambda m: m.name)
        price: Decimal = read(lambda m: Decimal(m.price))

Each `read` is the one definition of how a field's value comes out of the message. The
reference executor calls it through a Strawberry field resolver (`self.message`); the compiled
executor (gateway.graphql.compiled) calls it on the message directly, so a row of a page is
never turned into a Python object unless a resolver of its own needs one. Both then serialize
the value with the schema's scalar, so the two cannot disagree about a field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import strawberry
from google.protobuf.timestamp_pb2 import Timestamp

T = TypeVar("T")
Read = Callable[[Any], Any]


class HasMessage(Protocol):
    message: Any


@dataclass(frozen=True, slots=True)
class _MessageRead:
    read: Read
    description: str | None


def read(read: Read, *, description: str | None = None) -> Any:
    """A field whose value is `read(message)`; see message_type."""
    return _MessageRead(read, description)


def message_type(cls: type[T]) -> type[T]:
    """Turn each `read(...)` of `cls` into a Strawberry field, and list them in
    `cls.message_readers` (Python field name → read) for the compiled executor.

    Apply it under `@strawberry.type`, which then sees ordinary resolver fields.
    """
    readers: dict[str, Read] = {}
    for name, value in list(vars(cls).items()):
        if isinstance(value, _MessageRead):
            readers[name] = value.read
            setattr(
                cls,
                name,
                strawberry.field(resolver=_resolver(value.read), description=value.description),
            )
    cls.message_readers = readers  # type: ignore[attr-defined]
    return cls


def message_readers(cls: type) -> Mapping[str, Read]:
    """The reads `message_type` collected for `cls` (empty for any other type)."""
    readers: Mapping[str, Read] = getattr(cls, "message_readers", {})
    return readers


def _resolver(read: Read) -> Callable[[HasMessage], Any]:
    def resolve(self: HasMessage) -> Any:
        return read(self.message)

    return resolve


def timestamp(value: Timestamp) -> datetime:
    """A protobuf Timestamp as the aware UTC datetime the DateTime scalar serializes."""
    return value.ToDatetime(tzinfo=UTC)
