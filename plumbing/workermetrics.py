"""Prometheus metrics summed over a service's workers (prometheus-client multiprocess mode).

With PROMETHEUS_MULTIPROC_DIR set (plumbing.workers sets it for every worker), Counters,
Histograms and Gauges write their values to files in that directory, and a
MultiProcessCollector reads all the files at scrape time: any worker answers with the sum.

What that mode cannot do is a collector that computes its values when scraped (the pool's size,
the log shipper's queue): only the scraping process would be asked. `CollectorMirror` copies
such a collector into file-backed metrics once a second instead: gauges as `livesum` (the sum
over live workers; a dead worker's share goes with it), counters by their increase (a dead
worker's count stays in the total, as with any counter). They are up to a second old.

A sum is wrong for two kinds of gauge, named in `largest` and combined as `livemax` instead: an
age (the oldest record waiting is the oldest of any worker's, not the sum of their ages), and a
count of something the workers share (every worker counts the one outbox table).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MIRROR_INTERVAL_S = 1.0


def summing_registry(metrics_dir: Path | str) -> CollectorRegistry:
    """A registry whose scrape is the sum over every worker writing to `metrics_dir`."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    return registry


class CollectorMirror:
    """Copies an unlabelled scrape-time collector into metrics a MultiProcessCollector can sum."""

    def __init__(self, collector: Collector, *, largest: Iterable[str] = ()) -> None:
        self._collector = collector
        self._largest = frozenset(largest)
        self._gauges: dict[str, Gauge] = {}
        self._counters: dict[str, Counter] = {}
        self._counted: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        """Copy the collector's values now."""
        for family in self._collector.collect():
            for sample in family.samples:
                if family.type == "gauge":
                    self._gauge(family.name, family.documentation).set(sample.value)
                elif family.type == "counter" and sample.name.endswith("_total"):
                    counter = self._counter(family.name, family.documentation)
                    increase = sample.value - self._counted.get(family.name, 0.0)
                    if increase > 0:
                        counter.inc(increase)
                        self._counted[family.name] = sample.value

    def start(self) -> None:
        """Copy once a second from now on, on the running event loop."""
        self._task = asyncio.create_task(self._run(), name="metrics-mirror")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(MIRROR_INTERVAL_S)

    def _gauge(self, name: str, documentation: str) -> Gauge:
        if name not in self._gauges:
            # Not in the default registry: the collector itself still answers there.
            self._gauges[name] = Gauge(
                name,
                documentation,
                registry=None,
                multiprocess_mode="livemax" if name in self._largest else "livesum",
            )
        return self._gauges[name]

    def _counter(self, name: str, documentation: str) -> Counter:
        if name not in self._counters:
            self._counters[name] = Counter(name, documentation, registry=None)
        return self._counters[name]
