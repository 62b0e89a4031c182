"""Concurrent calls with the same key run together, as one batch: natural batching.

    batcher = Batcher(place_many, max_size=64, token=lambda r: (r.sid, r.key))
    attempt = await batcher.submit(product_id, request)

While a key's batch is in the database, the calls that arrive queue; when it returns, all of
them (up to `max_size`) go as the next batch. A lone call goes at once, so there is no timer
and no added latency; under load the batches grow by themselves to what arrived meanwhile.
For orders this turns a queue of transactions on one product row (each waiting on the row lock
of the one before, woken, rechecked) into one statement and one commit per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")
T = TypeVar("T")


class Batcher(Generic[K, R, T]):
    """Runs the calls of one key one batch at a time, each batch by `run` (one result per
    request, in order). Two requests with the same `token` (not None) never share a batch: the
    later one waits for the next, so it sees what the earlier one committed."""

    def __init__(
        self,
        run: Callable[[K, list[R]], Awaitable[list[T]]],
        *,
        max_size: int,
        token: Callable[[R], Hashable | None],
        isolate: tuple[type[Exception], ...] = (),
    ) -> None:
        """`isolate`: failures that may be one request's own (a value the database refuses).
        A batch that fails so runs again one request at a time, in order, and only the
        requests that fail alone get the failure; any other failure is every caller's."""
        self._run = run
        self._max_size = max_size
        self._token = token
        self._isolate = isolate
        self._queues: dict[K, list[tuple[R, asyncio.Future[T]]]] = {}
        # One drain per key with a queue; a reference keeps each alive until it ends.
        self._drains: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, request: R) -> T:
        """The result of `request`, run in the next batch of `key`. Cancelling the caller
        does not cancel the batch: its request may still take effect, as any sent statement."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, []).append((request, future))
        if key not in self._drains:
            self._drains[key] = asyncio.create_task(self._drain(key))
        return await future

    async def _drain(self, key: K) -> None:
        try:
            while queue := self._queues.get(key):
                batch, self._queues[key] = self._split(queue)
                await self._settle(key, batch)
        finally:
            del self._drains[key]
            # Only a failure of this loop itself leaves calls queued: they must not hang.
            for _, future in self._queues.pop(key, []):
                if not future.done():
                    future.set_exception(RuntimeError("the batch was abandoned"))

    def _split(
        self, queue: list[tuple[R, asyncio.Future[T]]]
    ) -> tuple[list[tuple[R, asyncio.Future[T]]], list[tuple[R, asyncio.Future[T]]]]:
        """The next batch, in arrival order, and what stays queued for the ones after it."""
        batch: list[tuple[R, asyncio.Future[T]]] = []
        rest: list[tuple[R, asyncio.Future[T]]] = []
        tokens: set[Hashable] = set()
        for item in queue:
            if item[1].done():  # its caller gave up before it was sent
                continue
            token = self._token(item[0])
            if len(batch) >= self._max_size or (token is not None and token in tokens):
                rest.append(item)
                continue
            if token is not None:
                tokens.add(token)
            batch.append(item)
        return batch, rest

    async def _settle(self, key: K, batch: list[tuple[R, asyncio.Future[T]]]) -> None:
        if not batch:
            return
        try:
            results = await self._run(key, [request for request, _ in batch])
        except Exception as exc:
            if len(batch) > 1 and isinstance(exc, self._isolate):
                for item in batch:
                    await self._settle(key, [item])
                return
            # Every caller of the batch gets the failure.
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # the drain itself is cancelled (the loop is closing)
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
