"""Relay-style connections (`edges { node cursor }`, `pageInfo`), at most 100 per page.

A connection holds the page as the backend sent it: its messages and its next page token.
`edges` and `pageInfo` are built from them when the reference executor asks; the compiled
executor (gateway.graphql.compiled) reads `items` directly, with `cursor_of` and `page_info`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

import strawberry

from gateway.errors import ApiError
from protos.page_tokens import encode_token

MAX_PAGE = 100
DEFAULT_PAGE = 20

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    node: T
    cursor: str


@strawberry.type
class Connection(Generic[T]):
    """A page of T; a concrete subclass names its cursor KIND and its NODE type."""

    KIND: ClassVar[str]
    NODE: ClassVar[Any]  # the node's type, built from a message by its `from_pb`

    items: strawberry.Private[Sequence[Any]]
    next_page_token: strawberry.Private[str]

    @strawberry.field
    def edges(self) -> list[Edge[T]]:
        return [
            Edge(node=self.NODE.from_pb(item), cursor=self.cursor_of(item)) for item in self.items
        ]

    @strawberry.field
    def page_info(self) -> PageInfo:
        return self.build_page_info()

    @classmethod
    def cursor_of(cls, item: Any) -> str:
        return encode_token(cls.KIND, item.id)

    def build_page_info(self) -> PageInfo:
        return PageInfo(
            has_next_page=bool(self.next_page_token),
            end_cursor=self.cursor_of(self.items[-1]) if self.items else None,
        )


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise ApiError.bad_input(f"first must be 1 to {MAX_PAGE}")
    return first


C = TypeVar("C", bound=Connection[Any])


def connection(cls: type[C], items: Sequence[Any], next_page_token: str) -> C:
    """A page of backend messages as `cls` (a concrete connection type such as OrderConnection)."""
    return cls(items=items, next_page_token=next_page_token)
