"""Planned backend calls: a page of orders asks for its products and users in the same RPC.

The `orders` resolvers (Query.orders, User.orders) see their own selection through `info`.
When it reaches `edges { node { product … } }` or `… user …`, ListOrders is asked to include
those rows (one SQL statement in db_service), and the reply primes the request's DataLoaders.
`Order.product` and `Order.user` then run exactly as before (their permissions, their null
for a row the caller may not see) but find the rows already loaded: one RPC per page instead
of three. Priming never overrides a row a loader already holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

import protos.db_service_pb2 as pb
from gateway.graphql.context import Info

_INCLUDES = {"product": pb.ORDER_INCLUDE_PRODUCT, "user": pb.ORDER_INCLUDE_USER}


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection set, fragments (named or inline) flattened; a selection that
    @skip or @include leaves out is left out (Strawberry keeps it, with the directive's
    arguments already read from the variables)."""
    for selection in selections:
        if not _included(selection):
            continue
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)


def _included(selection: Selection) -> bool:
    directives = selection.directives
    return not (
        directives.get("skip", {}).get("if") is True
        or directives.get("include", {}).get("if") is False
    )


def _below(fields: Iterable[SelectedField], name: str) -> list[SelectedField]:
    return [f for parent in fields if parent.name == name for f in _fields(parent.selections)]


def wanted_includes(info: Info) -> list[pb.OrderInclude]:
    """The includes the selection of this connection field needs, in a fixed order."""
    nodes = _below(_below(_fields(info.selected_fields), info.field_name), "edges")
    names = {f.name for f in _below(nodes, "node")}
    return [include for name, include in _INCLUDES.items() if name in names]


def prime_loaders(
    info: Info, reply: pb.ListOrdersResponse, includes: list[pb.OrderInclude]
) -> None:
    """Hand the included rows to the request's loaders. An owner left out of `users` is one the
    caller may not see: GetUsersByIds would have left it out too, and the loader answers None."""
    loaders = info.context.loaders
    if pb.ORDER_INCLUDE_PRODUCT in includes:
        products: dict[int, pb.Product | None] = {o.product_id: None for o in reply.orders}
        products.update({p.id: p for p in reply.products})
        loaders.prime_products(products)
    if pb.ORDER_INCLUDE_USER in includes:
        users: dict[int, pb.User | None] = {o.user_id: None for o in reply.orders}
        users.update({u.id: u for u in reply.users})
        loaders.prime_users(users)
