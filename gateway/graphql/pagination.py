"""Relay-style connections (`edges { node cursor }`, `pageInfo`), at most 100 per page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

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
    edges: list[Edge[T]]
    page_info: PageInfo


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise ApiError.bad_input(f"first must be 1 to {MAX_PAGE}")
    return first


C = TypeVar("C", bound=Connection[Any])


def connection(
    cls: type[C], kind: str, items: Sequence[Any], ids: Callable[[Any], int], next_page_token: str
) -> C:
    """A page as `cls` (a concrete connection type such as OrderConnection)."""
    edges = [Edge(node=item, cursor=encode_token(kind, ids(item))) for item in items]
    return cls(
        edges=edges,
        page_info=PageInfo(
            has_next_page=bool(next_page_token),
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
