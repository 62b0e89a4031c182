"""Product reads of concurrent requests, coalesced into one GetProductsByIds call.

    product = await db.product_reads.get(product_id, request_id=scope.request_id)

A read of one product costs db_service far more in gRPC machinery than in SQL (bench/README.md:
two thirds of its CPU per GetProduct is grpc.aio's). Under load many requests ask for a product
in the same turn of the event loop, so the reads queued during one turn go out together at its
end: a lone read as GetProduct, exactly as before, and two or more as one GetProductsByIds call
(one SELECT … = ANY) that carries every waiting request's id (in one `x-request-id` entry), so
db_service still writes a log record for each request. Nothing is cached: every read is answered
by a call that began after it was asked.

While a call is out, new reads wait and go out together as soon as it returns (a group commit):
under load a call then carries every read that arrived during the previous one's round trip, and
the per-call cost of gRPC, most of a read's CPU in the gateway and in db_service, is shared by
that many requests. An idle gateway still sends a read at the end of the turn it was asked in.

Product reads are public (db_service reads no caller for them), so requests of different callers
may share a call. Batches hold at most MAX_BATCH ids; a caller that gives up (client gone,
cancelled) leaves the others' answers alone.

A read's deadline (the DBClient's timeout) counts from when it is asked, not sent: one timer
fails each read, waiting for a call slot or in a call already out, at its own deadline with
DEADLINE_EXCEEDED, and a call carries the latest deadline of its reads, so that a read asked
just now is not failed early by an older one beside it. At most MAX_WAITING reads wait; one
more is refused as UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import protos.db_service_pb2 as pb
from gateway.errors import ApiError
from plumbing.futures import retrieve

if TYPE_CHECKING:
    from gateway.backends import DBClient

# Under GetProductsByIds's own limit (100), and a batch's request ids (up to 128 characters
# each, clients choose them) well inside gRPC's 8 KiB metadata limit.
MAX_BATCH = 64
MAX_BATCH_ID_BYTES = 4096
_ID_ENTRY_OVERHEAD = 32  # per id: its comma, and room for the entry's key and HPACK accounting
_ID_MAX = 2**31 - 1
# One call out at a time carries the most reads per call. A call out for longer than STALL_S no
# longer holds the reads after it back: they go out beside it, up to MAX_CALLS_IN_FLIGHT calls,
# so a call that hangs (a db_service replica gone silent, a read being retried) delays the
# others by STALL_S, not by its deadline. A full batch never waits for a slot.
STALL_S = 0.05
MAX_CALLS_IN_FLIGHT = 4
# Reads waiting for a call slot: far more than a busy gateway has in one round trip (a few
# hundred), so it is reached only when db_service stalls.
MAX_WAITING = MAX_CALLS_IN_FLIGHT * MAX_BATCH * 16


@dataclass(frozen=True, slots=True)
class _Read:
    product_id: int
    request_id: str
    authorization: str | None
    deadline: float  # time.monotonic()
    future: asyncio.Future[pb.Product]


class ProductReads:
    """Coalesces GetProduct calls made in the same event-loop turn or while its calls are out
    (see the module docstring)."""

    def __init__(self, db: DBClient, *, stall_s: float = STALL_S) -> None:
        self._db = db
        self._stall_s = stall_s
        self._waiting: list[_Read] = []
        # The calls out, with the loop time each started at.
        self._out: dict[asyncio.Task[None], float] = {}
        self._out_reads: dict[asyncio.Task[None], list[_Read]] = {}
        self._dispatch_due = False
        self._stall_timer: asyncio.TimerHandle | None = None
        # Due at or before the earliest deadline of a read not yet answered, whenever one is.
        self._expiry_timer: asyncio.TimerHandle | None = None

    async def get(
        self, product_id: int, *, request_id: str, authorization: str | None
    ) -> pb.Product:
        """The product, or ApiError NOT_FOUND (or the backend's failure) as GetProduct gives it."""
        if not 1 <= product_id <= _ID_MAX:
            # Out of range: db_service's own answer (its NOT_FOUND) without joining a batch.
            return await self._single(product_id, request_id, authorization)
        if len(self._waiting) >= MAX_WAITING:
            raise ApiError.unavailable("too many product reads are waiting for db_service")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[pb.Product] = loop.create_future()
        deadline = time.monotonic() + self._db.timeout_s
        self._waiting.append(_Read(product_id, request_id, authorization, deadline, future))
        if self._expiry_timer is None:
            self._expiry_timer = loop.call_later(self._db.timeout_s, self._expire)
        if not self._dispatch_due:
            if self._slot_free(loop) or len(self._waiting) >= MAX_BATCH:
                self._dispatch_due = True
                loop.call_soon(self._dispatch)
            else:
                self._watch_stall(loop)
        return await future

    def _dispatch(self) -> None:
        """Start the calls the waiting reads may have now (at the end of a turn)."""
        self._dispatch_due = False
        loop = asyncio.get_running_loop()
        # A read whose caller gave up while it waited (client gone) is not sent.
        batches = _batches([read for read in self._waiting if not read.future.done()])
        started = 0
        for batch in batches:
            full = len(batch) == MAX_BATCH
            if len(self._out) >= MAX_CALLS_IN_FLIGHT or not (full or self._slot_free(loop)):
                break
            task = loop.create_task(self._answer(batch))
            self._out[task] = loop.time()
            self._out_reads[task] = batch
            task.add_done_callback(self._call_done)
            started += 1
        self._waiting = [read for batch in batches[started:] for read in batch]
        if self._waiting:
            self._watch_stall(loop)

    def _slot_free(self, loop: asyncio.AbstractEventLoop) -> bool:
        """No call is out, or the newest one has been out STALL_S."""
        return not self._out or loop.time() - max(self._out.values()) >= self._stall_s

    def _watch_stall(self, loop: asyncio.AbstractEventLoop) -> None:
        """Dispatch again when the newest call out would count as stalled."""
        if self._stall_timer is None and self._out:
            due = max(self._out.values()) + self._stall_s
            self._stall_timer = loop.call_at(due, self._stall_passed)

    def _stall_passed(self) -> None:
        self._stall_timer = None
        self._dispatch()

    def _expire(self) -> None:
        """Fail the reads whose deadline has passed, waiting or in a call out (the call goes
        on for the others); look again at the earliest deadline left."""
        now = time.monotonic()
        kept = []
        for read in self._waiting:
            if read.deadline <= now:
                _fail(read.future, ApiError.deadline_exceeded())
            else:
                kept.append(read)
        self._waiting = kept
        due = kept[0].deadline if kept else None
        for batch in self._out_reads.values():
            for read in batch:
                if read.future.done():
                    continue
                if read.deadline <= now:
                    _fail(read.future, ApiError.deadline_exceeded())
                elif due is None or read.deadline < due:
                    due = read.deadline
        self._expiry_timer = (
            None if due is None else asyncio.get_running_loop().call_later(due - now, self._expire)
        )

    def _call_done(self, task: asyncio.Task[None]) -> None:
        # The task resolves futures only; it never raises (see _answer).
        retrieve(task)
        del self._out[task]
        del self._out_reads[task]
        if self._waiting and not self._dispatch_due:
            self._dispatch_due = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    async def _answer(self, batch: list[_Read]) -> None:
        try:
            if len(batch) == 1:
                read = batch[0]
                product = await self._single(
                    read.product_id, read.request_id, read.authorization, read.deadline
                )
                _resolve(read.future, product)
                return
            ids = sorted({read.product_id for read in batch})
            request_ids = list(dict.fromkeys(read.request_id for read in batch))
            reply: pb.ProductList = await self._db.call_for_many(
                self._db.stub.GetProductsByIds,
                pb.GetProductsByIdsRequest(ids=ids),
                request_ids=request_ids,
                # The newest read's (they wait in the order asked): _expire fails the others
                # at theirs.
                deadline=batch[-1].deadline,
            )
            found = {product.id: product for product in reply.products}
            for read in batch:
                if (match := found.get(read.product_id)) is not None:
                    _resolve(read.future, match)
                else:
                    _fail(read.future, ApiError.not_found(f"product {read.product_id} not found"))
        except ApiError as exc:
            # One exception object per waiter: each request raises (and annotates) its own.
            for read in batch:
                _fail(read.future, exc.copy())
        except BaseException as exc:
            for read in batch:
                _fail(read.future, exc)
            if not isinstance(exc, Exception):
                raise

    async def _single(
        self,
        product_id: int,
        request_id: str,
        authorization: str | None,
        deadline: float | None = None,
    ) -> pb.Product:
        product: pb.Product = await self._db.call(
            self._db.stub.GetProduct,
            pb.GetProductRequest(id=product_id),
            authorization=authorization,
            request_id=request_id,
            deadline=deadline,
        )
        return product


def _batches(reads: list[_Read]) -> list[list[_Read]]:
    """`reads` in order, cut at MAX_BATCH reads or MAX_BATCH_ID_BYTES of request ids."""
    batches: list[list[_Read]] = []
    batch: list[_Read] = []
    size = 0
    for read in reads:
        cost = len(read.request_id) + _ID_ENTRY_OVERHEAD
        if batch and (len(batch) == MAX_BATCH or size + cost > MAX_BATCH_ID_BYTES):
            batches.append(batch)
            batch, size = [], 0
        batch.append(read)
        size += cost
    if batch:
        batches.append(batch)
    return batches


def _resolve(future: asyncio.Future[pb.Product], product: pb.Product) -> None:
    if not future.done():
        future.set_result(product)


def _fail(future: asyncio.Future[pb.Product], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
