"""Per-request DataLoaders: one batched gRPC call per entity type instead of one per row.

Each batch is recorded once, as the field that asked for it (`Order.product`, `Order.user`):
the backend is called once per batch, not once per field, so that is what the log shows.

Pages of orders are shared the same way: the `orders` fields of one request that ask for the
same page (same user, size, cursor and includes) share one ListOrders call. A customer's
`orders { edges { node { user { orders … } } } }` names the same user on every row: without
sharing, a page of 100 rows made 100 identical calls, and nine aliases of it 900 calls and
1,800 log records from one request within the cost limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from strawberry.dataloader import DataLoader

import protos.db_service_pb2 as pb
from gateway.graphql.errors import outcome_of
from gateway.operations import catalog, users
from gateway.scope import RequestScope
from plumbing.futures import retrieve

if TYPE_CHECKING:
    from gateway.runtime import Runtime


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


E = TypeVar("E", bound=_HasId)


def _batch(
    scope: RequestScope,
    runtime: Runtime,
    operation: str,
    fetch: Callable[[RequestScope, list[int]], Awaitable[Sequence[E]]],
) -> Callable[[list[int]], Awaitable[list[E | None]]]:
    """A DataLoader load function: fetch the ids in one call, record that call once."""

    async def load(ids: list[int]) -> list[E | None]:
        started = time.perf_counter()
        outcome = "ok"
        try:
            found = {item.id: item for item in await fetch(scope, list(ids))}
        except BaseException as exc:
            outcome = outcome_of(exc)
            raise
        finally:
            runtime.record(
                kind="graphql",
                operation=operation,
                user=scope.user_label,
                outcome=outcome,
                started=started,
                request_id=scope.request_id,
                message=f"{len(ids)} loaded in one call",
            )
        return [found.get(i) for i in ids]

    return load


class ProductByIdLoader(DataLoader[int, pb.Product | None]):
    def __init__(self, scope: RequestScope, runtime: Runtime) -> None:
        load = _batch(scope, runtime, "Order.product", catalog.get_products_by_ids)
        super().__init__(load_fn=load, max_batch_size=100)


class UserByIdLoader(DataLoader[int, pb.User | None]):
    def __init__(self, scope: RequestScope, runtime: Runtime) -> None:
        load = _batch(scope, runtime, "Order.user", users.get_users_by_ids)
        super().__init__(load_fn=load, max_batch_size=100)


class Loaders:
    """Created lazily per request, so requests that need none pay nothing."""

    def __init__(self, scope: RequestScope, runtime: Runtime) -> None:
        self._scope = scope
        self._runtime = runtime
        self._products: ProductByIdLoader | None = None
        self._users: UserByIdLoader | None = None
        self._pages: dict[Hashable, asyncio.Task[pb.ListOrdersResponse]] = {}

    def reset(self) -> None:
        """Forget every row and page loaded so far (before each mutation field: see recording)."""
        self._products = self._users = None
        self._pages = {}

    async def orders_page(
        self, key: Hashable, fetch: Callable[[], Awaitable[pb.ListOrdersResponse]]
    ) -> pb.ListOrdersResponse:
        """The page `key` names, fetched once per request: later askers share the first call
        (its answer or its error)."""
        task = self._pages.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            # An asker cancelled (its list failed beside it) must not cancel the others' call;
            # the call is bounded by its deadline, and its error is theirs, or nobody's.
            task.add_done_callback(retrieve)
            self._pages[key] = task
        return await asyncio.shield(task)

    @property
    def product_by_id(self) -> ProductByIdLoader:
        if self._products is None:
            self._products = ProductByIdLoader(self._scope, self._runtime)
        return self._products

    @property
    def user_by_id(self) -> UserByIdLoader:
        if self._users is None:
            self._users = UserByIdLoader(self._scope, self._runtime)
        return self._users

    def prime_products(self, found: Mapping[int, pb.Product | None]) -> None:
        """Products a planned call brought with a page (gateway.graphql.orders.includes)."""
        self.product_by_id.prime_many(found)
        self._record_primed("Order.product", len(found))

    def prime_users(self, found: Mapping[int, pb.User | None]) -> None:
        """Users a planned call brought with a page; None for one the caller may not see."""
        self.user_by_id.prime_many(found)
        self._record_primed("Order.user", len(found))

    def _record_primed(self, operation: str, count: int) -> None:
        # The record the batch would have written: the log still shows which field loaded how
        # many rows, whichever call brought them.
        if count:
            self._runtime.record(
                kind="graphql",
                operation=operation,
                user=self._scope.user_label,
                outcome="ok",
                started=time.perf_counter(),
                request_id=self._scope.request_id,
                message=f"{count} loaded in one call",
            )
