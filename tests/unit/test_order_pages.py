"""Loaders.orders_page: the `orders` fields of one request that ask for one page share a call."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from gateway.graphql.loaders import Loaders
from protos import db_service_pb2 as pb


class FakeListOrders:
    """Stands for ops.list_orders: counts the calls, answers once released."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.calls = 0
        self.failure = failure
        self.release = asyncio.Event()

    async def __call__(self) -> pb.ListOrdersResponse:
        self.calls += 1
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        return pb.ListOrdersResponse(orders=[pb.Order(id=7)], next_page_token="t")


def loaders() -> Loaders:
    # orders_page uses neither the scope nor the runtime: the fetch it is given does the call.
    return Loaders(cast(Any, None), cast(Any, None))


async def test_askers_of_one_page_share_one_call_and_another_page_is_another_call() -> None:
    # given one request's loaders
    pages, fetch = loaders(), FakeListOrders()

    # when three fields ask for page "a" at once and one for page "b"
    asked = [asyncio.ensure_future(pages.orders_page(key, fetch)) for key in ("a", "a", "b", "a")]
    await asyncio.sleep(0)
    fetch.release.set()
    replies = await asyncio.gather(*asked)

    # then two calls answered all four, each asker with its page
    assert fetch.calls == 2
    assert [r.orders[0].id for r in replies] == [7, 7, 7, 7]


async def test_an_asker_cancelled_leaves_the_call_to_the_others() -> None:
    # given two fields waiting for the same page
    pages, fetch = loaders(), FakeListOrders()
    first = asyncio.ensure_future(pages.orders_page("a", fetch))
    second = asyncio.ensure_future(pages.orders_page("a", fetch))
    await asyncio.sleep(0)

    # when the first is cancelled (a list item beside it failed) before the answer comes
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    fetch.release.set()

    # then the second still gets the page from the one call
    assert (await second).next_page_token == "t"
    assert fetch.calls == 1


async def test_a_failed_call_is_the_error_of_every_asker() -> None:
    # given a page whose call fails
    pages, fetch = loaders(), FakeListOrders(failure=RuntimeError("backend down"))
    fetch.release.set()

    # when two fields ask for it
    results = await asyncio.gather(
        pages.orders_page("a", fetch), pages.orders_page("a", fetch), return_exceptions=True
    )

    # then both get the error of the one call
    assert [str(r) for r in results] == ["backend down", "backend down"]
    assert fetch.calls == 1


async def test_pages_are_fetched_again_after_a_reset() -> None:
    # given a page already fetched
    pages, fetch = loaders(), FakeListOrders()
    fetch.release.set()
    await pages.orders_page("a", fetch)

    # when a mutation field resets the loaders and the page is asked for again
    pages.reset()
    await pages.orders_page("a", fetch)

    # then it is fetched again: the mutation may have changed it
    assert fetch.calls == 2
