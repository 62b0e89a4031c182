"""ProductReads: which calls a burst of product reads becomes (a fake DBClient records them)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.coalesce import (
    MAX_BATCH,
    MAX_BATCH_ID_BYTES,
    MAX_CALLS_IN_FLIGHT,
    MAX_WAITING,
    ProductReads,
)
from gateway.errors import ApiCode, ApiError
from protos import db_service_pb2 as pb

KNOWN = {1, 2, 3}


class FakeDB:
    def __init__(self, failure: ApiError | None = None, timeout_s: float = 5.0) -> None:
        self.calls: list[tuple[str, list[int], list[str]]] = []
        self.deadlines: list[float | None] = []
        self.timeout_s = timeout_s
        self.failure = failure
        self.release = asyncio.Event()
        self.release.set()
        self.called = asyncio.Event()
        # The RPCs ProductReads calls, each standing for itself: the calls record their names.
        self.stub = SimpleNamespace(GetProduct="GetProduct", GetProductsByIds="GetProductsByIds")

    async def call(
        self,
        method: str,
        request: Any,
        *,
        authorization: str | None,
        request_id: str,
        deadline: float | None = None,
    ) -> pb.Product:
        self.calls.append((method, [request.id], [request_id]))
        self.deadlines.append(deadline)
        self.called.set()
        await self.release.wait()
        if self.failure or request.id not in KNOWN:
            raise self.failure or ApiError.not_found(f"product {request.id} not found")
        return pb.Product(id=request.id, name=f"p{request.id}")

    async def call_for_many(
        self, method: str, request: Any, *, request_ids: list[str], deadline: float | None = None
    ) -> Any:
        self.calls.append((method, list(request.ids), request_ids))
        self.deadlines.append(deadline)
        self.called.set()
        await self.release.wait()
        if self.failure:
            raise self.failure
        return pb.ProductList(
            products=[pb.Product(id=i, name=f"p{i}") for i in request.ids if i in KNOWN]
        )


def _reads(db: FakeDB) -> ProductReads:
    return ProductReads(db)  # type: ignore[arg-type]


async def test_a_lone_read_is_a_plain_get_product() -> None:
    db = FakeDB()
    product = await _reads(db).get(2, request_id="r1", authorization="Bearer t")
    assert product.name == "p2"
    assert db.calls == [("GetProduct", [2], ["r1"])]


async def test_reads_of_one_turn_share_one_call_and_keep_their_request_ids() -> None:
    db = FakeDB()
    reads = _reads(db)
    got = await asyncio.gather(
        *(reads.get(i, request_id=f"r{n}", authorization=None) for n, i in enumerate([3, 1, 3, 2]))
    )
    assert [p.name for p in got] == ["p3", "p1", "p3", "p2"]
    assert db.calls == [("GetProductsByIds", [1, 2, 3], ["r0", "r1", "r2", "r3"])]


async def test_a_missing_product_fails_only_its_own_read() -> None:
    db = FakeDB()
    reads = _reads(db)
    found, missing = await asyncio.gather(
        reads.get(1, request_id="a", authorization=None),
        reads.get(99, request_id="b", authorization=None),
        return_exceptions=True,
    )
    assert isinstance(found, pb.Product)
    assert found.id == 1
    assert isinstance(missing, ApiError)
    assert (missing.code, missing.http_status) == ("NOT_FOUND", 404)
    assert "99" in missing.message


@pytest.mark.parametrize("product_id", [0, -5, -(2**31)])
async def test_ids_out_of_range_get_db_service_s_own_answer(product_id: int) -> None:
    db = FakeDB()
    with pytest.raises(ApiError) as raised:
        await _reads(db).get(product_id, request_id="r", authorization=None)
    assert raised.value.code == "NOT_FOUND"
    assert db.calls == [("GetProduct", [product_id], ["r"])]


async def test_a_failed_call_fails_each_read_with_its_own_exception() -> None:
    db = FakeDB(failure=ApiError("UNAVAILABLE", "down", http_status=503, retry_after_s=2))
    reads = _reads(db)
    results = await asyncio.gather(
        *(reads.get(i, request_id=str(i), authorization=None) for i in (1, 2, 3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, ApiError) and r.code == "UNAVAILABLE" for r in results)
    assert all(isinstance(r, ApiError) and r.retry_after_s == 2 for r in results)
    assert len({id(r) for r in results}) == 3


async def test_bursts_are_split_into_batches_of_at_most_max_batch() -> None:
    db = FakeDB()
    reads = _reads(db)
    count = MAX_BATCH * 2 + 1
    got = await asyncio.gather(
        *(reads.get(1 + n % 3, request_id=f"r{n}", authorization=None) for n in range(count))
    )
    assert len(got) == count
    assert [len(request_ids) for _, _, request_ids in db.calls] == [MAX_BATCH, MAX_BATCH, 1]
    assert [method for method, _, _ in db.calls][-1] == "GetProduct"


async def test_a_cancelled_read_leaves_the_others_answered() -> None:
    db = FakeDB()
    db.release.clear()
    reads = _reads(db)
    first = asyncio.ensure_future(reads.get(1, request_id="a", authorization=None))
    second = asyncio.ensure_future(reads.get(2, request_id="b", authorization=None))
    await asyncio.wait_for(db.called.wait(), 5)
    first.cancel()
    db.release.set()
    assert (await second).name == "p2"
    assert first.cancelled()


async def test_long_request_ids_cut_batches_before_grpc_s_metadata_limit() -> None:
    db = FakeDB()
    reads = _reads(db)
    ids = [f"{n:03d}" + "r" * 125 for n in range(MAX_BATCH)]  # 128 characters, the most allowed
    got = await asyncio.gather(*(reads.get(1, request_id=i, authorization=None) for i in ids))
    assert len(got) == MAX_BATCH
    assert sorted(i for _, _, request_ids in db.calls for i in request_ids) == ids
    assert len(db.calls) > 1
    assert all(
        sum(len(i) for i in request_ids) < MAX_BATCH_ID_BYTES for _, _, request_ids in db.calls
    )


async def _settle() -> None:
    """Let the event loop run until the reads asked so far have gone out or wait for a call
    (a read takes a few turns to reach the backend: asked, dispatched, its call started)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def _calls(db: FakeDB, count: int) -> None:
    """Wait until the backend has been called `count` times."""
    async with asyncio.timeout(5):
        while len(db.calls) < count:
            db.called.clear()
            await db.called.wait()


async def test_reads_asked_while_a_call_is_out_share_the_next_call() -> None:
    # Given a call out, held by the backend
    db = FakeDB()
    db.release.clear()
    reads = _reads(db)
    first = asyncio.ensure_future(reads.get(1, request_id="first", authorization=None))
    await _calls(db, 1)
    # When three more reads are asked, each in a turn of its own
    waiting = []
    for n, product_id in enumerate((2, 3, 2)):
        waiting.append(
            asyncio.ensure_future(reads.get(product_id, request_id=f"w{n}", authorization=None))
        )
        await _settle()
    # Then none goes out until the call returns, and then all three go out together
    assert len(db.calls) == 1
    db.release.set()
    assert [p.name for p in await asyncio.gather(*waiting)] == ["p2", "p3", "p2"]
    assert (await first).name == "p1"
    assert db.calls[1:] == [("GetProductsByIds", [2, 3], ["w0", "w1", "w2"])]


async def test_reads_go_out_beside_a_call_that_stalls() -> None:
    # Given a call out that the backend does not answer
    db = FakeDB()
    db.release.clear()
    reads = ProductReads(db, stall_s=0.01)  # type: ignore[arg-type]
    stuck = asyncio.ensure_future(reads.get(1, request_id="stuck", authorization=None))
    await _calls(db, 1)
    # When another read is asked
    later = asyncio.ensure_future(reads.get(2, request_id="later", authorization=None))
    # Then it goes out once the first call has been out stall_s, without waiting for it
    await _calls(db, 2)
    assert db.calls[1] == ("GetProduct", [2], ["later"])
    assert not stuck.done()
    db.release.set()
    assert [(await stuck).name, (await later).name] == ["p1", "p2"]


async def test_calls_stalled_side_by_side_stop_at_max_calls_in_flight() -> None:
    db = FakeDB()
    db.release.clear()
    reads = ProductReads(db, stall_s=0.001)  # type: ignore[arg-type]
    asked = []
    for n in range(MAX_CALLS_IN_FLIGHT + 2):
        asked.append(asyncio.ensure_future(reads.get(1, request_id=f"r{n}", authorization=None)))
        await _calls(db, min(len(asked), MAX_CALLS_IN_FLIGHT))
    assert len(db.calls) == MAX_CALLS_IN_FLIGHT
    db.release.set()
    assert len(await asyncio.gather(*asked)) == MAX_CALLS_IN_FLIGHT + 2


async def test_a_read_given_up_while_it_waited_is_not_sent() -> None:
    # Given a call out and two reads waiting for it
    db = FakeDB()
    db.release.clear()
    reads = _reads(db)
    first = asyncio.ensure_future(reads.get(1, request_id="first", authorization=None))
    await _calls(db, 1)
    gone = asyncio.ensure_future(reads.get(2, request_id="gone", authorization=None))
    kept = asyncio.ensure_future(reads.get(3, request_id="kept", authorization=None))
    await _settle()
    # When one caller gives up before the call returns
    gone.cancel()
    db.release.set()
    # Then only the other read is sent, alone, as GetProduct
    assert (await kept).name == "p3"
    assert (await first).name == "p1"
    assert gone.cancelled()
    assert db.calls[1:] == [("GetProduct", [3], ["kept"])]


async def _stall_every_slot(db: FakeDB, reads: ProductReads) -> list[asyncio.Future[Any]]:
    """MAX_CALLS_IN_FLIGHT calls out to a backend that does not answer them."""
    db.release.clear()
    out = []
    for n in range(MAX_CALLS_IN_FLIGHT):
        out.append(asyncio.ensure_future(reads.get(1, request_id=f"out{n}", authorization=None)))
        await _calls(db, n + 1)
    return out


async def test_a_read_waiting_behind_stalled_calls_fails_at_its_own_deadline() -> None:
    # given every call slot held by a call the backend does not answer
    db = FakeDB(timeout_s=0.2)
    reads = ProductReads(db, stall_s=0.001)  # type: ignore[arg-type]
    out = await _stall_every_slot(db, reads)

    # when more reads are asked, which cannot go out
    async with asyncio.timeout(5):
        waited = await asyncio.gather(
            *(reads.get(2, request_id=f"w{n}", authorization=None) for n in range(3)),
            return_exceptions=True,
        )

    # then each fails with DEADLINE_EXCEEDED within its deadline, as a call would, unsent
    assert [getattr(e, "code", e) for e in waited] == [ApiCode.DEADLINE_EXCEEDED] * 3
    assert all(isinstance(e, ApiError) and e.http_status == 504 for e in waited)
    assert len(db.calls) == MAX_CALLS_IN_FLIGHT
    db.release.set()
    await asyncio.gather(*out, return_exceptions=True)  # they reached their deadlines too


async def test_a_call_carries_the_deadline_of_its_newest_read() -> None:
    # given a call out, and reads asked one after another while it is
    db = FakeDB()
    reads = _reads(db)
    db.release.clear()
    first = asyncio.ensure_future(reads.get(1, request_id="first", authorization=None))
    await _calls(db, 1)
    older = asyncio.ensure_future(reads.get(2, request_id="older", authorization=None))
    await _settle()
    newest_asked = time.monotonic()
    newer = asyncio.ensure_future(reads.get(3, request_id="newer", authorization=None))
    await _settle()

    # when the first call returns and the waiting reads go out together
    db.release.set()
    await asyncio.gather(first, older, newer)

    # then their call may take as long as the newer read may wait: an older read beside it
    # must not fail it early (the older one fails at its own deadline, by the expiry timer)
    assert db.calls[1] == ("GetProductsByIds", [2, 3], ["older", "newer"])
    deadline = db.deadlines[1]
    assert deadline is not None
    assert newest_asked + db.timeout_s <= deadline <= time.monotonic() + db.timeout_s


async def test_a_read_in_a_call_that_hangs_fails_at_its_own_deadline() -> None:
    # given a backend that does not answer, and does not keep to deadlines either
    db = FakeDB(timeout_s=0.2)
    reads = _reads(db)
    db.release.clear()

    # when a read goes out to it
    async with asyncio.timeout(5):
        with pytest.raises(ApiError) as failed:
            await reads.get(1, request_id="hung", authorization=None)

    # then the read fails at its deadline, as a call kept to it would
    assert (failed.value.code, failed.value.http_status) == (ApiCode.DEADLINE_EXCEEDED, 504)
    db.release.set()


async def test_reads_beyond_max_waiting_are_refused_at_once() -> None:
    # given every call slot held, and MAX_WAITING reads waiting for one
    db = FakeDB()
    reads = ProductReads(db, stall_s=0.001)  # type: ignore[arg-type]
    out = await _stall_every_slot(db, reads)
    waiting = [
        asyncio.ensure_future(reads.get(2, request_id=f"w{n}", authorization=None))
        for n in range(MAX_WAITING)
    ]
    await _settle()

    # when one more is asked
    with pytest.raises(ApiError) as refused:
        await reads.get(3, request_id="one-too-many", authorization=None)

    # then it is refused as UNAVAILABLE (503, retry later), and the others are still answered
    assert (refused.value.code, refused.value.http_status) == (ApiCode.UNAVAILABLE, 503)
    db.release.set()
    assert len(await asyncio.gather(*out, *waiting)) == MAX_CALLS_IN_FLIGHT + MAX_WAITING
