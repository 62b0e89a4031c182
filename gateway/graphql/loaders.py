"""Per-request DataLoaders: one batched gRPC call per entity type instead of one per row."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from gateway.operations import catalog, users
from gateway.scope import RequestScope
from protos import db_service_pb2 as pb


class ProductByIdLoader(DataLoader[int, pb.Product | None]):
    def __init__(self, scope: RequestScope) -> None:
        async def load(ids: list[int]) -> list[pb.Product | None]:
            found = {p.id: p for p in await catalog.get_products_by_ids(scope, list(ids))}
            return [found.get(i) for i in ids]

        super().__init__(load_fn=load, max_batch_size=100)


class UserByIdLoader(DataLoader[int, pb.User | None]):
    def __init__(self, scope: RequestScope) -> None:
        async def load(ids: list[int]) -> list[pb.User | None]:
            found = {u.id: u for u in await users.get_users_by_ids(scope, list(ids))}
            return [found.get(i) for i in ids]

        super().__init__(load_fn=load, max_batch_size=100)


class Loaders:
    """Created lazily per request, so requests that need none pay nothing."""

    def __init__(self, scope: RequestScope) -> None:
        self._scope = scope
        self._products: ProductByIdLoader | None = None
        self._users: UserByIdLoader | None = None

    @property
    def product_by_id(self) -> ProductByIdLoader:
        if self._products is None:
            self._products = ProductByIdLoader(self._scope)
        return self._products

    @property
    def user_by_id(self) -> UserByIdLoader:
        if self._users is None:
            self._users = UserByIdLoader(self._scope)
        return self._users
