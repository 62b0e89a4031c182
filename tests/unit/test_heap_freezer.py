"""HeapFreezer: the live heap frozen out of the collector's sight, and nothing leaked by it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from gateway.heap import HeapFreezer


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_refreeze_moves_the_live_heap_out_of_generation_2() -> None:
    gc.collect()
    keep = [Node() for _ in range(20_000)]
    HeapFreezer().refreeze()
    assert gc.get_freeze_count() > len(keep)
    assert len(gc.get_objects(generation=2)) < 1_000


def test_a_cycle_frozen_while_alive_is_reclaimed_by_the_next_refreeze() -> None:
    freezer = HeapFreezer()
    a, b = Node(), Node()
    a.other, b.other = b, a
    dead = weakref.ref(a)
    freezer.refreeze()  # frozen while alive
    del a, b
    gc.collect()
    assert dead() is not None  # a frozen cycle is out of the collector's sight…
    freezer.refreeze()
    assert dead() is None  # …until the next refreeze unfreezes and collects first


def test_check_refreezes_only_past_the_threshold() -> None:
    HeapFreezer().refreeze()  # everything so far out of the way
    keep = [Node() for _ in range(5_000)]
    gc.collect()  # now in generation 2
    assert not HeapFreezer(threshold=len(keep) * 10).check()
    assert HeapFreezer(threshold=len(keep)).check()
    assert len(gc.get_objects(generation=2)) < len(keep)


async def test_the_periodic_check_stops_with_the_app() -> None:
    freezer = HeapFreezer(interval_s=0.01, threshold=10**9)
    await freezer.start()
    task = freezer._task
    assert task is not None
    assert not task.done()
    await freezer.stop()
    assert task.cancelled()
    await freezer.stop()  # twice is fine


async def test_the_young_threshold_is_raised_while_it_runs_and_restored_after() -> None:
    before = gc.get_threshold()
    freezer = HeapFreezer(interval_s=60, young_threshold=before[0] + 1234)
    await freezer.start()
    try:
        assert gc.get_threshold() == (before[0] + 1234, *before[1:])
    finally:
        await freezer.stop()
    assert gc.get_threshold() == before


def test_a_young_threshold_that_would_switch_the_collector_off_is_refused() -> None:
    with pytest.raises(ValueError, match="young_threshold"):
        HeapFreezer(young_threshold=0)
