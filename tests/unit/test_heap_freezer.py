"""HeapFreezer: the live heap frozen out of the collector's sight, and nothing leaked by it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

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


def _refreezes(scope: str) -> float:
    return REGISTRY.get_sample_value("gateway_gc_refreezes_total", {"scope": scope}) or 0.0


def test_a_check_freezes_the_growth_without_walking_the_frozen_heap_again() -> None:
    freezer = HeapFreezer(threshold=1_000)
    freezer.refreeze()
    frozen = gc.get_freeze_count()
    keep = [Node() for _ in range(2_000)]  # far less than half the frozen heap
    gc.collect()  # now in generation 2
    frozen_at_each_collection: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            frozen_at_each_collection.append(gc.get_freeze_count())

    new_before = _refreezes("new")
    gc.callbacks.append(watch)
    try:
        assert freezer.check()
    finally:
        gc.callbacks.remove(watch)
    # The heap frozen before stayed frozen through the collection (until 2026-12-07 each check
    # unfroze it and walked all of it: a pause of 0.8-1.5 s on a loaded 2-core machine)…
    assert frozen_at_each_collection
    assert min(frozen_at_each_collection) >= frozen
    # …and what grew since is frozen too.
    assert gc.get_freeze_count() >= frozen + len(keep)
    assert len(gc.get_objects(generation=2)) < len(keep)
    assert _refreezes("new") == new_before + 1


def test_a_cycle_that_died_frozen_waits_for_the_frozen_heap_to_grow_by_the_share() -> None:
    gc.collect()
    # A full refreeze once the frozen heap has grown by about 4,000 objects.
    freezer = HeapFreezer(threshold=1_000, full_growth=4_000 / len(gc.get_objects()))
    a, b = Node(), Node()
    a.other, b.other = b, a
    dead = weakref.ref(a)
    freezer.refreeze()  # frozen while alive
    del a, b
    some = [Node() for _ in range(1_500)]
    gc.collect()
    assert freezer.check()
    assert dead() is not None  # a growth below the share is frozen, and the cycle waits…
    more = [Node() for _ in range(5_000)]
    gc.collect()
    assert freezer.check()
    assert dead() is None  # …until the growth makes the check a full refreeze
    assert len(some) + len(more) == 6_500


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
    with pytest.raises(ValueError, match="full_growth"):
        HeapFreezer(full_growth=-1)
