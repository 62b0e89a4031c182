"""Keeping the gateway's long-lived heap out of the garbage collector's way.

    freezer = HeapFreezer()
    freezer.refreeze()          # at the end of startup
    await freezer.start()       # then every CHECK_INTERVAL_S
    ...
    await freezer.stop()

A full (generation 2) collection walks every object it tracks and holds the event loop while it
does: the schema and modules after startup, then the parsed documents the GraphQL caches keep
(about 75 objects per small query). With 1,000 cached documents each automatic full collection
paused the loop 20-40 ms, the p99 of product(id) at peak went from 16 to 41 ms, and the
collections cost 5-15 % of the gateway's CPU (bench/README.md). `gc.freeze()` moves every live
object into a permanent generation the collector skips. At startup everything is frozen after
one full collection (`refreeze`). The heap that grows after it is frozen whenever generation 2
has grown past REFREEZE_OBJECTS (`check`): a collection of the objects not yet frozen, then a
freeze of what survived, a pause as long as those objects take to walk. Until 2026-12-07 every
such check unfroze the whole heap and collected all of it: under a flood of distinct documents
(each cached one survives into generation 2) that was a full collection every 10 s, and on the
loaded 2-core machine each paused the loop 0.8-1.5 s.

A frozen object that later dies in a reference cycle is out of the collector's sight: it stays
until the next full refreeze (unfreeze, collect, freeze). A check makes one when the frozen
heap has grown by FULL_REFREEZE_GROWTH (half) since the last one, so such garbage stays a
bounded share of the heap. Freed without a cycle (the usual case: reference counting, as for
the documents the caches evict), a frozen object is gone at once.

The young generation's threshold is raised too (`GC_YOUNG_THRESHOLD`, 5,000 instead of
CPython's 700) while the freezer runs. The objects of the requests in flight are allocated and
freed by the hundred, so their net count crosses 700 again and again: under product(id) load
the gateway ran ~2,400 young collections where 5,000 needed 25 (each walking the requests in
flight, ~0.2 ms), and 5,000 spent 2-5 % less CPU per request (bench/README.md, seventh
session). Only the rare reference cycle waits longer to be freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger("gateway.heap")

CHECK_INTERVAL_S = 10.0
# Objects in generation 2 that make a refreeze worth its pause (a full collection of ~50k
# objects takes ~10 ms on the 2-core bench machine).
REFREEZE_OBJECTS = 50_000
# Growth of the frozen heap, as a share of what the last full refreeze left frozen, that makes
# the next check a full refreeze again (reclaiming cycles that died while frozen).
FULL_REFREEZE_GROWTH = 0.5
# Net allocations of tracked objects that start a young collection while the freezer runs.
YOUNG_THRESHOLD = 5_000

REFREEZES = Counter(
    "gateway_gc_refreezes_total",
    "Times the live heap was frozen out of the GC: scope=new (the objects not yet frozen), "
    "scope=all (unfrozen, collected and frozen again)",
    ["scope"],
)
FROZEN = Gauge(
    "gateway_gc_frozen_objects",
    "Objects in the GC's permanent generation (summed over live workers)",
    multiprocess_mode="livesum",
)
PAUSE = Histogram(
    "gateway_gc_refreeze_seconds",
    "Event-loop pause of one refreeze (a collection and a freeze)",
    ["scope"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


class HeapFreezer:
    def __init__(
        self,
        *,
        interval_s: float = CHECK_INTERVAL_S,
        threshold: int = REFREEZE_OBJECTS,
        full_growth: float = FULL_REFREEZE_GROWTH,
        young_threshold: int = YOUNG_THRESHOLD,
    ) -> None:
        if young_threshold < 1:
            raise ValueError("young_threshold must be >= 1 (0 would switch the collector off)")
        if full_growth < 0:
            raise ValueError("full_growth must be >= 0")
        self._interval_s = interval_s
        self._threshold = threshold
        self._full_growth = full_growth
        self._frozen_at_full = 0
        self._young_threshold = young_threshold
        self._saved_thresholds: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def refreeze(self) -> float:
        """Unfreeze and collect everything, then freeze what is alive; the pause in seconds."""
        started = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._frozen_at_full = gc.get_freeze_count()
        return self._observe("all", started)

    def freeze_new(self) -> float:
        """Collect the objects not yet frozen, then freeze the survivors; the pause in seconds."""
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        return self._observe("new", started)

    def check(self) -> bool:
        """Freeze the heap's growth if generation 2 has grown past the threshold (a full
        refreeze once the frozen heap has grown by `full_growth` since the last); whether it
        froze anything."""
        old = len(gc.get_objects(generation=2))
        if old < self._threshold:
            return False
        # How far the frozen heap would have grown since the last full refreeze.
        grown = gc.get_freeze_count() + old - self._frozen_at_full
        full = grown >= self._full_growth * self._frozen_at_full
        pause = self.refreeze() if full else self.freeze_new()
        log.info(
            "froze the heap (%s): %d objects, %.0f ms",
            "all" if full else "new",
            gc.get_freeze_count(),
            pause * 1000,
        )
        return True

    @staticmethod
    def _observe(scope: str, started: float) -> float:
        pause = time.perf_counter() - started
        REFREEZES.labels(scope).inc()
        FROZEN.set(gc.get_freeze_count())
        PAUSE.labels(scope).observe(pause)
        return pause

    async def start(self) -> None:
        """Raise the young generation's threshold and check the heap every `interval_s`."""
        if self._task is None:
            self._saved_thresholds = gc.get_threshold()
            _, older, oldest = self._saved_thresholds
            gc.set_threshold(self._young_threshold, older, oldest)
            self._task = asyncio.create_task(self._run(), name="heap-freezer")

    async def stop(self) -> None:
        """Stop checking and give the collector back the thresholds `start` found."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        saved, self._saved_thresholds = self._saved_thresholds, None
        if saved is not None:
            gc.set_threshold(*saved)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            self.check()
